package node

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/reflectmesh/reflect/internal/coarse"
)

// dialSlack is how much longer than Config.DialTimeout a dial may take in
// all: see dialOnce.
const dialSlack = 250 * time.Millisecond

// maxConcurrentDials bounds the members' dials in flight (candidates have
// slots of their own: candidates.go).
const maxConcurrentDials = 16

// source says how we learnt of a peer.
type source int

const (
	fromMDNS source = iota
	fromBootstrap
	fromConnection
	fromExchange // another member's answer (exchange.go)
)

func (s source) String() string {
	switch s {
	case fromMDNS:
		return "mdns"
	case fromBootstrap:
		return "bootstrap"
	case fromConnection:
		return "connection"
	case fromExchange:
		return "exchange"
	}
	return "unknown"
}

// member is what we remember of one peer that connected, or that the
// application named (bootstrap, Connect).
type member struct {
	addrs       []ma.Multiaddr // last known dialable addresses, from the peer or the application
	hints       []ma.Multiaddr // addresses from mDNS adverts (unauthenticated), tried after addrs
	keep        bool           // bootstrap or explicitly connected: never forget
	boot        []ma.Multiaddr // bootstrap addresses given without a peer id, where this peer was found (byaddr.go)
	placeholder bool           // its id is a placeholder: boot's peer id is not known yet
	connected   bool
	connectedAt time.Time
	ready       bool // its pub/sub hello arrived in this session
	joined      bool // PeerJoined reported (connected and ready)
	joinedOnce  bool // joined at least once (Stats.Reconnects)
	dialing     bool
	lostAt      time.Time // when it was last seen disconnected
	trimmedAt   time.Time // when this node closed its connection to keep MaxPeers (degree.go)
	keeps       bool      // it keeps this node for good, and said so on this connection (keep.go)
}

// readyGrace is how long a connected peer may stay without a pub/sub hello
// before it is reported as joined anyway (a libp2p peer that is not a
// Reflect node, or a hello lost in a race).
const readyGrace = 3 * time.Second

// Membership.
//
// members is the one owner of this node's view of its peers: whom it is
// connected to (from the host's events), and who has joined. Pub/sub follows
// the connections from it (pubsub.Membership: FollowConnections) and tells
// it when a peer's pub/sub is ready (PubSubReady); the store follows the
// joins (Node.OnNeighbour).
//
// A peer has joined when it is connected and its pub/sub is ready, so that
// a broadcast from then on reaches the subscriptions it has; or when it has
// been connected for readyGrace without that (a libp2p peer that is not a
// Reflect node). It leaves when its last connection closes. Node.Neighbours
// and Node.OnNeighbour count joined peers; Node.Peers, WaitPeers and OnPeer
// count members, the joined peers and those beyond them (meshview.go).
//
// members also keeps the reconnect loop: libp2p never redials a lost peer
// and mDNS reports a peer once, so we remember every member's addresses and
// redial with jittered exponential backoff, one dial loop per member at a
// time. Peers found by mDNS or peer exchange (exchange.go) are candidates
// until they connect (candidates.go): they never take a member's place or
// dial slot.
type members struct {
	h     host.Host
	cfg   Config
	log   *slog.Logger
	self  peer.ID
	count *counters
	warns *warnLimiter
	gate  *handshakeGate // set by New, for forgetSelf

	ctx      context.Context
	wg       *sync.WaitGroup
	sem      chan struct{} // members' dial slots
	candWake chan struct{} // wakes dialCandidates
	sweepNow chan struct{} // brings run's next sweep forward (kickSweep)
	tcp      *tcpConns     // the node's TCP connections, for closeSilent (nil: not watched), set by New
	subs     event.Subscription

	mu          sync.Mutex
	peers       map[peer.ID]*member
	cands       candidateTable
	candDialing int                               // candidate dials in flight, at most maxCandidateDials
	nconn       int                               // connected peers (degree.go)
	bounded     bool                              // Config.MaxPeers unset and the mesh too large for a full one (degree.go)
	started     time.Time                         // when the node started (degree.go)
	mesh        meshView                          // pub/sub's view of the mesh, once followMesh runs
	far         map[peer.ID]time.Time             // peers other nodes announce they send to, since when (meshview.go)
	degrees     map[peer.ID]int                   // how many peers each reachable node announces (meshview.go)
	shown       map[peer.ID]struct{}              // members reported joined to OnPeer: joined or far
	watchers    map[*watcher[PeerEvent]]struct{}  // OnPeer: members' joins and leaves
	neighbours  map[*watcher[PeerEvent]]struct{}  // OnNeighbour: direct peers' joins and leaves
	followers   map[*watcher[connChange]]struct{} // FollowConnections: connections
	changed     chan struct{}                     // closed and replaced on every change of shown
	nchanged    chan struct{}                     // closed and replaced on every neighbour's join or leave

	exchangeProto protocol.ID           // peer exchange's protocol ("": off), set by New
	keepProto     protocol.ID           // the keep streams' protocol ("": off), set by New
	exchanged     map[peer.ID]time.Time // when each peer last asked us (exchange.go)
}

