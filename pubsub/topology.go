package pubsub

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/coarse"
)

// Topology-aware forwarding.
//
// GossipSub forwards every message it accepts to its mesh peers. With flood
// publishing, in a mesh where every node is connected to every other (what
// mDNS discovery builds), each subscriber already got the message from its
// author, so every forwarded copy is a duplicate: with 5 nodes the network
// carried 4.6 bytes per byte delivered, with 20 nodes 11.7.
//
// So nodes tell each other whom they send to: each publishes, on a reserved
// topic, the peers its pub/sub is ready to send to (its connected peers
// whose subscriptions it has and whose GossipSub stream is open: every
// message it publishes from then on reaches them), whenever that changes
// and when it has announced nothing for announceRefresh (a refresh). A
// node forwards a message of an author unless every other peer of its own
// got it from the author directly: the
// author's announcement lists the peer, and the peer's announcement lists
// the author. Then the node delivers the message to its own subscribers
// without forwarding it (GossipSub's ValidationIgnore). A partial mesh
// (bootstrap peers, a link down) keeps GossipSub's relaying. Until
// announcements arrive, everything is forwarded as before.
//
// The author's own announcement is what makes this safe: a peer that
// connected to the author a moment ago may have missed a message the
// author published just before it knew the peer, and only the author can
// tell from when on the peer gets everything. Announcements always travel
// through GossipSub, so they reach a node in the order the author
// published them and the messages that went through GossipSub too (one
// stream, one validation queue): a node that learns "the author sends to
// q" has already validated every earlier message of the author, and
// forwarded those that q needed. (Messages sent on direct streams are
// never forwarded.) The peer's own announcement covers the other end: it
// drops the author as soon as their connection breaks.
//
// The announcements themselves are judged by what they say (reachedAll):
// one lists the peers its author sent it to, so a node relays it only to
// reach a peer it does not list, a new peer of the author or a node
// further away that needs it for routing (routes.go). A copy older than
// an announcement of the same author delivered already (relayed the long
// way round while the mesh formed) is dropped, neither delivered nor
// relayed: learnt, it would overwrite the newer one, and the node would
// relay for the author until its next refresh. (The copy of the very
// announcement a node caught up on is judged like a new one, but not
// delivered again: catchup.go.) A refresh identical to the
// last announcement changes nothing here, and one that says what the
// node's peers hold already is not relayed (knownRefresh). A gain is
// announced once no other has come for announceGrowQuiet (at most
// announceGrowMax after the first), a loss at once; and the repeat after the heartbeat is left out
// where every node that needs the announcement is a peer (closed). So a
// settled full mesh sends each node's refresh to each peer once and
// relays nothing (TestIdleFullMesh).
//
// Nor does a node relay announcements while the mesh forms around it (a
// peer connected or became ready within announceSettle): nodes connect one
// after the other, every announcement then leaves out some of a node's
// peers, and relaying each to every GossipSub mesh peer was, at 50 nodes,
// over a hundred thousand duplicates in formation, enough to keep both
// cores busy and the mesh from forming for half a minute. What relaying
// gives is routes (routes.go) and Links beyond the neighbours: the
// coverage checks of app topics above need only the neighbours' own
// announcements, which come directly. Once it has settled, a node that
// relayed nothing new catches up with its peers (catchup.go), and two
// peers catch up when they meet, so a partial mesh's routes follow a
// moment after it forms. A node also repeats its announcement once it has
// settled (and, past a mesh's formation, once more later: announceLate).

