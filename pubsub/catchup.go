package pubsub

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
	"google.golang.org/protobuf/proto"

	"github.com/reflectmesh/reflect/internal/coarse"
)

// Catching up on announcements.
//
// GossipSub brings a node the peer announcements (topology.go) made while
// it is connected, and nothing older. A node that joins a mesh, or comes
// back across a healed partition, would learn a far node's links only
// from that node's next announcement that crosses the mesh (a change, or
// then a refresh, at 100 nodes a minute or more away); and for that,
// every relay passed on every
// author's next refresh after any node appeared, which at 100 nodes was
// most of the idle mesh's work for two minutes after it formed.
//
// So two peers catch up with each other when they meet (and once more
// catchupAgain later): when one's pub/sub becomes ready to the other, the
// one whose id sorts first opens a catch-up stream and sends a flags byte
// and a digest (the batch number of the latest announcement it holds of
// each node, and a sum of what it says); the other answers with the
// announcements it holds that are newer and say something else, or of
// nodes the digest lacks, and names those it wants; the first sends those
// and closes. An announcement travels as GossipSub received it, a protobuf
// message with its author's signature: the receiver verifies the signature
// as GossipSub does, checks the batch as the topic's validator would (its author is
// the signer, it decodes, it is not older than the author's last), and
// delivers it in the author's sequence (order.go: jump); the first copy
// GossipSub brings of it afterwards is not delivered again, but relayed
// like any other (gossipedCaughtUp). Only old news
// goes out, announcements the giver has held for linkAgeCap: a younger
// one is still on its way through GossipSub, and its author repeats it
// (while a mesh of 100 formed, handing over the young ones too was 27,000
// announcements verified; old news only, 3,000 to 5,600). And only those
// of nodes the giver can reach (a node that left is not brought back), at
// most catchupMaxFrame bytes of them at once.
//
// And every node catches up with one of its peers, at random, once per
// refresh period (refreshInterval): a node that missed an announcement
// (a queue full, a stream lost) learns it within about a period, so an
// unchanged refresh need not cross the mesh (knownRefresh).
//
// The same exchange settles a debt (owes). A node that learnt, by catching
// up, old news from a peer it reaches only through their link (a bridge
// between two parts of the mesh: a partition healed, two groups joined;
// not a link of a forming mesh, whose nodes reach each other through
// others too), or from a peer that owed it (the same, one step further),
// holds something its other peers may lack (topology.owes), if the news
// is of a node it did not reach, or of a link gone (owedNews): once
// it has settled (announceSettle), it catches up with every peer, at most
// once per catchupEvery. So every node's peers hold what it holds, and a
// refresh that says nothing new needs no relay (knownRefresh). A forming
// mesh's gains are not owed: a newcomer's first peer is a bridge too, and
// what the nodes did not relay while the mesh formed around them, its
// authors repeat (topology.go). (Owing those too, while a mesh of 100
// formed, was 5,400-6,900 catch-ups; now 3,000-4,500.)
//
// An announcement caught up a while after it was made would make its
// young links look new: the giver tells how long it has held each one,
// and the receiver ages them by that (agedBy; linkage.go). (Old news only
// going out, that leaves no young link today; the field lets a giver hand
// over younger ones without misleading the receiver.)

// catchupProtocol is the stream protocol of catch-ups.
const catchupProtocol = protocol.ID("/reflect/pubsub/catchup/1.0.0")

const (
	// catchupTimeout bounds one exchange.
	catchupTimeout = 10 * time.Second
	// catchupAgain: two peers that met catch up again this long after
	// the first time. What one of them held then was partly young (on its
	// way through GossipSub, not handed over), and its author's repeat may
	// have reached the node before GossipSub put the new peer in the
	// node's mesh for the topic: by now, it is old news.
	catchupAgain = linkAgeCap + 500*time.Millisecond
	// catchupEvery spaces the rounds that settle a debt.
	catchupEvery = 2 * time.Second
	// catchupRetry: after a round in which a connected peer failed, the
	// next one waits this long.
	catchupRetry = 5 * time.Second
	// catchupMaxFrame bounds a frame of the exchange: a digest, an answer
	// or the announcements wanted.
	catchupMaxFrame = 16 << 20
	// maxCatchupAuthors bounds the nodes of a digest or a list of wants.
	maxCatchupAuthors = maxAnnounced
)