// connChange is a change of a peer's connectedness, for FollowConnections.
type connChange struct {
	p  peer.ID
	up bool
}

func newMembers(ctx context.Context, wg *sync.WaitGroup, h host.Host, cfg Config, count *counters, warns *warnLimiter) (*members, error) {
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtPeerConnectednessChanged),
		new(event.EvtPeerIdentificationCompleted),
	})
	if err != nil {
		return nil, err
	}
	return &members{
		h:          h,
		cfg:        cfg,
		log:        cfg.Logger,
		self:       h.ID(),
		count:      count,
		warns:      warns,
		ctx:        ctx,
		started:    time.Now(),
		wg:         wg,
		sem:        make(chan struct{}, maxConcurrentDials),
		candWake:   make(chan struct{}, 1),
		sweepNow:   make(chan struct{}, 1),
		subs:       sub,
		peers:      make(map[peer.ID]*member),
		cands:      newCandidateTable(),
		far:        make(map[peer.ID]time.Time),
		shown:      make(map[peer.ID]struct{}),
		watchers:   make(map[*watcher[PeerEvent]]struct{}),
		neighbours: make(map[*watcher[PeerEvent]]struct{}),
		followers:  make(map[*watcher[connChange]]struct{}),
		changed:    make(chan struct{}),
		nchanged:   make(chan struct{}),
		exchanged:  make(map[peer.ID]time.Time),
	}, nil
}

// goOwned runs f on a goroutine the node waits for at Close.
func (ms *members) goOwned(f func()) {
	ms.wg.Add(1)
	go func() {
		defer ms.wg.Done()
		f()
	}()
}

// Sweep periods (run): sweepBusy while sweepEvery finds work, sweepIdle
// otherwise. A settled node's sweep finds nothing, and at 50 nodes the
// wake-ups of every process's timers, not any one computation, were most
// of an idle mesh's CPU.
const (
	sweepBusy = readyGrace / 4
	sweepIdle = 5 * time.Second
)

// run consumes host events until ctx ends, and sweeps (sweep, trim,
// refill) every sweepBusy while there is work for them, every sweepIdle
// otherwise (to the next whole second, with the node's other slow timers:
// internal/coarse).
func (ms *members) run() {
	defer ms.subs.Close()
	sweep := time.NewTimer(sweepBusy)
	defer sweep.Stop()
	next := time.Now().Add(sweepBusy)
	soon := func() {
		if time.Until(next) > sweepBusy {
			next = time.Now().Add(sweepBusy)
			sweep.Reset(sweepBusy)
		}
	}
	// A node sized to the mesh keeps DefaultMaxPeers at first (degree.go):
	// then its candidates may have room.
	var grown <-chan time.Time
	if ms.cfg.MaxPeers == 0 {
		grown = time.After(time.Until(ms.started.Add(fullMeshAfter)))
	}
	for {
		select {
		case <-ms.ctx.Done():
			return
		case <-grown:
			grown = nil
			ms.wakeCandidates()
			soon()
		case <-sweep.C:
			ms.sweep()
			ms.closeSilent()
			ms.trim()
			ms.refill()
			every := coarse.Delay(ms.sweepEvery()) // sweepIdle on the grid
			next = time.Now().Add(every)
			sweep.Reset(every)
		case <-ms.sweepNow:
			soon()
		case e, ok := <-ms.subs.Out():
			if !ok {
				return
			}
			soon()
			switch e := e.(type) {
			case event.EvtPeerConnectednessChanged:
				ms.connectedness(e.Peer, e.Connectedness)
			case event.EvtPeerIdentificationCompleted:
				ms.identified(e.Peer, e.Conn, e.ListenAddrs)
			}
		}
	}
}