const (
	// peersTopic carries the announcements.
	peersTopic = ReservedPrefix + "peers"
	// announceDelay debounces announcements after a peer is lost (or a
	// registry entry changes): others must stop counting on our link at
	// once.
	announceDelay = 20 * time.Millisecond
	// An announcement of new peers waits until none has come for
	// announceGrowQuiet, at most announceGrowMax after the first: while a
	// mesh forms, peers become ready one after the other, and announcing
	// each (N-1 announcements of up to N peers by each of N nodes) was
	// most of the formation's traffic. A late "I send to q" only makes the
	// others relay a little longer, which is safe.
	announceGrowQuiet = 50 * time.Millisecond
	announceGrowMax   = 250 * time.Millisecond
	// announceSettle: a node whose neighbourhood gained a peer within
	// this long relays no announcement (forming), and repeats its own
	// once it has gained none for this long.
	announceSettle = time.Second
	// announceRefresh re-announces periodically (give or take a half), in
	// case one was lost; in a mesh of more than refreshNodes nodes, that
	// many times longer (at most refreshScaleMax times). A refresh that
	// says nothing new reaches only its author's neighbours
	// (knownRefresh); each node also catches up with a random peer once
	// per period (catchup.go), which brings it what it missed from
	// farther away.
	announceRefresh = 15 * time.Second
	refreshNodes    = 20
	refreshScaleMax = 5
	// forgetAfter: what a node announced is forgotten once it has been out
	// of reach this long (forgetGone). A node that restarts comes back
	// with a new peer id unless it keeps its identity, so without this a
	// long-lived mesh whose members restart would hold every node it ever
	// saw. Well above a partition noticed and healed (seconds), and a
	// node that comes back after it is learnt again like a newcomer.
	forgetAfter = 10 * time.Minute
	// forgetSweep: the announce loop looks for nodes out of reach at the
	// first announcement it makes (a refresh, when nothing changes) this
	// long or longer after it last looked.
	forgetSweep = time.Minute
	// announceAgain repeats an announcement made after a change once
	// GossipSub's heartbeat (1 s) has put new peers in the relays' meshes,
	// or later, once we have settled (announceSettle), and not at all in a
	// closed neighbourhood.
	announceAgain = 1500 * time.Millisecond
	// announceLate repeats a changed announcement once more this long
	// after the change, once the node has run announceLateAfter (past the
	// formation of a mesh started together, whose trims are changes too).
	// A node learns only the announcements made while it is connected:
	// after a partition, the nodes of the small side reconnect among
	// themselves (refills), and those that joined a relay after an
	// author's losses had passed it kept the author's links across for
	// its next refresh, up to a minute or two away (a partition of 10 in
	// 100 was not noticed within 30 s in any run, before peers caught up
	// when they met: catchup.go).
	announceLate      = 10 * time.Second
	announceLateAfter = 30 * time.Second
	// closedHold: a node sends directly (sendsDirect) once its
	// neighbourhood has been closed this long. The announcement that
	// closed it may be older than its author's state: a neighbour
	// announced its peers just before a newcomer became ready there (it
	// announces a gain up to announceGrowMax later), and GossipSub reaches
	// the newcomer through that neighbour already. Going direct at once
	// cut such a newcomer off after its first messages; meanwhile the
	// announcement that opens the neighbourhood again comes.
	closedHold = 2 * announceGrowMax
	// relayAfterChange: for this long after a change around a node, it
	// relays announcements that say nothing new (knownRefresh). Below
	// the shortest refresh interval above 40 nodes (refreshInterval), so
	// that a large mesh's first refreshes after it formed stay near their
	// authors, and well above a formation of 100 (3.9-5.3 s; 5 s here
	// and 15 s formed alike).
	relayAfterChange = 15 * time.Second
	// maxAnnounced bounds the peers in one announcement.
	maxAnnounced = 4096
)

// topology is what this node knows of who is connected to whom.
type topology struct {
	self peer.ID

	mu         sync.Mutex
	mine       map[peer.ID]struct{}              // our connected peers, as the Membership reports them
	ready      map[peer.ID]time.Time             // those our pub/sub sends to (ready.go), what we announce: when each became ready (linkage.go)
	theirs     map[peer.ID]map[peer.ID]struct{}  // each peer's last announcement
	since      map[peer.ID]map[peer.ID]time.Time // since when each announced link has stood, at the latest (linkage.go)
	regs       map[peer.ID]announcedRegs         // each node's announced registry entries (routes.go)
	hops       map[peer.ID]peer.ID               // cache: reachable node → next hop (routes.go)
	covered    map[peer.ID]bool                  // cache: author → all our peers get its messages from it
	closure    int8                              // cache of closed(): 0 unknown, 1 yes, -1 no
	changedAt  time.Time                         // when the cached answers were last dropped
	wasClosed  bool                              // what closed() last worked out
	closedFrom time.Time                         // since when it has said yes, at the latest (sendsDirect)
	gainedAt   time.Time                         // when a peer last connected or became ready
	seen       map[peer.ID]seenAnnouncement      // each author's last announcement validated or caught up (knownRefresh)
	given      map[peer.ID]uint64                // what our peers hold of each author, as far as we know: the sum of what it said (knownRefresh)
	relayed    map[peer.ID]time.Time             // when we last relayed each author's announcement (knownRefresh)
	newcomer   time.Time                         // when a node appeared, or came back restarted (knownRefresh)
	held       map[peer.ID]heldAnnouncement      // each author's latest announcement, as signed (catchup.go)
	gone       map[peer.ID]time.Time             // since when each node we know of has been out of reach, as of the last forgetGone
	owes       chan struct{}                     // signalled when we hold an announcement our peers may lack (catchup.go)
	changed    chan struct{}                     // signalled when what we announce changes (a loss, a registry entry)
	grown      chan struct{}                     // signalled when we announce a peer more
	refresh    chan struct{}                     // signalled to announce at once (tests)
	updated    chan struct{}                     // closed and replaced when anything changes
}