// catchupFlagRound, in the flags byte that opens a catch-up's first frame,
// says that the opener owes what it hands over (a round: see owes). Other
// bits are ignored.
const catchupFlagRound = 1 << 0

// heldAnnouncement is an author's latest announcement, as signed, and
// when it was made at the latest (when we published it, received it, or
// received it by catching up less how long the giver had held it).
type heldAnnouncement struct {
	seq uint64
	msg *pb.Message
	at  time.Time
	sum uint64 // of what it says (sumOf; 0 for our own)
	// caught: learnt by catching up, and no copy come through GossipSub
	// since (gossipedCaughtUp).
	caught bool
}

// givenAnnouncement is a held announcement as a catch-up hands it over:
// its protobuf bytes, and how long the giver has held it (at most
// linkAgeCap: an announcement is old news after that). The receiver adds
// that to the ages of its young links (linkage.go): an announcement
// caught up a while after it was made does not make its links look new.
type givenAnnouncement struct {
	raw  []byte
	held time.Duration
}

// catchups keeps this node's catch-up streams and the peers to catch up
// with.
type catchups struct {
	wake chan struct{} // a peer was added to pending

	mu      sync.Mutex
	closing bool
	pending []dueCatchUp                // new peers, for catchupLoop
	streams map[network.Stream]struct{} // open, both ways: reset at Close
	serving sync.WaitGroup              // the handlers of inbound streams
}

func newCatchups() *catchups {
	return &catchups{wake: make(chan struct{}, 1), streams: map[network.Stream]struct{}{}}
}