func (ms *members) connectedness(p peer.ID, c network.Connectedness) {
	ms.mu.Lock()
	m := ms.peers[p]
	if m == nil {
		m = &member{}
		ms.peers[p] = m
	}
	startDial := false
	switch {
	case c == network.Connected && !m.connected:
		m.connected = true
		ms.nconn++
		m.connectedAt = time.Now()
		if cand := ms.cands.remove(p); cand != nil {
			m.hints = cand.addrs // it had the key: a member now
		}
		ms.followLocked(connChange{p, true})
		if len(m.addrs) == 0 {
			m.addrs = dialable(ms.h.Peerstore().Addrs(p), remoteIsLoopback(ms.h, p))
		}
		if m.ready {
			ms.joinLocked(p, m)
		}
		if m.keep {
			ms.tellKeptLocked(p)
		}
	case c == network.NotConnected && m.connected:
		m.connected = false
		ms.nconn--
		m.ready = false
		m.keeps = false
		m.lostAt = time.Now()
		ms.followLocked(connChange{p, false})
		if m.joined {
			m.joined = false
			ms.notifyNeighboursLocked(PeerEvent{ID: p, State: PeerLeft})
			ms.showLocked(p, time.Now())
			ms.log.Debug("node: peer disconnected", "peer", p)
		}
		// A peer kept for good is redialled at once, and so is any peer
		// of a full mesh (fewer members than MaxPeers). In a
		// partial mesh, refill and the candidates fill the room, with a
		// random pick (degree.go): the peer may have left us on purpose.
		startDial = ms.ctx.Err() == nil && (m.keep || (ms.roomLocked(0) && len(ms.shown) < ms.maxPeersLocked()))
	}
	ms.mu.Unlock()
	if startDial {
		ms.dial(p, false)
	}
	if c == network.NotConnected {
		ms.wakeCandidates() // room for one more, maybe
	}
}

// PubSubReady records that p's pub/sub is ready (pubsub.Membership): a
// connected peer is reported as joined from then on, when a broadcast can
// reach it. It runs on GossipSub's event loop, so it only takes the lock
// briefly.
func (ms *members) PubSubReady(p peer.ID) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.peers[p]
	if m == nil {
		m = &member{}
		ms.peers[p] = m
	}
	m.ready = true
	if m.connected && !m.joined {
		ms.joinLocked(p, m)
	}
}

// sweep reports as joined the peers connected for readyGrace without a
// pub/sub hello.
func (ms *members) sweep() {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for p, m := range ms.peers {
		if m.connected && !m.joined && time.Since(m.connectedAt) >= readyGrace {
			ms.log.Debug("node: peer connected without a pub/sub hello", "peer", p)
			ms.joinLocked(p, m)
		}
	}
}

// closeSilent closes the connections whose peer has not been heard from
// for the user timeout (silentlinks.go).
func (ms *members) closeSilent() {
	if ms.tcp == nil {
		return
	}
	for _, c := range silent(ms.tcp, ms.h.Network().Conns()) {
		ms.count.silentClosed.Add(1)
		ms.log.Debug("node: connection closed: peer silent", "peer", c.RemotePeer(), "remote", c.RemoteMultiaddr())
		_ = c.Close()
	}
}