func newTopology(self peer.ID) *topology {
	return &topology{
		self:    self,
		mine:    map[peer.ID]struct{}{},
		ready:   map[peer.ID]time.Time{},
		theirs:  map[peer.ID]map[peer.ID]struct{}{},
		since:   map[peer.ID]map[peer.ID]time.Time{},
		regs:    map[peer.ID]announcedRegs{},
		covered: map[peer.ID]bool{},
		seen:    map[peer.ID]seenAnnouncement{},
		given:   map[peer.ID]uint64{},
		relayed: map[peer.ID]time.Time{},
		held:    map[peer.ID]heldAnnouncement{},
		gone:    map[peer.ID]time.Time{},
		owes:    make(chan struct{}, 1),
		changed: make(chan struct{}, 1),
		grown:   make(chan struct{}, 1),
		refresh: make(chan struct{}, 1),
		updated: make(chan struct{}),
	}
}

// setConnected records a change of our connection to p.
func (t *topology) setConnected(p peer.ID, connected bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, was := t.mine[p]; was == connected {
		return
	}
	if connected {
		t.mine[p] = struct{}{}
		t.gainedAt = time.Now()
	} else {
		delete(t.mine, p)
		delete(t.ready, p)
		t.poke()
	}
	t.invalidateLocked()
}

// forming reports whether our neighbourhood gained a peer within the last
// announceSettle: the mesh is still forming around us.
func (t *topology) forming(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return now.Sub(t.gainedAt) < announceSettle
}

// settlesIn returns how long until our neighbourhood has gained nothing
// for announceSettle (0: it has).
func (t *topology) settlesIn(now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(0, t.gainedAt.Add(announceSettle).Sub(now))
}

// setReady records that our pub/sub sends to p from now on, or no longer.
func (t *topology) setReady(p peer.ID, ready bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, was := t.ready[p]; was == ready {
		return
	}
	if ready {
		t.gainedAt = time.Now()
		t.ready[p] = t.gainedAt
	} else {
		delete(t.ready, p)
	}
	t.invalidateLocked()
	if ready {
		t.pokeGrown()
	} else {
		t.poke()
	}
}

// invalidateLocked drops the cached answers; t.mu held.
func (t *topology) invalidateLocked() {
	clear(t.covered)
	t.closure = 0
	t.changedAt = time.Now()
	t.hops = nil
	close(t.updated)
	t.updated = make(chan struct{})
}

// updates returns a channel closed at the next change.
func (t *topology) updates() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.updated
}

// poke schedules an announcement soon (announceDelay).
func (t *topology) poke() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// pokeGrown schedules an announcement of a peer more, which can wait for
// the next ones (announceGrowQuiet, announceGrowMax).
func (t *topology) pokeGrown() {
	select {
	case t.grown <- struct{}{}:
	default:
	}
}

// learn records p's announcement of peers and regs, received now, with no
// link ages (learnAnnouncement).
func (t *topology) learn(p peer.ID, peers []peer.ID, regs []regKey) {
	t.learnAnnouncement(p, announcement{peers: peers, regs: regs}, time.Now())
}