// ready queues a catch-up with q, a peer our pub/sub just became ready to,
// if we are the one of the two to open it. It does not block.
func (c *catchups) ready(self, q peer.ID) {
	if self >= q {
		return
	}
	now := time.Now()
	c.mu.Lock()
	c.pending = append(c.pending, dueCatchUp{q, now}, dueCatchUp{q, now.Add(catchupAgain)})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// dueCatchUp is a catch-up with a peer queued by ready, due at a time.
type dueCatchUp struct {
	peer peer.ID
	at   time.Time
}

// take returns the peers whose catch-ups queued by ready are due at now,
// and how long until the next one is (0: none).
func (c *catchups) take(now time.Time) ([]peer.ID, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var due []peer.ID
	var next time.Duration
	rest := c.pending[:0]
	for _, d := range c.pending {
		if wait := d.at.Sub(now); wait > 0 {
			rest = append(rest, d)
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		due = append(due, d.peer)
	}
	c.pending = rest
	return due, next
}

// track registers s for reset at close; false if closing (s was reset).
func (c *catchups) track(s network.Stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		_ = s.Reset()
		return false
	}
	c.streams[s] = struct{}{}
	return true
}

func (c *catchups) untrack(s network.Stream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
}

// close resets every open stream and waits for the inbound ones' handlers.
func (c *catchups) close() {
	c.mu.Lock()
	c.closing = true
	for s := range c.streams {
		_ = s.Reset()
	}
	c.mu.Unlock()
	c.serving.Wait()
}

// startCatchups serves catch-ups and runs the loop that opens them.
func (p *PubSub) startCatchups() {
	p.host.SetStreamHandler(catchupProtocol, p.serveCatchUp)
	p.goOwned(p.catchupLoop)
}

// stopCatchups ends every catch-up (Close).
func (p *PubSub) stopCatchups() {
	p.host.RemoveStreamHandler(catchupProtocol)
	p.catch.close()
}

// catchupLoop catches up with each new peer when ready queued it for (at
// once, and catchupAgain later), with every peer once the node owes them
// (see the top) and has settled, and with a random peer once per refresh
// period.
func (p *PubSub) catchupLoop() {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	periodic := time.NewTimer(coarse.Delay(refreshInterval(p.topo.size())))
	defer periodic.Stop()
	roundDone := make(chan bool, 1) // true: retry
	var owed, running bool
	var notBefore time.Time
	later := time.NewTimer(time.Hour) // the next catch-up queued by ready
	later.Stop()
	defer later.Stop()
	for {
		now := time.Now()
		due, next := p.catch.take(now)
		for _, q := range due {
			if p.host.Network().Connectedness(q) == network.Connected {
				wg.Go(func() { p.logCatchUp(q, p.catchUp(q, false)) })
			}
		}
		if next > 0 {
			later.Reset(next)
		}
		if owed && !running {
			if wait := max(p.topo.settlesIn(now), notBefore.Sub(now)); wait > 0 {
				timer.Reset(wait)
			} else {
				owed, running, notBefore = false, true, now.Add(catchupEvery)
				wg.Go(func() { roundDone <- p.catchupRound() })
			}
		}
		select {
		case <-p.ctx.Done():
			return
		case <-later.C:
		case <-p.catch.wake:
		case <-p.topo.owes:
			owed = true
		case retry := <-roundDone:
			running = false
			if retry {
				owed, notBefore = true, time.Now().Add(catchupRetry)
			}
		case <-timer.C:
		case <-periodic.C:
			if q, ok := p.topo.randomReady(); ok {
				wg.Go(func() { p.logCatchUp(q, p.catchUp(q, false)) })
			}
			periodic.Reset(coarse.Delay(refreshInterval(p.topo.size())))
		}
	}
}

// bridge reports whether q, a peer, is reached only through our link to
// it: no announced path from our other peers leads to it.
func (t *topology) bridge(q peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[peer.ID]bool{t.self: true, q: true}
	var queue []peer.ID
	for u := range t.ready {
		if !seen[u] {
			seen[u] = true
			queue = append(queue, u)
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for v := range t.theirs[u] {
			if v == q {
				return false
			}
			if !seen[v] {
				seen[v] = true
				queue = append(queue, v)
			}
		}
	}
	return true
}

// randomReady returns a peer our pub/sub sends to, at random (false: none).
func (t *topology) randomReady() (peer.ID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.ready) == 0 {
		return "", false
	}
	i := rand.N(len(t.ready))
	for q := range t.ready {
		if i == 0 {
			return q, true
		}
		i--
	}
	return "", false
}

// catchupRound catches up with every peer our pub/sub sends to, and then
// records that they hold what we held when it began. It reports whether
// a peer still connected failed (the round is to be tried again).
func (p *PubSub) catchupRound() (retry bool) {
	sums, peers := p.topo.roundStart(time.Now())
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, q := range peers {
		wg.Go(func() {
			err := p.catchUp(q, true)
			p.logCatchUp(q, err)
			if err != nil && !errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) &&
				p.host.Network().Connectedness(q) == network.Connected && p.ctx.Err() == nil {
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	p.topo.gave(sums)
	return failed.Load()
}

// logCatchUp logs a failed catch-up at Debug: a peer that leaves, or runs
// a version without catch-ups, fails it too.
func (p *PubSub) logCatchUp(q peer.ID, err error) {
	if err != nil && p.ctx.Err() == nil {
		p.log.Debug("pubsub: no catch-up with a peer", "peer", q, "err", err)
	}
}

// catchUp runs one exchange with q, opening it: our digest, its answer,
// the announcements it wants. round: we owe q what we learnt (a round).
func (p *PubSub) catchUp(q peer.ID, round bool) (err error) {
	ctx, cancel := context.WithTimeout(p.ctx, catchupTimeout)
	defer cancel()
	s, err := p.host.NewStream(network.WithNoDial(ctx, "pubsub catch-up"), q, catchupProtocol)
	if err != nil {
		return err
	}
	if !p.catch.track(s) {
		return ErrClosed
	}
	defer p.endCatchUp(s, &err)
	_ = s.SetDeadline(time.Now().Add(catchupTimeout))
	bridge := p.topo.bridge(q)
	var flags byte
	if round {
		flags |= catchupFlagRound
	}
	if _, err := s.Write(catchupFrame(append([]byte{flags}, encodeDigest(p.topo.digest())...))); err != nil {
		return err
	}
	r := bufio.NewReader(s)
	frame, err := readCatchupFrame(r)
	if err != nil {
		return err
	}
	given, rest, err := decodeGiven(frame)
	if err != nil {
		return err
	}
	want, err := decodeIDs(rest)
	if err != nil {
		return err
	}
	if err := p.learnCaughtUp(q, given, round || bridge); err != nil {
		return err
	}
	if _, err := s.Write(catchupFrame(appendGiven(nil, p.topo.heldFor(want, time.Now())))); err != nil {
		return err
	}
	return nil
}

// serveCatchUp answers a peer's catch-up.
func (p *PubSub) serveCatchUp(s network.Stream) {
	c := p.catch
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		_ = s.Reset()
		return
	}
	c.serving.Add(1)
	c.streams[s] = struct{}{}
	c.mu.Unlock()
	defer c.serving.Done()
	var err error
	defer p.endCatchUp(s, &err)
	from := s.Conn().RemotePeer()
	bridge := p.topo.bridge(from)
	_ = s.SetDeadline(time.Now().Add(catchupTimeout))
	r := bufio.NewReader(s)
	var frame []byte
	if frame, err = readCatchupFrame(r); err != nil {
		return
	}
	flags := frame[0] // frames are never empty (readCatchupFrame)
	var digest map[peer.ID]digested
	if digest, err = decodeDigest(frame[1:]); err != nil {
		return
	}
	give, want := p.topo.catchupFor(digest, time.Now())
	if _, err = s.Write(catchupFrame(appendIDs(appendGiven(nil, give), want))); err != nil {
		return
	}
	if frame, err = readCatchupFrame(r); err != nil {
		return
	}
	var given []givenAnnouncement
	if given, _, err = decodeGiven(frame); err != nil {
		return
	}
	err = p.learnCaughtUp(from, given, bridge || flags&catchupFlagRound != 0)
}

// endCatchUp closes s after an exchange, or resets it after a failure,
// counting what failed for a malformed frame.
func (p *PubSub) endCatchUp(s network.Stream, err *error) {
	p.catch.untrack(s)
	if *err != nil {
		if errors.Is(*err, ErrMalformed) || errors.Is(*err, ErrTooLarge) {
			p.count.invalid.Add(1)
			p.log.Debug("pubsub: bad catch-up frame", "peer", s.Conn().RemotePeer(), "err", *err)
		}
		_ = s.Reset()
		return
	}
	p.count.catchUps.Add(1)
	_ = s.Close()
}

var errCatchupSigner = errors.New("announcement not signed by its author")

// learnCaughtUp checks the announcements from handed us and learns those
// newer than what we hold. One that is not a signed announcement of this
// mesh ends the exchange (the peer is broken or hostile). owe: old news
// learnt is owed to our other peers (from owed it to us, or the link to it
// is a bridge: see owes).
func (p *PubSub) learnCaughtUp(from peer.ID, given []givenAnnouncement, owe bool) error {
	t := p.announcements
	var reached map[peer.ID]peer.ID // whom we reached before: news of others is owed
	if owe {
		reached = p.topo.reachableNodes()
	}
	for _, g := range given {
		m := new(pb.Message)
		if err := proto.Unmarshal(g.raw, m); err != nil {
			return fmt.Errorf("%w: caught-up announcement: %w", ErrMalformed, err)
		}
		if m.GetTopic() != t.wire {
			return fmt.Errorf("%w: caught-up message of topic %q", ErrMalformed, m.GetTopic())
		}
		b, err := decodeBatch(m.GetData(), p.cfg.MaxMessageSize)
		if err != nil {
			return err
		}
		author := peerID(b.author)
		if string(b.author) != string(m.GetFrom()) {
			p.forged(t.name, author, from)
			return fmt.Errorf("%w: caught-up announcement of %s signed by another", ErrMalformed, author)
		}
		if author == p.host.ID() || t.order.superseded(b) {
			continue // ours, or not newer than what we hold: not even verified
		}
		if err := verifySigned(m); err != nil {
			p.forged(t.name, author, from)
			return fmt.Errorf("%w: caught-up announcement of %s: %w", ErrMalformed, author, err)
		}
		if err := t.vet(b); err != nil {
			return err
		}
		agedBy(b.vals, g.held)
		// Judged before jump delivers it: the subscription learns it
		// on a goroutine of its own (a link gone would look kept).
		owed := owe && g.held >= linkAgeCap && p.topo.owedNews(author, b.vals, reached)
		if !t.order.jump(b) {
			continue
		}
		p.topo.hold(author, b.seq, m, time.Now().Add(-g.held), b.vals)
		p.topo.caughtUp(author, b.seq, b.vals, owed)
		p.count.caughtUp.Add(1)
	}
	return nil
}

// verifySigned checks m's signature as GossipSub does (StrictSign): by the
// key of m.From (the key in m.Key, which must match m.From, or the one
// m.From embeds), over the message without signature and key, after
// GossipSub's prefix. (GossipSub does not export its own check.)
func verifySigned(m *pb.Message) error {
	from, err := peer.IDFromBytes(m.GetFrom())
	if err != nil {
		return err
	}
	var key crypto.PubKey
	if k := m.GetKey(); k != nil {
		if key, err = crypto.UnmarshalPublicKey(k); err != nil {
			return err
		}
		if !from.MatchesPublicKey(key) {
			return errCatchupSigner
		}
	} else if key, err = from.ExtractPublicKey(); err != nil {
		return err
	}
	unsigned := proto.CloneOf(m)
	unsigned.Signature, unsigned.Key = nil, nil
	data, err := proto.Marshal(unsigned)
	if err != nil {
		return err
	}
	ok, err := key.Verify(append([]byte(lp2pps.SignPrefix), data...), m.GetSignature())
	if err != nil {
		return err
	}
	if !ok {
		return errCatchupSigner
	}
	return nil
}

// hold keeps m, author's announcement in batch seq, made at the latest
// at at, which says the last of vals (nil for our own), unless a later one
// of author's is held.
func (t *topology) hold(author peer.ID, seq uint64, m *pb.Message, at time.Time, vals []any) {
	var sum uint64
	if len(vals) > 0 {
		if a, ok := vals[len(vals)-1].(announcement); ok {
			sum = sumOf(a)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.held[author]; ok && h.seq >= seq {
		return
	}
	t.held[author] = heldAnnouncement{seq: seq, msg: m, at: at, sum: sum}
}

// gossipedCaughtUp reports whether author's announcement in batch seq,
// come through GossipSub, is the one we caught up on, the first copy of
// it to come so: delivered already, but still on its way through
// GossipSub, to our mesh peers too (the caller decides whether to relay
// it). Such copies were dropped as superseded before, 4,400 of the 35,000
// announcement copies validated while a mesh of 100 formed, and the nodes
// beyond waited for catch-ups of their own.
func (t *topology) gossipedCaughtUp(author peer.ID, seq uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.held[author]
	if !ok || !h.caught || h.seq != seq {
		return false
	}
	h.caught = false
	t.held[author] = h
	return true
}

// agedBy adds d to the ages of the young links of the announcement in
// vals (the last value, as the topic's decoder made it), dropping those
// it makes linkAgeCap or older.
func agedBy(vals []any, d time.Duration) {
	a, ok := vals[len(vals)-1].(announcement)
	if !ok || d <= 0 || len(a.ages) == 0 {
		return
	}
	ages := make([]linkAge, 0, len(a.ages))
	for _, l := range a.ages {
		if l.age += d; l.age < linkAgeCap {
			ages = append(ages, l)
		}
	}
	a.ages = ages
	vals[len(vals)-1] = a
}

// given returns h as a catch-up hands it over at now.
func (h heldAnnouncement) given(now time.Time) (givenAnnouncement, error) {
	raw, err := proto.Marshal(h.msg)
	return givenAnnouncement{raw: raw, held: min(linkAgeCap, max(0, now.Sub(h.at)))}, err
}

// caughtUp records author's announcement, in batch number seq, learnt by
// catching up; owe: our other peers may lack it (see owes, owedNews).
func (t *topology) caughtUp(author peer.ID, seq uint64, vals []any, owe bool) {
	a, ok := vals[len(vals)-1].(announcement)
	if !ok {
		return
	}
	sum := sumOf(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen[author] = seenAnnouncement{sum, seq}
	if h, ok := t.held[author]; ok && h.seq == seq {
		h.caught = true
		t.held[author] = h
	}
	if given, ok := t.given[author]; owe && (!ok || given != sum) {
		t.oweLocked()
	}
}

// owedNews reports whether author's announcement (the last of vals),
// caught up on and not learnt yet, tells our other peers something the
// mesh's own announcements do not bring them: author was not reached
// (reached: the nodes we reached before the exchange; two parts of a
// mesh met), or a link author announced before is gone. A forming mesh's
// gains, which nodes relaying nothing left out, reach everyone with their
// authors' repeats (topology.go).
func (t *topology) owedNews(author peer.ID, vals []any, reached map[peer.ID]peer.ID) bool {
	a, ok := vals[len(vals)-1].(announcement)
	if !ok {
		return false
	}
	if _, ok := reached[author]; !ok {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := make(map[peer.ID]struct{}, len(a.peers))
	for _, q := range a.peers {
		now[q] = struct{}{}
	}
	for q := range t.theirs[author] {
		if _, ok := now[q]; !ok {
			return true
		}
	}
	return false
}

// reachableNodes returns the nodes we reach now, each with its next hop:
// read-only (the cached routes, replaced at the next change).
func (t *topology) reachableNodes() map[peer.ID]peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hopsLocked()
}

// roundStart returns, at now, what a round of catch-ups hands over (the
// sums of what the old news we hold says: givableLocked, whatever the
// reach) and the peers our pub/sub sends to: a round begins.
func (t *topology) roundStart(now time.Time) (map[peer.ID]uint64, []peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sums := make(map[peer.ID]uint64, len(t.held))
	for q, h := range t.held {
		if q != t.self && now.Sub(h.at) >= linkAgeCap {
			sums[q] = h.sum
		}
	}
	return sums, sortedPeers(t.ready)
}

// gave records that our peers hold what sums says (a round has ended).
func (t *topology) gave(sums map[peer.ID]uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for q, s := range sums {
		t.given[q] = s
	}
}

// digested is what a digest says of a node's announcement held: its
// batch number, and the sum of what it says (sumOf).
type digested struct {
	seq, sum uint64
}

// digest returns, for each announcement held, ours included, its batch
// number and sum, at most maxCatchupAuthors of them.
func (t *topology) digest() map[peer.ID]digested {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := make(map[peer.ID]digested, min(len(t.held), maxCatchupAuthors))
	for q, h := range t.held {
		if len(d) == maxCatchupAuthors {
			break
		}
		d[q] = digested{h.seq, h.sum}
	}
	return d
}

// catchupFor answers a digest: the announcements we hold that it lacks, or
// has older and saying something else (givableLocked ones), and the nodes
// whose announcement it has newer and saying something else, or that we
// lack (ours left out). A newer refresh of what the other holds is not
// worth verifying.
func (t *topology) catchupFor(d map[peer.ID]digested, now time.Time) (give []givenAnnouncement, want []peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hops := t.hopsLocked()
	budget := catchupMaxFrame - binary.MaxVarintLen64 - (maxCatchupAuthors * (maxAuthorLen + binary.MaxVarintLen64))
	for _, q := range sortedPeers(t.held) {
		h := t.held[q]
		if e, ok := d[q]; (ok && (e.seq >= h.seq || e.sum == h.sum)) || !t.givableLocked(q, h, hops, now) {
			continue
		}
		g, err := h.given(now)
		if err != nil || len(g.raw)+2*binary.MaxVarintLen64 > budget {
			continue
		}
		budget -= len(g.raw) + 2*binary.MaxVarintLen64
		give = append(give, g)
	}
	for q, e := range d {
		if h, ok := t.held[q]; q != t.self && (!ok || (h.seq < e.seq && h.sum != e.sum)) {
			want = append(want, q)
		}
	}
	slices.Sort(want)
	return give, want
}

// heldFor returns the announcements of want that we hold, of nodes we can
// reach, within catchupMaxFrame.
func (t *topology) heldFor(want []peer.ID, now time.Time) []givenAnnouncement {
	t.mu.Lock()
	defer t.mu.Unlock()
	hops := t.hopsLocked()
	budget := catchupMaxFrame - binary.MaxVarintLen64
	var out []givenAnnouncement
	for _, q := range want {
		h, ok := t.held[q]
		if !ok || !t.givableLocked(q, h, hops, now) {
			continue
		}
		g, err := h.given(now)
		if err != nil || len(g.raw)+2*binary.MaxVarintLen64 > budget {
			continue
		}
		budget -= len(g.raw) + 2*binary.MaxVarintLen64
		out = append(out, g)
	}
	return out
}

// givableLocked reports whether q's announcement h is one to give at now:
// old news (held for linkAgeCap: a younger one is still on its way
// through GossipSub, and its author repeats it), of ours, a neighbour's or
// a node we reach (hops: hopsLocked). t.mu held.
func (t *topology) givableLocked(q peer.ID, h heldAnnouncement, hops map[peer.ID]peer.ID, now time.Time) bool {
	if now.Sub(h.at) < linkAgeCap {
		return false
	}
	if q == t.self {
		return true
	}
	if _, ok := t.mine[q]; ok {
		return true
	}
	_, ok := hops[q]
	return ok
}

// catchupFrame returns payload as a frame: its length, then itself.
func catchupFrame(payload []byte) []byte {
	return append(binary.AppendUvarint(make([]byte, 0, len(payload)+binary.MaxVarintLen64), uint64(len(payload))), payload...)
}

// readCatchupFrame reads one frame of at most catchupMaxFrame bytes,
// taking memory as its bytes arrive.
func readCatchupFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if n > catchupMaxFrame {
		return nil, fmt.Errorf("%w: catch-up frame of %d bytes", ErrTooLarge, n)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty catch-up frame", ErrMalformed)
	}
	return readFrame(r, n)
}

// encodeDigest encodes a digest: the count, then for each node, sorted
// by id, its id (length and bytes), the batch number and the sum (8
// bytes, big-endian).
func encodeDigest(d map[peer.ID]digested) []byte {
	b := binary.AppendUvarint(nil, uint64(len(d)))
	for _, q := range sortedPeers(d) {
		b = appendString(b, string(q))
		b = binary.AppendUvarint(b, d[q].seq)
		b = binary.BigEndian.AppendUint64(b, d[q].sum)
	}
	return b
}

// decodeDigest decodes encodeDigest's encoding, all of b.
func decodeDigest(b []byte) (map[peer.ID]digested, error) {
	n, b, err := readUvarint(b, "catch-up digest count")
	if err != nil {
		return nil, err
	}
	if n > maxCatchupAuthors || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: catch-up digest of %d nodes", ErrMalformed, n)
	}
	d := make(map[peer.ID]digested, n)
	for range n {
		var id string
		var seq uint64
		if id, b, err = readID(b); err != nil {
			return nil, err
		}
		if seq, b, err = readUvarint(b, "catch-up digest batch number"); err != nil {
			return nil, err
		}
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: catch-up digest sum", ErrMalformed)
		}
		sum := binary.BigEndian.Uint64(b)
		b = b[8:]
		if _, dup := d[peer.ID(id)]; dup {
			return nil, fmt.Errorf("%w: a node twice in a catch-up digest", ErrMalformed)
		}
		d[peer.ID(id)] = digested{seq, sum}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in a catch-up digest", ErrMalformed, len(b))
	}
	return d, nil
}

// appendGiven appends a list of announcements: the count, then for each
// its length and bytes, and how long the giver has held it (ms).
func appendGiven(b []byte, given []givenAnnouncement) []byte {
	b = binary.AppendUvarint(b, uint64(len(given)))
	for _, g := range given {
		b = binary.AppendUvarint(b, uint64(len(g.raw)))
		b = append(b, g.raw...)
		b = binary.AppendUvarint(b, uint64(g.held/time.Millisecond))
	}
	return b
}

// decodeGiven decodes appendGiven's list at the start of b and returns
// what follows it. The announcements alias b; a time held beyond
// linkAgeCap is refused (no giver sends one).
func decodeGiven(b []byte) ([]givenAnnouncement, []byte, error) {
	n, b, err := readUvarint(b, "catch-up announcement count")
	if err != nil {
		return nil, nil, err
	}
	if n > maxCatchupAuthors || n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %d caught-up announcements", ErrMalformed, n)
	}
	out := make([]givenAnnouncement, 0, n)
	for range n {
		l, k := uvarint(b)
		if k <= 0 || l == 0 || l > uint64(len(b)-k) {
			return nil, nil, fmt.Errorf("%w: caught-up announcement length", ErrMalformed)
		}
		raw := b[k : k+int(l)]
		var ms uint64
		if ms, b, err = readUvarint(b[k+int(l):], "caught-up announcement's time held"); err != nil {
			return nil, nil, err
		}
		if ms > uint64(linkAgeCap/time.Millisecond) {
			return nil, nil, fmt.Errorf("%w: caught-up announcement held %d ms", ErrMalformed, ms)
		}
		out = append(out, givenAnnouncement{raw: raw, held: time.Duration(ms) * time.Millisecond})
	}
	return out, b, nil
}

// appendIDs appends a list of node ids: the count, then each id's length
// and bytes.
func appendIDs(b []byte, ids []peer.ID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, q := range ids {
		b = appendString(b, string(q))
	}
	return b
}

// decodeIDs decodes appendIDs' list, all of b.
func decodeIDs(b []byte) ([]peer.ID, error) {
	n, b, err := readUvarint(b, "catch-up want count")
	if err != nil {
		return nil, err
	}
	if n > maxCatchupAuthors || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d nodes wanted", ErrMalformed, n)
	}
	out := make([]peer.ID, 0, n)
	for range n {
		var id string
		if id, b, err = readID(b); err != nil {
			return nil, err
		}
		out = append(out, peer.ID(id))
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the nodes wanted", ErrMalformed, len(b))
	}
	return out, nil
}

// readID reads a node id: a length of 1 to maxAuthorLen bytes, and those.
func readID(b []byte) (string, []byte, error) {
	id, rest, err := readString(b, maxAuthorLen, "catch-up node id")
	if err == nil && id == "" {
		err = fmt.Errorf("%w: empty catch-up node id", ErrMalformed)
	}
	return id, rest, err
}