// sweepEvery returns when run should sweep next: sweepBusy while a
// connected peer has not joined, the node has connections to trim, or
// room for a lost peer that refill would redial; sweepIdle otherwise.
// Changes that make work without a connection event (the mesh's size
// changes the degree) call kickSweep.
func (ms *members) sweepEvery() time.Duration {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	most := ms.maxPeersLocked()
	if ms.nconn > most+trimSlack(most) {
		return sweepBusy
	}
	for _, m := range ms.peers {
		if m.connected && !m.joined {
			return sweepBusy
		}
	}
	if len(ms.cands.byID) == 0 && len(ms.refillPicksLocked(time.Now())) > 0 {
		return sweepBusy
	}
	return sweepIdle
}

// kickSweep brings run's next sweep to within sweepBusy.
func (ms *members) kickSweep() {
	select {
	case ms.sweepNow <- struct{}{}:
	default:
	}
}

// joinLocked reports p as joined; ms.mu held.
func (ms *members) joinLocked(p peer.ID, m *member) {
	m.joined = true
	if m.joinedOnce {
		ms.count.reconnects.Add(1)
	}
	m.joinedOnce = true
	ms.joinedForExchange(p)
	ms.notifyNeighboursLocked(PeerEvent{ID: p, State: PeerJoined})
	ms.showLocked(p, time.Now())
	if ms.log.Enabled(ms.ctx, slog.LevelDebug) {
		// Who dialled whom, and this node's connections now: what a
		// churning mesh's logs are read for (issue 16).
		dir := "?"
		if cs := ms.h.Network().ConnsToPeer(p); len(cs) > 0 {
			dir = cs[0].Stat().Direction.String()
		}
		ms.log.Debug("node: peer connected and ready", "peer", p, "direction", dir, "peers", ms.nconn)
	}
}

// identified records the listen addresses a connected peer announced: they,
// not the ephemeral port of an inbound connection, are what we redial.
func (ms *members) identified(p peer.ID, conn network.Conn, addrs []ma.Multiaddr) {
	loop := conn != nil && manet.IsIPLoopback(conn.RemoteMultiaddr())
	d := dialable(addrs, loop)
	if len(d) == 0 {
		return
	}
	ms.mu.Lock()
	if m := ms.peers[p]; m != nil {
		m.addrs = d
	}
	ms.mu.Unlock()
}

// discovered handles a peer found by mDNS or peer exchange, or given as a
// bootstrap peer. A bootstrap peer is a member kept for good. An advert of
// a member adds hint addresses to it and redials it if it is lost; of
// anyone else, it makes a candidate (candidates.go). It reports whether a
// new candidate was taken.
func (ms *members) discovered(ai peer.AddrInfo, src source) bool {
	if ai.ID == ms.self || ai.ID == "" {
		return false
	}
	addrs := dialable(ai.Addrs, false)
	if len(addrs) == 0 {
		addrs = dialable(ai.Addrs, true) // only loopback: same host
	}
	if len(addrs) == 0 {
		return false
	}
	if src == fromBootstrap {
		ms.keepPeer(peer.AddrInfo{ID: ai.ID, Addrs: addrs})
		ms.dial(ai.ID, true)
		return false
	}
	if len(addrs) > maxAdvertAddrs {
		addrs = addrs[:maxAdvertAddrs]
	}
	now := time.Now()
	ms.mu.Lock()
	if m := ms.peers[ai.ID]; m != nil {
		m.hints = addrs
		lost := !m.connected && !m.dialing
		ms.mu.Unlock()
		if lost {
			ms.log.Debug("node: a lost member was named by discovery: redialling", "peer", ai.ID, "source", src)
		}
		ms.dial(ai.ID, false) // nothing if connected or already redialling
		return false
	}
	if ms.ctx.Err() != nil {
		ms.mu.Unlock()
		return false
	}
	due := now
	if bytes.Compare([]byte(ms.self), []byte(ai.ID)) > 0 {
		// Of two peers that discover each other at once, the one with the
		// smaller id dials first, so they usually share one connection.
		due = now.Add(jitter(2 * ms.cfg.ReconnectMin))
	}
	res := ms.cands.add(ai.ID, addrs, now, due)
	size := len(ms.cands.byID)
	ms.mu.Unlock()
	switch res {
	case candAdded, candEvicted:
		ms.count.candidatesAdded.Add(1)
		if res == candEvicted {
			ms.count.candidatesEvicted.Add(1)
		}
		ms.wakeCandidates()
	case candDropped:
		ms.count.candidatesDropped.Add(1)
		ms.warns.warn("candidates-full", "node: ignoring discovered peers: the table of untried candidates is full (forged adverts?)",
			"peer", ai.ID, "candidates", size)
	}
	return res == candAdded || res == candEvicted
}

