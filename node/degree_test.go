package node

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// Eight nodes that find each other by mDNS, with MaxPeers 3: each keeps a
// few direct peers (at most the high-water mark once trimmed), the mesh is
// partial, and still every node lists all seven others as members, its
// mDNS questions bring no answers, a broadcast reaches everyone through
// relays, and a node that closes leaves everyone's membership.
func TestMaxPeersPartialMesh(t *testing.T) {
	netns.Require(t)
	const count, maxPeers = 8, 3
	ns := make([]*Node, count)
	for i := range ns {
		cfg := mdnsConfig(testKey)
		cfg.MaxPeers = maxPeers
		ns[i] = startNode(t, cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, n := range ns {
		if err := n.WaitPeers(ctx, count-1); err != nil {
			t.Fatalf("node %d: %v (direct peers %d)", i, err, len(n.Neighbours()))
		}
	}
	high := maxPeers + trimSlack(maxPeers)
	testutil.Eventually(t, 20*time.Second, "every node within the high-water mark", func() bool {
		for _, n := range ns {
			if c := len(n.Host().Network().Peers()); c > high || c == 0 {
				return false
			}
		}
		return true
	})
	partial := false
	for i, n := range ns {
		nb := n.Neighbours()
		if len(nb) < count-1 {
			partial = true
		}
		for _, p := range nb {
			if !slices.Contains(n.Peers(), p) {
				t.Errorf("node %d: direct peer %s is not among its members %v", i, p, n.Peers())
			}
		}
	}
	if !partial {
		t.Fatalf("every node is connected to all %d others with MaxPeers %d", count-1, maxPeers)
	}

	// mDNS questions bring no answers: a node lists every member's advert
	// as known, the far ones too.
	for _, n := range ns {
		n.mdns.askOnce() // a node whose advert it missed answers this once
	}
	time.Sleep(500 * time.Millisecond)
	answers := make([]uint64, count)
	for i, n := range ns {
		answers[i] = n.mdns.answers.Load()
	}
	for range 2 {
		for _, n := range ns {
			n.mdns.askOnce()
		}
	}
	time.Sleep(time.Second)
	for i, n := range ns {
		if d := n.mdns.answers.Load() - answers[i]; d != 0 {
			t.Errorf("node %d: %d adverts answered in a formed partial mesh, want 0 (direct peers %d)", i, d, len(n.Neighbours()))
		}
	}

	// Every node gets a broadcast of ns[0], relayed where it is not a
	// direct peer. GossipSub takes a heartbeat or two to graft a new
	// subscription into its relays' meshes: broadcast until everyone has
	// had one.
	const topic = "partial"
	var mu sync.Mutex
	got := map[int]bool{}
	for i := 1; i < count; i++ {
		if _, err := ns[i].Subscribe(topic, func(map[string]any) {
			mu.Lock()
			got[i] = true
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 20*time.Second, "a broadcast to reach every node", func() bool {
		if err := ns[0].Broadcast(ctx, topic, map[string]any{"hello": true}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return len(got) == count-1
	})

	// A node that closes leaves every other node's membership, direct
	// peer or not.
	gone := ns[count-1].ID()
	if err := ns[count-1].Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "every node to see the closed one leave", func() bool {
		for _, n := range ns[:count-1] {
			if slices.Contains(n.Peers(), gone) {
				return false
			}
		}
		return true
	})
}

// A node that is not a direct peer joins and leaves OnPeer's view, and
// only OnNeighbour's events name direct peers.
func TestOnPeerReportsMembersBeyondNeighbours(t *testing.T) {
	netns.Require(t)
	// a – b – c: a and c keep one direct peer each, b.
	b := startNode(t, localConfig(testKey))
	cfg := localConfig(testKey)
	cfg.MaxPeers = 1
	cfg.BootstrapPeers = []string{b.Addrs()[0].String() + "/p2p/" + b.ID().String()}
	a, c := startNode(t, cfg), startNode(t, cfg)

	var mu sync.Mutex
	var members, neighbours []PeerEvent
	a.OnPeer(func(e PeerEvent) { mu.Lock(); members = append(members, e); mu.Unlock() })
	a.OnNeighbour(func(e PeerEvent) { mu.Lock(); neighbours = append(neighbours, e); mu.Unlock() })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.WaitPeers(ctx, 2); err != nil {
		t.Fatalf("a: %v (direct peers %v)", err, a.Neighbours())
	}
	if got := a.Neighbours(); !slices.Equal(got, []peer.ID{b.ID()}) {
		t.Fatalf("a's direct peers %v, want only b %s", got, b.ID())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "a to see c leave", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(members, PeerEvent{ID: c.ID(), State: PeerLeft})
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(members, PeerEvent{ID: c.ID(), State: PeerJoined}) {
		t.Errorf("OnPeer: %v, want c joined then left", members)
	}
	for _, e := range neighbours {
		if e.ID != b.ID() {
			t.Errorf("OnNeighbour reported %v: not a direct peer", e)
		}
	}
	if st := a.Stats(); st.Peers != 1 || st.Neighbours != 1 {
		t.Errorf("a's stats: %d peers, %d neighbours; want 1 and 1 (b)", st.Peers, st.Neighbours)
	}
}

// A node that every other node has as its bootstrap peer keeps them all,
// above its own MaxPeers: they tell it that they keep it (keep.go), and it
// trims none. A node that is not told (an older version: here, the hub
// without the keep protocol's handler) trims each once, sees it come back
// at once, and spares it from then on (cameBack). Before either, a hub of
// ten with MaxPeers 3 closed about five connections a second, for good.
func TestBootstrapHubIsNotChurned(t *testing.T) {
	netns.Require(t)
	for _, told := range []bool{true, false} {
		t.Run(fmt.Sprintf("told=%v", told), func(t *testing.T) { bootstrapHub(t, told) })
	}
}

func bootstrapHub(t *testing.T, told bool) {
	const others, maxPeers = 9, 3
	hcfg := localConfig(testKey)
	hcfg.MaxPeers = maxPeers
	hub := startNode(t, hcfg)
	if !told {
		hub.Host().RemoveStreamHandler(hub.members.keepProto)
	}
	ns := []*Node{hub}
	for range others {
		cfg := localConfig(testKey)
		cfg.MaxPeers = maxPeers
		cfg.BootstrapPeers = []string{hub.Addrs()[0].String() + "/p2p/" + hub.ID().String()}
		ns = append(ns, startNode(t, cfg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, n := range ns {
		if err := n.WaitPeers(ctx, others); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if !told {
		// The hub trims once it is past trimGrace with them; each comes
		// back, and is spared from then on: within a few rounds of trims,
		// every one has been trimmed at most once.
		testutil.Eventually(t, 10*time.Second, "the hub to trim", func() bool {
			return hub.Stats().Trimmed > 0
		})
		time.Sleep(4 * trimGrace)
	}
	testutil.Eventually(t, 10*time.Second, "the hub to hold every node that keeps it", func() bool {
		return len(hub.Neighbours()) == others
	})
	before := hub.Stats().Trimmed
	if told && before != 0 {
		t.Fatalf("the hub trimmed %d connections of nodes that told it they keep it", before)
	}
	if before > others {
		t.Fatalf("the hub trimmed %d connections of %d nodes that keep it: some more than once", before, others)
	}
	time.Sleep(2*trimGrace + time.Second)
	if d := hub.Stats().Trimmed - before; d != 0 || len(hub.Neighbours()) != others {
		t.Fatalf("the hub trimmed %d connections in %v, and holds %d of %d peers; want none, and all",
			d, 2*trimGrace+time.Second, len(hub.Neighbours()), others)
	}
}

// cameBack: a connection that came within trimForget of a trim.
func TestCameBack(t *testing.T) {
	t0 := time.Now()
	for _, c := range []struct {
		name               string
		trimmed, connected time.Time
		want               bool
	}{
		{"never trimmed", time.Time{}, t0, false},
		{"connected before the trim", t0, t0.Add(-time.Second), false},
		{"back a second after", t0, t0.Add(time.Second), true},
		{"back after trimForget", t0, t0.Add(trimForget + time.Second), false},
	} {
		if got := cameBack(&member{trimmedAt: c.trimmed, connectedAt: c.connected}); got != c.want {
			t.Errorf("%s: cameBack %v, want %v", c.name, got, c.want)
		}
	}
}

// With MaxPeers unset, a node keeps everyone while it knows of at most
// DefaultFullMesh nodes, DefaultMaxPeers once it knows of more, and
// everyone again once it knows of at most three quarters of that.
func TestDefaultMaxPeersFollowsTheMeshSize(t *testing.T) {
	ms := &members{peers: map[peer.ID]*member{}, shown: map[peer.ID]struct{}{}, started: time.Now()}
	ms.cands.byID = map[peer.ID]*candidate{}
	if got := ms.maxPeersLocked(); got != DefaultMaxPeers {
		t.Fatalf("a node just started keeps %d peers, want %d until discovery has told it more", got, DefaultMaxPeers)
	}
	ms.started = time.Now().Add(-fullMeshAfter)
	id := func(i int) peer.ID { return peer.ID(fmt.Sprint("p", i)) }
	know := func(peers, far, cands int) {
		clear(ms.peers)
		clear(ms.shown)
		clear(ms.cands.byID)
		for i := range peers {
			ms.peers[id(i)] = &member{}
			ms.shown[id(i)] = struct{}{} // joined: shown too, counted once
		}
		for i := peers; i < peers+far; i++ {
			ms.shown[id(i)] = struct{}{}
		}
		for i := peers + far; i < peers+far+cands; i++ {
			ms.cands.byID[id(i)] = &candidate{}
		}
	}
	for _, c := range []struct {
		peers, far, cands int
		want              int
	}{
		{3, 0, 0, DefaultFullMesh - 1},
		{DefaultFullMesh - 1, 0, 0, DefaultFullMesh - 1}, // this node and 23 others: full
		{10, 5, 9, DefaultMaxPeers},                      // 25 nodes
		{10, 5, 3, DefaultMaxPeers},                      // 19: still bounded
		{10, 5, 2, DefaultFullMesh - 1},                  // 18 = three quarters: full again
		{0, 0, 40, DefaultMaxPeers},                      // candidates count before any connects
	} {
		know(c.peers, c.far, c.cands)
		if got := ms.maxPeersLocked(); got != c.want {
			t.Errorf("%d peers, %d far, %d candidates (%d nodes): MaxPeers %d, want %d",
				c.peers, c.far, c.cands, ms.meshSizeLocked(), got, c.want)
		}
	}
	// 8 peers and 11 members beyond them, found by mDNS as well: 20
	// nodes, not 31 (for a node that never knew of more).
	ms.bounded = false
	know(8, 11, 0)
	for p := range ms.shown {
		if _, ok := ms.peers[p]; !ok {
			ms.cands.byID[p] = &candidate{}
		}
	}
	if n, got := ms.meshSizeLocked(), ms.maxPeersLocked(); n != 20 || got != DefaultFullMesh-1 {
		t.Errorf("far members that are candidates too: %d nodes, MaxPeers %d; want 20 and %d", n, got, DefaultFullMesh-1)
	}
	ms.cfg.MaxPeers = 5
	if got := ms.maxPeersLocked(); got != 5 {
		t.Fatalf("Config.MaxPeers 5: got %d", got)
	}
}

// A node dials up to MaxPeers while the mesh fits within it, and up to
// half of it (at least minDialTarget) in a larger mesh: the rest of its
// room is for the nodes that dial it.
func TestDialTarget(t *testing.T) {
	for _, c := range []struct {
		maxPeers, nodes int
		fresh           bool // in its first fullMeshAfter
		want            int
	}{
		{0, 5, true, DefaultMaxPeers},        // just started: not known to be large
		{0, 5, false, DefaultFullMesh - 1},   // a small mesh: everyone
		{0, 100, true, DefaultMaxPeers / 2},  // discovery told it of a large mesh at once
		{0, 100, false, DefaultMaxPeers / 2}, // a large mesh
		{10, 11, false, 10},                  // fits: a full mesh
		{10, 12, false, 5},                   // does not
		{3, 8, false, 3},                     // at least minDialTarget
		{2, 8, false, 2},                     // unless MaxPeers is lower
		{20, 100, false, 10},
	} {
		ms := &members{cfg: Config{MaxPeers: c.maxPeers}, peers: map[peer.ID]*member{}, shown: map[peer.ID]struct{}{}, started: time.Now()}
		if !c.fresh {
			ms.started = ms.started.Add(-fullMeshAfter)
		}
		ms.cands.byID = map[peer.ID]*candidate{}
		for i := range c.nodes - 1 {
			ms.cands.byID[peer.ID(fmt.Sprint("p", i))] = &candidate{}
		}
		if got := ms.dialTargetLocked(); got != c.want {
			t.Errorf("MaxPeers %d, %d nodes known, fresh %v: dials up to %d, want %d", c.maxPeers, c.nodes, c.fresh, got, c.want)
		}
	}
}

// refill redials the reachable lost peers with the most room first, never
// one that would have to trim a peer to take us, and at most as many as
// it has room for.
func TestPickLost(t *testing.T) {
	lost := []lostPeer{
		{p: "full", degree: 10, order: 0.1},    // at the high-water mark: left out
		{p: "gone", unknown: true, order: 0.2}, // no announcement reaches it
		{p: "busy", degree: 8, order: 0.3},     // room for one more
		{p: "quiet-b", degree: 3, order: 0.5},  // most room; order breaks the tie
		{p: "quiet-a", degree: 3, order: 0.4},
		{p: "middle", degree: 6, order: 0.05},
	}
	for _, c := range []struct {
		n    int
		want []peer.ID
	}{
		{0, nil},
		{-1, nil},
		{2, []peer.ID{"quiet-a", "quiet-b"}},
		{4, []peer.ID{"quiet-a", "quiet-b", "middle", "busy"}},
		{9, []peer.ID{"quiet-a", "quiet-b", "middle", "busy", "gone"}},
	} {
		got := pickLost(slices.Clone(lost), c.n, 10)
		if !slices.Equal(got, c.want) {
			t.Errorf("pickLost(n=%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

// The candidate dialer drops a candidate that is a member without room:
// one at MaxPeers while the node has half its MaxPeers or more, one at the
// high-water mark (it would trim a peer to take us) while it has fewer.
func TestCandidateWithoutRoomIsDropped(t *testing.T) {
	for _, c := range []struct {
		nconn, degree int
		dropped       bool
	}{
		{nconn: 4, degree: 8, dropped: true},
		{nconn: 3, degree: 9, dropped: false}, // dialled: below the high-water mark
		{nconn: 3, degree: 10, dropped: true},
	} {
		ms := &members{
			ctx:     context.Background(),
			cfg:     Config{MaxPeers: 8},
			count:   &counters{},
			log:     slog.Default(),
			peers:   map[peer.ID]*member{},
			degrees: map[peer.ID]int{"member": c.degree},
			nconn:   c.nconn,
		}
		ms.cands = candidateTable{byID: map[peer.ID]*candidate{}, ttl: time.Minute}
		now := time.Now()
		ms.cands.add("member", nil, now, now)
		if !c.dropped {
			// It would be dialled (which needs a host).
			if got := ms.fullDegreeLocked(); c.degree >= got {
				t.Errorf("%d peers: full at %d, want above %d", c.nconn, got, c.degree)
			}
			continue
		}
		ms.startCandidateDials()
		if ms.cands.byID["member"] != nil || ms.candDialing != 0 || ms.count.candidateDials.Load() != 0 {
			t.Errorf("%d peers, a candidate announcing %d: kept or dialled (dialling %d)", c.nconn, c.degree, ms.candDialing)
		}
	}
}

// A node alone dials anyone; with fewer than half its MaxPeers, anyone
// below the high-water mark; with more, only those below MaxPeers.
func TestFullDegree(t *testing.T) {
	for _, c := range []struct{ maxPeers, nconn, want int }{
		{8, 0, math.MaxInt}, {8, 3, 10}, {8, 4, 8}, {8, 9, 8},
		{1, 0, math.MaxInt}, {1, 1, 1},
		{3, 0, math.MaxInt}, {3, 1, 3},
	} {
		ms := &members{cfg: Config{MaxPeers: c.maxPeers}, nconn: c.nconn}
		if got := ms.fullDegreeLocked(); got != c.want {
			t.Errorf("MaxPeers %d, %d peers: full at %d, want %d", c.maxPeers, c.nconn, got, c.want)
		}
	}
}

// A member beyond the neighbours joins once the links that reach it have
// stood for farJoinAfter (the nodes between relay to it by then: at once
// if they are old when announced), and leaves as soon as no one announces
// it; a member already shown stays one when only announcements name it.
func TestFarMemberJoinsAfterAnnounced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ms := &members{
		ctx: ctx, log: slog.New(slog.DiscardHandler), count: &counters{}, self: "me",
		peers: map[peer.ID]*member{}, far: map[peer.ID]time.Time{}, shown: map[peer.ID]struct{}{},
		watchers: map[*watcher[PeerEvent]]struct{}{}, changed: make(chan struct{}), sweepNow: make(chan struct{}, 1),
	}
	// reached maps each peer to the time since which a path to it has
	// stood, as pub/sub's Announced does.
	reached := func(since time.Time, ps ...peer.ID) map[peer.ID]time.Time {
		m := map[peer.ID]time.Time{}
		for _, p := range ps {
			m[p] = since
		}
		return m
	}
	members := func() []peer.ID { return sortedSet(ms.shown) }
	now := time.Now()
	t0 := now
	if wait := ms.setFar(reached(t0, "a", "me"), now); wait != farJoinAfter || len(members()) != 0 {
		t.Fatalf("just announced: wait %v, members %v; want %v and none", wait, members(), farJoinAfter)
	}
	now = now.Add(farJoinAfter / 2)
	far := reached(t0, "a")
	far["b"] = now // b's link is new, a's has stood since t0 (another path to a now: the earlier time stays)
	if wait := ms.setFar(far, now); wait != farJoinAfter/2 || len(members()) != 0 {
		t.Fatalf("half way: wait %v, members %v; want %v and none", wait, members(), farJoinAfter/2)
	}
	now = now.Add(farJoinAfter / 2)
	far["a"] = now
	if wait := ms.setFar(far, now); wait != farJoinAfter/2 || !slices.Equal(members(), []peer.ID{"a"}) {
		t.Fatalf("a reached for farJoinAfter: wait %v, members %v; want %v and a", wait, members(), farJoinAfter/2)
	}
	// c was a direct peer (shown); now only announced: it stays.
	ms.shown["c"] = struct{}{}
	far["c"] = now
	if ms.setFar(far, now); !slices.Equal(members(), []peer.ID{"a", "c"}) {
		t.Fatalf("a direct peer announced by others: members %v, want a and c", members())
	}
	now = now.Add(farJoinAfter)
	if wait := ms.setFar(reached(now.Add(-farJoinAfter), "b", "c"), now); wait != 0 || !slices.Equal(members(), []peer.ID{"b", "c"}) {
		t.Fatalf("a no longer announced: wait %v, members %v; want 0, b and c", wait, members())
	}
	if ms.setFar(reached(now, "a", "b", "c"), now); !slices.Equal(members(), []peer.ID{"b", "c"}) {
		t.Fatalf("a announced again on a new link: members %v, want b and c until farJoinAfter", members())
	}
	// d's links are old when this node first hears of them: d joins at once.
	if wait := ms.setFar(reached(now.Add(-2*farJoinAfter), "a", "b", "c", "d"), now); wait != 0 || !slices.Equal(members(), []peer.ID{"a", "b", "c", "d"}) {
		t.Fatalf("old links: wait %v, members %v; want 0, a, b, c and d", wait, members())
	}
	if st := ms.count.joins.Load(); st != 4 {
		t.Errorf("%d joins counted, want 4 (a, b, a again, d)", st)
	}
}

// A lost peer that no node this one reaches announces, lost for
// strandedAfter, is stranded: redialled whatever the room (a partition
// healing); not one that is still a member, lost a moment ago, connected,
// or redialled already.
func TestStrandedLostPeers(t *testing.T) {
	now := time.Now()
	ms := &members{cfg: Config{ForgetAfter: time.Hour}, peers: map[peer.ID]*member{}, shown: map[peer.ID]struct{}{}}
	ms.peers["across"] = &member{lostAt: now.Add(-strandedAfter)}
	ms.peers["member"] = &member{lostAt: now.Add(-time.Minute)}
	ms.shown["member"] = struct{}{}
	ms.peers["just-lost"] = &member{lostAt: now.Add(-strandedAfter / 2)}
	ms.peers["connected"] = &member{connected: true, lostAt: now.Add(-time.Minute)}
	ms.peers["dialling"] = &member{dialing: true, lostAt: now.Add(-time.Minute)}
	ms.peers["kept"] = &member{keep: true, lostAt: now.Add(-time.Minute)}
	ms.peers["forgotten"] = &member{lostAt: now.Add(-2 * time.Hour)}
	if got := ms.strandedPicksLocked(now); !slices.Equal(got, []peer.ID{"across"}) {
		t.Errorf("stranded picks %v, want [across]", got)
	}
	for i := range 2 * refillMax {
		ms.peers[peer.ID(fmt.Sprint("far", i))] = &member{lostAt: now.Add(-time.Minute)}
	}
	if got := len(ms.strandedPicksLocked(now)); got != refillMax {
		t.Errorf("%d stranded picks at once, want refillMax %d", got, refillMax)
	}
}