// learnAnnouncement records p's announcement a, received at now: whom p
// sends to, since when (linkage.go), and its registry entries (nil: none).
// An announcement identical to p's last one (its periodic refresh)
// changes nothing: the cached answers stay.
func (t *topology) learnAnnouncement(p peer.ID, a announcement, now time.Time) {
	peers, regs := a.peers, a.regs
	t.mu.Lock()
	defer t.mu.Unlock()
	earlier := t.learnSinceLocked(p, a, now)
	old, had := t.theirs[p]
	same := had && len(old) == len(peers)
	for _, q := range peers {
		if !same {
			break
		}
		_, same = old[q]
	}
	if !same {
		set := make(map[peer.ID]struct{}, len(peers))
		for _, q := range peers {
			set[q] = struct{}{}
		}
		t.theirs[p] = set
	}
	before := t.regs[p].entries
	t.learnRegsLocked(p, regs)
	if !same || !slices.Equal(before, t.regs[p].entries) {
		t.invalidateLocked()
	} else if earlier {
		close(t.updated) // Announced's times changed, not the caches
		t.updated = make(chan struct{})
	}
}

// forget drops p's link to us from what p announced: p disconnected, and
// its next announcement, promptly after the loss, will tell the rest. The
// rest stays: that announcement may have come already, relayed (a dead
// link is noticed late), and an unchanged refresh of p's no longer
// reaches us now that p is not our peer (knownRefresh). What p announced
// is forgotten once p is out of reach for forgetAfter (forgetGone).
func (t *topology) forget(p peer.ID) {
	t.mu.Lock()
	if sends, ok := t.theirs[p]; ok {
		if _, us := sends[t.self]; us {
			rest := make(map[peer.ID]struct{}, len(sends)-1)
			for q := range sends {
				if q != t.self {
					rest[q] = struct{}{}
				}
			}
			t.theirs[p] = rest
		}
	}
	t.invalidateLocked()
	t.mu.Unlock()
}

// allConnectedTo reports whether every peer we are connected to (other
// than author) gets author's messages from author directly: author has
// announced it sends to the peer, and the peer has announced it is
// connected to author. Then forwarding them is useless.
func (t *topology) allConnectedTo(author peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.covered[author]; ok {
		return c
	}
	c := true
	for p := range t.mine {
		if p == author {
			continue
		}
		_, sends := t.theirs[author][p]
		_, hears := t.theirs[p][author]
		if !sends || !hears {
			c = false
			break
		}
	}
	t.covered[author] = c
	return c
}