// keepPeer makes ai a member kept for good (bootstrap, Connect), with its
// addresses as given.
func (ms *members) keepPeer(ai peer.AddrInfo) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.peers[ai.ID]
	if m == nil {
		m = &member{lostAt: time.Now()}
		ms.peers[ai.ID] = m
	}
	if cand := ms.cands.remove(ai.ID); cand != nil && len(m.hints) == 0 {
		m.hints = cand.addrs
	}
	if !m.keep && m.connected {
		ms.tellKeptLocked(ai.ID) // its connection's event came before
	}
	m.keep = true
	if d := dialable(ai.Addrs, true); len(d) > 0 {
		m.addrs = d
	}
	ms.protect(ai.ID)
}

// sizes returns the number of members and of candidates.
func (ms *members) sizes() (members, candidates int) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return len(ms.peers), len(ms.cands.byID)
}

// dial starts p's dial loop unless one is running or p is connected. Of two
// peers that discover each other at once, the one with the smaller id dials
// first and the other waits a little, so they usually share one connection.
func (ms *members) dial(p peer.ID, now bool) {
	ms.mu.Lock()
	m := ms.peers[p]
	if m == nil || m.dialing || ms.h.Network().Connectedness(p) == network.Connected || ms.ctx.Err() != nil ||
		(!m.keep && !ms.strandedLocked(p, m, time.Now()) && (!ms.roomLocked(0) || ms.fullLocked(p))) {
		ms.mu.Unlock()
		return
	}
	m.dialing = true
	ms.mu.Unlock()
	delay := time.Duration(0)
	if !now && bytes.Compare([]byte(ms.self), []byte(p)) > 0 {
		delay = jitter(2 * ms.cfg.ReconnectMin)
	}
	ms.goOwned(func() { ms.dialLoop(p, delay) })
}

func (ms *members) dialLoop(p peer.ID, delay time.Duration) {
	backoff := ms.cfg.ReconnectMin
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ms.ctx.Done():
			return
		case <-timer.C:
		}
		ms.mu.Lock()
		m := ms.peers[p]
		switch {
		case m == nil:
			ms.mu.Unlock()
			return
		case ms.h.Network().Connectedness(p) == network.Connected,
			!m.keep && !ms.strandedLocked(p, m, time.Now()) && (!ms.roomLocked(0) || ms.fullLocked(p)):
			m.dialing = false // connected, or enough peers without it, or no room at it (degree.go)
			ms.mu.Unlock()
			return
		case !m.keep && time.Since(m.lostAt) > ms.cfg.ForgetAfter:
			delete(ms.peers, p)
			ms.mu.Unlock()
			ms.log.Debug("node: forgetting unreachable peer", "peer", p)
			return
		}
		addrs := m.dialAddrs()
		keep, byAddr, placeholder := m.keep, len(m.boot) > 0, m.placeholder
		ms.mu.Unlock()
		if placeholder {
			if q := ms.connectedAt(addrs); q != "" && ms.learnID(p, q, true) {
				return // it dialled us first
			}
		}

		err := ms.connect(ms.ctx, peer.AddrInfo{ID: p, Addrs: addrs}, true)
		if err == nil {
			// The loop ends at the check above, once still connected a
			// moment later: a connection that closed at once was reported
			// while this loop was dialling, when dial started no other.
			timer.Reset(jitter(ms.cfg.ReconnectMin))
			backoff = ms.cfg.ReconnectMin
			continue
		}
		if placeholder && ms.dialledSelf(err) {
			ms.forgetSelf(p, addrs)
			return
		}
		if _, actual := dialFailure(err); actual != "" && byAddr && ms.learnID(p, actual, true) {
			return // the member moved to actual, with a dial loop of its own
		}
		if keep && ms.ctx.Err() == nil {
			ms.warnDialFailed(p, placeholder, addrs, err)
		}
		ms.log.Debug("node: dial failed", "peer", p, "err", err, "retry", backoff)
		timer.Reset(jitter(backoff))
		backoff = min(2*backoff, ms.cfg.ReconnectMax)
	}
}

// connect dials once, bounded by the dial timeout and the dial semaphore,
// ignoring libp2p's dial backoff (which would fail a redial of a peer that
// just came back without trying). ctx bounds the wait for the semaphore
// and, unless finish is set, the dial itself. A finished dial is one Close
// does not interrupt: the node waits for it (at most the dial timeout)
// before it closes the host, because libp2p's dial worker may still be
// handling a dial whose caller gave up, and crashes when the host's
// transports close under it (libp2p/go-libp2p#1545).
func (ms *members) connect(ctx context.Context, ai peer.AddrInfo, finish bool) error {
	select {
	case ms.sem <- struct{}{}:
		defer func() { <-ms.sem }()
	case <-ctx.Done():
		return ctx.Err()
	}
	return ms.dialOnce(ctx, ai, finish)
}

// dialOnce is connect without the members' semaphore (candidates have their
// own slots).
func (ms *members) dialOnce(ctx context.Context, ai peer.AddrInfo, finish bool) error {
	if sw, ok := ms.h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(ai.ID)
	}
	ms.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	if finish {
		ctx = context.WithoutCancel(ctx)
	}
	// libp2p bounds each address's dial by the dial timeout too; ours ends
	// a little later, so a dial that times out fails with libp2p's error,
	// which says where (connecting, or in the handshakes), not with ours.
	ctx, cancel := context.WithTimeout(ctx, ms.cfg.DialTimeout+dialSlack)
	defer cancel()
	err := ms.h.Connect(network.WithForceDirectDial(ctx, "reflect reconnect"), ai)
	if handshakesFailed(err) {
		ms.count.handshakesFailed.Add(1)
	}
	return err
}

// dialAddrs returns the addresses to dial m at: its own, then the
// bootstrap addresses and mDNS hints not among them.
func (m *member) dialAddrs() []ma.Multiaddr {
	out := slices.Clone(m.addrs)
	for _, h := range slices.Concat(m.boot, m.hints) {
		if !slices.ContainsFunc(out, h.Equal) {
			out = append(out, h)
		}
	}
	return out
}

// notifyNeighboursLocked fans a direct peer's join or leave out to the
// neighbour watchers; ms.mu held.
func (ms *members) notifyNeighboursLocked(e PeerEvent) {
	close(ms.nchanged)
	ms.nchanged = make(chan struct{})
	for w := range ms.neighbours {
		w.push(e)
	}
}

// FollowConnections calls fn for every connected peer, then for every
// change of a peer's connectedness (pubsub.Membership).
func (ms *members) FollowConnections(fn func(p peer.ID, up bool)) (stop func()) {
	w := newWatcher(func(c connChange) { fn(c.p, c.up) })
	ms.mu.Lock()
	if ms.ctx.Err() != nil {
		ms.mu.Unlock()
		return func() {}
	}
	for p, m := range ms.peers {
		if m.connected {
			w.push(connChange{p, true})
		}
	}
	ms.followers[w] = struct{}{}
	ms.goOwned(w.run)
	ms.mu.Unlock()
	return func() {
		ms.mu.Lock()
		delete(ms.followers, w)
		ms.mu.Unlock()
		w.halt()
		<-w.done
	}
}