// reachedAll reports whether author's peer announcement (the last of
// vals, a batch of them as the topic's decoder made them) reached every
// peer we are connected to directly: it lists them all. An announcement
// lists the peers its author's pub/sub sent to when it was published
// (announced), so unlike allConnectedTo this needs nothing else: a peer
// the author announces sending to got this very message from it, unless
// their connection failed meanwhile (then the author's next announcement,
// promptly after the loss, drops the peer, and we relay that one). A peer
// left out needs a relay: it may be a new peer of the author, or further
// away and need the announcement for routing (routes.go).
func (t *topology) reachedAll(author peer.ID, vals []any) bool {
	if len(vals) == 0 {
		return false
	}
	a, ok := vals[len(vals)-1].(announcement)
	if !ok {
		return false
	}
	set := make(map[peer.ID]struct{}, len(a.peers))
	for _, q := range a.peers {
		set[q] = struct{}{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for q := range t.mine {
		if _, ok := set[q]; !ok && q != author {
			return false
		}
	}
	return true
}

// seenAnnouncement is what knownRefresh remembers of an author's last
// announcement validated: a sum of what it says, and its batch number.
type seenAnnouncement struct {
	sum uint64
	seq uint64
}

// restartGap: a batch number this far beyond the author's last is a
// restart (numbers start at the clock in nanoseconds: order.go).
const restartGap = 1 << 30

// knownRefresh reports whether author's peer announcement (the last of
// vals, in author's batch number seq), validated at this node, needs no
// relaying: every peer of ours holds what it says already, as far as we
// know. That is so when it says what the last one we relayed of author's
// said (its peers and registry entries), or the last one that reached
// every peer of ours from author (reached: reachedAll), or what our last
// round of catch-ups with all of them handed over (catchup.go); unless the
// author restarted.
//
// So an unchanged refresh reaches only its author's neighbours. Relaying
// every identical refresh made, at 50 nodes, 14 announcement copies per
// second arrive at every idle node (each copy comes from every GossipSub
// mesh peer); relaying one in 16 (stops 27 to 36), so that far nodes
// heard from every node now and then, still made most of a settled
// mesh's idle traffic: at 50 nodes, 10 s windows with such a crossing
// refresh took 11.5-15.9 % of a core, those without 7.2-11.3 %. A node
// that missed an announcement learns it when it catches up with a peer
// (catchup.go), and what a far node announced stays until the node is
// out of reach (forgetGone), however long it has said nothing new.
//
// A new peer catches up with us when it becomes ready (catchup.go): it
// needs no relay of what we held then. But GossipSub relays to a new peer
// only once its heartbeat has put it in the topic's mesh, and a node that
// forms a mesh with others relays nothing while peers keep coming
// (forming): so within relayAfterChange of a change around us (we gained
// a peer, or a node appeared or restarted), we relay each author's
// announcement until we have relayed one of its announcements
// announceAgain after the change, whatever it says. (With no end to it,
// as before catch-ups, every author's first refresh after a mesh formed
// crossed the whole mesh.)
//
// It compares with what we passed on, not with what the topology learnt
// (the subscription learns a moment later, after the reorderer), so that
// A, B, A in quick succession relays the second A. When it returns false,
// the caller relays.
func (t *topology) knownRefresh(author peer.ID, seq uint64, vals []any, now time.Time, forming, reached bool) bool {
	if len(vals) == 0 {
		return forming || reached
	}
	a, ok := vals[len(vals)-1].(announcement)
	if !ok {
		return forming || reached
	}
	sum := sumOf(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	last, had := t.seen[author]
	t.seen[author] = seenAnnouncement{sum, seq}
	restart := had && (seq < last.seq || seq-last.seq > restartGap)
	if !had || restart {
		t.newcomer = now
	}
	given, ok := t.given[author]
	known := ok && given == sum
	switch {
	case reached:
		t.given[author] = sum
		return true
	case forming:
		return true
	}
	change := t.newcomer
	if t.gainedAt.After(change) {
		change = t.gainedAt
	}
	afterChange := now.Sub(change) < relayAfterChange && !t.relayed[author].After(change.Add(announceAgain))
	if known && !restart && !afterChange {
		return true
	}
	t.given[author], t.relayed[author] = sum, now
	return false
}

// oweLocked tells the catch-up loop that we hold an announcement our
// peers may lack (catchup.go); t.mu held.
func (t *topology) oweLocked() {
	select {
	case t.owes <- struct{}{}:
	default:
	}
}

// sumOf returns a sum of what a says: its peers in any order, and its
// registry entries (sorted by their author: localRegs). The same at every
// node (the first 8 bytes of a SHA-256): catch-up digests carry it.
func sumOf(a announcement) uint64 {
	h := sha256.New()
	ps := slices.Clone(a.peers)
	slices.Sort(ps)
	for _, q := range ps {
		h.Write([]byte(q))
		h.Write([]byte{0})
	}
	h.Write([]byte{1})
	for _, r := range a.regs {
		h.Write([]byte(r.kind))
		h.Write([]byte{0})
		h.Write([]byte(r.topic))
		h.Write([]byte{0})
		h.Write([]byte(r.group))
		h.Write([]byte{0})
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// closed reports whether every peer we are connected to is ready (we have
// its subscriptions: ready.go) and has announced whom it sends to, and each
// of them sends only to us and to our other peers. Then the nodes we can
// reach are exactly our peers (a node further away would be connected to
// one of them), and a message we send to each of them directly reaches
// everyone: nobody needs a relay. (An announcement can arrive through a
// relay before the peer's own subscriptions do: without the readiness
// check, we would leave out a subscriber we do not know of yet.)
func (t *topology) closed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closure != 0 {
		return t.closure > 0
	}
	c := true
peers:
	for p := range t.mine {
		theirs, ok := t.theirs[p]
		if _, ready := t.ready[p]; !ok || !ready {
			c = false
			break
		}
		for q := range theirs {
			if _, mine := t.mine[q]; !mine && q != t.self {
				c = false
				break peers
			}
		}
	}
	t.closure = -1
	if c {
		t.closure = 1
		if !t.wasClosed {
			// It closed at the last change, or before if nobody asked.
			t.closedFrom = t.changedAt
		}
	}
	t.wasClosed = c
	return c
}

// sendsDirect reports whether a batch published now goes straight to the
// subscribed peers: our neighbourhood is closed, and has been for
// closedHold.
func (t *topology) sendsDirect(now time.Time) bool {
	if !t.closed() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return now.Sub(t.closedFrom) >= closedHold
}

// announced returns what we announce: the peers our pub/sub sends to,
// sorted.
func (t *topology) announced() []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return sortedPeers(t.ready)
}

// encodePeers encodes an announcement of ps and regs, with no link ages.
func encodePeers(ps []peer.ID, regs ...regKey) []byte {
	return encodeAnnouncement(announcement{peers: ps, regs: regs})
}

// encodeAnnouncement encodes a: count, then length-prefixed ids; then, if
// the node has any, its registry entries (routes.go), and the ages of its
// young links (linkage.go), the entries' count written as 0 when there
// are ages and no entries.
func encodeAnnouncement(a announcement) []byte {
	b := binary.AppendUvarint(nil, uint64(len(a.peers)))
	for _, p := range a.peers {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	if len(a.regs) == 0 && len(a.ages) > 0 {
		b = append(b, 0)
	}
	return appendAges(appendRegs(b, a.regs), a.ages)
}

// decodeAnnouncement decodes an announcement, bounding everything by the
// input.
func decodeAnnouncement(b []byte) (announcement, error) {
	n, k := uvarint(b)
	if k <= 0 || n > maxAnnounced || n > uint64(len(b)) {
		return announcement{}, fmt.Errorf("%w: peer announcement count", ErrMalformed)
	}
	b = b[k:]
	out := make([]peer.ID, 0, n)
	for range n {
		l, k := uvarint(b)
		if k <= 0 || l == 0 || l > maxAuthorLen || l > uint64(len(b)-k) {
			return announcement{}, fmt.Errorf("%w: peer announcement entry", ErrMalformed)
		}
		out = append(out, peer.ID(b[k:k+int(l)]))
		b = b[k+int(l):]
	}
	regs, rest, err := decodeRegs(b)
	if err != nil {
		return announcement{}, err
	}
	a := announcement{peers: out, regs: regs}
	if len(rest) > 0 {
		if a.ages, err = decodeAges(rest, len(out)); err != nil {
			return announcement{}, err
		}
	} else if len(b) > 0 && len(regs) == 0 {
		return announcement{}, fmt.Errorf("%w: no registry entries, and no link ages", ErrMalformed)
	}
	return a, nil
}

// announcement is a decoded peer announcement: whom its author sends to,
// its registry entries, and the ages of its young links.
type announcement struct {
	peers []peer.ID
	regs  []regKey
	ages  []linkAge
}

// decodeAnnouncementValue is the peers topic's decoder (WithDecoder).
func decodeAnnouncementValue(b []byte) (any, error) {
	a, err := decodeAnnouncement(b)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// startTopology announces whom we send to and learns the others'. Our
// connections come from the Membership (connectionChanged), whom we send to
// from readiness.
func (p *PubSub) startTopology() error {
	// The decoder runs once, in the validator: a malformed announcement
	// is refused there (Stats.Invalid), neither delivered nor relayed, and
	// reachedAll and the handler share what it made.
	if _, err := p.Subscribe(peersTopic, func(m Message) {
		a := m.Decoded.(announcement)
		p.topo.learnAnnouncement(m.From, a, time.Now())
		p.callsUnreachable()
	}, AllowReserved(), WithDecoder(decodeAnnouncementValue)); err != nil {
		return err
	}
	t, err := p.topic(peersTopic, true)
	if err != nil {
		return err
	}
	p.announcements = t
	p.goOwned(p.announceLoop)
	p.startCatchups()
	return nil
}

// connectionChanged follows the Membership: a peer connected or left.
func (p *PubSub) connectionChanged(q peer.ID, up bool) {
	p.topo.setConnected(q, up)
	if !up {
		p.topo.forget(q)
		p.dir.disconnected(q)
		p.callsUnreachable()
	}
}

// announceLoop publishes the peers we send to shortly after they change
// (promptly after a loss, a little later after a gain), and once it has
// published nothing for a refresh period (refreshInterval).
func (p *PubSub) announceLoop() {
	refresh := time.NewTimer(coarse.Delay(refreshInterval(1)))
	defer refresh.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	again := time.NewTimer(time.Hour)
	again.Stop()
	defer again.Stop()
	late := time.NewTimer(time.Hour)
	late.Stop()
	defer late.Stop()
	started := time.Now()
	swept := started // the last sweep for nodes gone (forgetGone)
	// The pending announcement goes out at the earlier of two deadlines,
	// one for losses (prompt) and one for gains (zero: none pending).
	var prompt, grow, grown time.Time // grown: the first gain pending
	schedule := func() {
		at := prompt
		if at.IsZero() || (!grow.IsZero() && grow.Before(at)) {
			at = grow
		}
		debounce.Reset(time.Until(at))
	}
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.topo.changed:
			prompt = time.Now().Add(announceDelay)
			schedule()
			continue
		case <-p.topo.grown:
			now := time.Now()
			if grown.IsZero() {
				grown = now
			}
			grow = minTime(now.Add(announceGrowQuiet), grown.Add(announceGrowMax))
			schedule()
			continue
		case <-debounce.C:
			prompt, grow, grown = time.Time{}, time.Time{}, time.Time{}
			// A relay forwards only to the peers in its GossipSub mesh
			// for the topic, which its heartbeat builds: a new peer of it
			// may miss this announcement. Repeat it after the heartbeat.
			again.Reset(announceAgain)
			if time.Since(started) >= announceLateAfter {
				late.Reset(announceLate)
			}
		case <-late.C:
			// Past the mesh's formation, once more (see announceLate).
			if p.topo.closed() {
				continue
			}
		case <-again.C:
			// Nodes relay no announcement while the mesh forms around
			// them (see the top): repeat it once we have settled, for
			// the nodes beyond the neighbours. In a closed neighbourhood
			// every node that needs it is our peer and had it from us
			// directly.
			if wait := p.topo.settlesIn(time.Now()); wait > 0 {
				again.Reset(wait)
				continue
			}
			if p.topo.closed() {
				continue
			}
		case <-refresh.C:
		case <-p.topo.refresh:
		}
		// Every announcement resets the refresh timer, so a node whose
		// peers keep changing may never see it fire: the sweep for nodes
		// gone goes with any announcement, at most once per forgetSweep.
		if now := time.Now(); now.Sub(swept) >= forgetSweep {
			p.forgetGone(now)
			swept = now
		}
		ps := p.topo.announced()
		data := encodeAnnouncement(announcement{peers: ps, regs: p.localRegs(), ages: p.topo.youngAges(ps, time.Now())})
		if err := p.publish(p.ctx, peersTopic, data, []Option{AllowReserved()}); err != nil && p.ctx.Err() == nil {
			p.log.Debug("pubsub: peer announcement not sent", "err", err)
		}
		// Any announcement does what a refresh does: the next refresh
		// comes a period after it. (Counted from the start instead, every
		// node of a mesh of 100 started together refreshed 7 to 22 s
		// after its start, right after the formation's announcements.)
		refresh.Reset(coarse.Delay(refreshInterval(p.topo.size())))
	}
}

// refreshInterval is the refresh period give or take a half, at random:
// nodes started together would otherwise refresh together, and the burst
// of announcements at every node's validator makes GossipSub ask for
// copies it is still validating (IWANT after a gossiped IHAVE), which
// arrive as duplicates. (With a tenth, a mesh of 50 started at once still
// refreshed in bursts three minutes later: 35 announcements in 10 s, none
// in the 10 s a minute before.)
func refreshInterval(nodes int) time.Duration {
	every := refreshPeriod(nodes)
	return every/2 + rand.N(every)
}

// refreshPeriod is the mean of refreshInterval: announceRefresh, times one
// per refreshNodes nodes, at most refreshScaleMax times.
func refreshPeriod(nodes int) time.Duration {
	return announceRefresh * time.Duration(min(refreshScaleMax, max(1, (nodes+refreshNodes-1)/refreshNodes)))
}

// size returns the nodes this node knows to announce: itself and those
// whose announcement it holds.
func (t *topology) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.theirs) + 1
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// superseded reports whether b is older than a batch of its author
// already delivered, with no gap skipped between (a late copy, not a
// restarted publisher's). The validator drops such peer announcements:
// delivered, one would overwrite what its author has announced since, and
// a link it lists may be gone.
func (r *reorderer) superseded(b *batch) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.supersededLocked(b)
}

// supersededLocked implements superseded; r.mu held.
func (r *reorderer) supersededLocked(b *batch) bool {
	a := r.authors[string(b.author)]
	return a != nil && !a.loose && b.seq < a.next && a.next-b.seq < reorderRestart
}