// followLocked tells the connection followers of c; ms.mu held.
func (ms *members) followLocked(c connChange) {
	for w := range ms.followers {
		w.push(c)
	}
}

// watch registers fn for membership events, starting with a PeerJoined for
// every member shown now.
func (ms *members) watch(fn func(PeerEvent)) (stop func()) {
	return ms.register(fn, false)
}

// watchNeighbours registers fn for direct peers' joins and leaves, starting
// with a PeerJoined for every peer joined now.
func (ms *members) watchNeighbours(fn func(PeerEvent)) (stop func()) {
	return ms.register(fn, true)
}

func (ms *members) register(fn func(PeerEvent), direct bool) (stop func()) {
	w := newWatcher(fn)
	ms.mu.Lock()
	if ms.ctx.Err() != nil {
		ms.mu.Unlock()
		return func() {}
	}
	set := ms.watchers
	if direct {
		set = ms.neighbours
		for _, p := range ms.joinedLocked() {
			w.push(PeerEvent{ID: p, State: PeerJoined})
		}
	} else {
		for _, p := range sortedSet(ms.shown) {
			w.push(PeerEvent{ID: p, State: PeerJoined})
		}
	}
	set[w] = struct{}{}
	ms.goOwned(w.run)
	ms.mu.Unlock()
	return func() {
		ms.mu.Lock()
		delete(set, w)
		ms.mu.Unlock()
		w.halt()
	}
}

// stopWatchers halts every watcher and follower (at Close).
func (ms *members) stopWatchers() {
	ms.mu.Lock()
	for w := range ms.watchers {
		w.halt()
	}
	for w := range ms.neighbours {
		w.halt()
	}
	for w := range ms.followers {
		w.halt()
	}
	ms.watchers = map[*watcher[PeerEvent]]struct{}{}
	ms.neighbours = map[*watcher[PeerEvent]]struct{}{}
	ms.followers = map[*watcher[connChange]]struct{}{}
	ms.mu.Unlock()
}

// joined returns the members (joined peers and the peers beyond them),
// sorted, and a channel closed at the next change.
func (ms *members) joined() ([]peer.ID, <-chan struct{}) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return sortedSet(ms.shown), ms.changed
}

// joinedNeighbours returns the joined direct peers, sorted, and a channel
// closed at the next join or leave of one.
func (ms *members) joinedNeighbours() ([]peer.ID, <-chan struct{}) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.joinedLocked(), ms.nchanged
}

// joinedLocked returns the joined direct peers, sorted; ms.mu held.
func (ms *members) joinedLocked() []peer.ID {
	var out []peer.ID
	for p, m := range ms.peers {
		if m.joined {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// jitter returns d scaled by a random factor in [0.75, 1.25).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}

// remoteIsLoopback reports whether our connection to p runs over loopback.
func remoteIsLoopback(h host.Host, p peer.ID) bool {
	for _, c := range h.Network().ConnsToPeer(p) {
		if manet.IsIPLoopback(c.RemoteMultiaddr()) {
			return true
		}
	}
	return false
}

// dialable keeps the addresses worth dialling: concrete IP addresses (no
// unspecified or multicast), without /p2p-circuit, and loopback only when
// the peer is on this host (loopbackOK).
func dialable(addrs []ma.Multiaddr, loopbackOK bool) []ma.Multiaddr {
	var out []ma.Multiaddr
	seen := map[string]bool{}
	for _, a := range addrs {
		if a == nil || seen[string(a.Bytes())] {
			continue
		}
		ip, err := manet.ToIP(a)
		if err != nil || ip.IsUnspecified() || ip.IsMulticast() {
			continue
		}
		if ip.IsLoopback() && !loopbackOK {
			continue
		}
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		seen[string(a.Bytes())] = true
		out = append(out, a)
	}
	return out
}
