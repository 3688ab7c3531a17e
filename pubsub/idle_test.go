package pubsub

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// idleCounts sums, over a mesh's nodes, the counters of one topic that
// tell what an idle mesh sends.
// forwarded counts the received batches left to GossipSub to relay. (Not
// received minus not forwarded: the copy GossipSub brings of an
// announcement caught up on is judged, but not received again.)
type idleCounts struct {
	published, received, notForwarded, forwarded, duplicates uint64
}

func (c idleCounts) String() string {
	return fmt.Sprintf("published %d, received %d, not forwarded %d, forwarded %d, duplicates %d",
		c.published, c.received, c.notForwarded, c.forwarded, c.duplicates)
}

// topicCounts sums topic's counters over ps.
func topicCounts(ps []*PubSub, topic string) idleCounts {
	var c idleCounts
	for _, p := range ps {
		s := p.Stats().Topics[topic]
		c.published += s.Published
		c.received += s.Received
		c.notForwarded += s.NotForwarded
		c.duplicates += s.Duplicates
		p.mu.Lock()
		if t := p.joined[topic]; t != nil {
			c.forwarded += t.stats.forwarded.Load()
		}
		p.mu.Unlock()
	}
	return c
}

func (c idleCounts) minus(o idleCounts) idleCounts {
	return idleCounts{c.published - o.published, c.received - o.received,
		c.notForwarded - o.notForwarded, c.forwarded - o.forwarded, c.duplicates - o.duplicates}
}

// settled reports whether every node of a full mesh of n nodes sends to
// all the others, knows its neighbourhood is closed and relays no author's
// messages.
func settled(ps []*PubSub) bool {
	for _, p := range ps {
		if len(p.topo.announced()) != len(ps)-1 || !p.topo.closed() {
			return false
		}
		for _, q := range ps {
			if q != p && !p.topo.allConnectedTo(q.host.ID()) {
				return false
			}
		}
	}
	return true
}

// idleNodes is how many nodes TestIdleFullMesh starts: REFLECT_IDLE_NODES
// or 20.
func idleNodes(t *testing.T) int {
	n := 20
	if s := os.Getenv("REFLECT_IDLE_NODES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 2 || v > 24 {
			t.Fatalf("REFLECT_IDLE_NODES=%q: want 2 to 24", s)
		}
		n = v
	}
	return n
}

// Once a full mesh has settled (every node knows its neighbourhood is
// closed and every author reaches all its peers), it stays settled, and
// nothing it sends on the announcements' topic is relayed: not the
// repeats after the last changes, not copies of older announcements still
// on their way, not the periodic refresh. After the formation's last
// copies are in, a refresh of every node's announcement reaches each peer
// once, directly: nothing is relayed, and the only copies are those
// GossipSub asks for after its author's gossip while it still validates
// its own (a few, under load: see the bound below).
func TestIdleFullMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 nodes")
	}
	n := idleNodes(t)
	start := time.Now()
	ps := newMesh(t, n, Config{})
	testutil.Eventually(t, 60*time.Second, "a settled full mesh", func() bool { return settled(ps) })
	formed := time.Since(start)
	formation := topicCounts(ps, peersTopic)
	// Through the repeats after the last changes (announceAgain) and the
	// formation's copies still on their way, the mesh stays settled.
	unsettled := 0
	for end := time.Now().Add(announceAgain + time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !settled(ps) {
			unsettled++
		}
	}
	before := topicCounts(ps, peersTopic)
	t.Logf("%d nodes settled after %v: %v; then until idle: %v", n, formed.Round(time.Millisecond), formation, before.minus(formation))
	// Nodes refresh at their own times (refreshInterval): 20 ms apart.
	for _, p := range ps {
		select {
		case p.topo.refresh <- struct{}{}:
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Wait for every refresh to arrive everywhere, then for GossipSub's
	// gossip (IHAVE at its heartbeat, every second) to have gone out.
	want := before.received + uint64(n*(n-1))
	testutil.Eventually(t, 30*time.Second, "the refreshed announcements", func() bool {
		return topicCounts(ps, peersTopic).received >= want
	})
	time.Sleep(3 * time.Second)
	after := topicCounts(ps, peersTopic)
	idle := after.minus(before)
	t.Logf("refresh and 3 s idle: %v", idle)
	if unsettled > 0 || !settled(ps) {
		t.Errorf("the mesh was not settled any more %d times after it had settled", unsettled)
	}
	if f := after.minus(formation).forwarded; f != 0 {
		t.Errorf("%d announcements relayed in a settled full mesh", f)
	}
	// A node's own refresh (refreshInterval) may have come too.
	if idle.published < uint64(n) || idle.received != idle.published*uint64(n-1) {
		t.Errorf("%d nodes published %d announcements and received %d, want at least %d and %d each", n, idle.published, idle.received, n, n-1)
	}
	// Nothing was relayed, so a copy can only have come from GossipSub's
	// gossip: the author's IHAVE at its heartbeat reached a peer before
	// the peer's validator had taken its copy out of the queue, and the
	// peer asked for another (IWANT). Only the author gossips an
	// announcement (the others ignore it: not in their message caches),
	// so that is rare, and rarer the less loaded the machine (measured:
	// none on a quiet one, 4 of 608 under -race on a loaded one).
	// (Relaying, before, gave about five copies per relayed one.)
	if idle.duplicates > idle.received/4 {
		t.Errorf("%d duplicate announcements in a settled full mesh (of %d received)", idle.duplicates, idle.received)
	}
}

// A refresh identical to the last announcement changes nothing: the
// cached answers stay, and nobody waiting for a change is woken.
func TestLearnIdenticalKeepsCaches(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("a", true)
	topo.setConnected("b", true)
	topo.learn("a", []peer.ID{"me", "b"}, nil)
	woken := func(f func()) bool {
		ch := topo.updates()
		f()
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	if woken(func() { topo.learn("a", []peer.ID{"b", "me"}, nil) }) {
		t.Error("an identical announcement counted as a change")
	}
	if !woken(func() { topo.learn("a", []peer.ID{"me"}, nil) }) {
		t.Error("a lost link did not count as a change")
	}
	if !woken(func() { topo.learn("a", []peer.ID{"me"}, []regKey{{regResponder, "svc", ""}}) }) {
		t.Error("a new registry entry did not count as a change")
	}
	if woken(func() { topo.learn("a", []peer.ID{"me"}, []regKey{{regResponder, "svc", ""}}) }) {
		t.Error("the same registry entry again counted as a change")
	}
	if !woken(func() { topo.learn("b", []peer.ID{"me", "a"}, nil) }) {
		t.Error("b's first announcement did not count as a change")
	}
}

// An announcement is relayed unless it lists every other peer of ours: it
// reached those directly.
func TestReachedAll(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("a", true)
	topo.setConnected("b", true)
	topo.setConnected("c", true)
	for _, c := range []struct {
		msgs [][]byte
		want bool
	}{
		{[][]byte{encodePeers([]peer.ID{"b", "c", "me"})}, true},
		{[][]byte{encodePeers([]peer.ID{"b", "c", "me", "z"})}, true},                    // z is further away: its other peers' business
		{[][]byte{encodePeers([]peer.ID{"b", "me"})}, false},                             // c needs it relayed
		{[][]byte{encodePeers([]peer.ID{"b", "b", "me"})}, false},                        // a repeat is not c
		{[][]byte{encodePeers([]peer.ID{"b", "c"}), encodePeers([]peer.ID{"b"})}, false}, // the batch's last counts
		{[][]byte{{0xff}}, false},
		{nil, false},
	} {
		// As the validator does: the topic's decoder first (a batch it
		// refuses is never judged), then reachedAll on what it made.
		var vals []any
		for _, m := range c.msgs {
			v, err := decodeAnnouncementValue(m)
			if err != nil {
				vals = nil
				break
			}
			vals = append(vals, v)
		}
		if got := topo.reachedAll("a", vals); got != c.want {
			t.Errorf("%x: reachedAll %v, want %v", c.msgs, got, c.want)
		}
	}
}

// An announcement older than one of its author's already delivered is
// superseded; one that fills a gap before a held one is not.
func TestSupersededAnnouncement(t *testing.T) {
	var r reorderer
	var got []uint64
	r.init(func(b *batch) { got = append(got, b.seq) })
	defer r.stop()
	b := func(seq uint64) *batch { return &batch{author: []byte("a"), seq: seq} }
	r.add(b(10))
	r.add(b(12)) // held: 11 missing
	for _, c := range []struct {
		seq  uint64
		want bool
	}{{9, true}, {10, true}, {11, false}, {13, false}} {
		if s := r.superseded(b(c.seq)); s != c.want {
			t.Errorf("seq %d: superseded %v, want %v", c.seq, s, c.want)
		}
	}
	if r.superseded(&batch{author: []byte("new"), seq: 1}) {
		t.Error("an unknown author's first batch superseded")
	}
	// Far behind: the author restarted with its clock set back.
	r.add(&batch{author: []byte("late"), seq: 1 << 40})
	if r.superseded(&batch{author: []byte("late"), seq: 1<<40 - reorderRestart}) {
		t.Error("a restarted author's batch superseded")
	}
}

// A copy of an older announcement that arrives after a newer one (relayed
// the long way round while a mesh forms) is dropped: learnt, it would
// overwrite the newer one, and the mesh would relay for its author until
// the next refresh. The late copy is made here by turning the author's
// sequence number back.
func TestLateAnnouncementIsDropped(t *testing.T) {
	ps := newMesh(t, 4, Config{})
	testutil.Eventually(t, 20*time.Second, "a settled full mesh", func() bool { return settled(ps) })
	ps[0].mu.Lock()
	tp := ps[0].joined[peersTopic]
	ps[0].mu.Unlock()
	sent := tp.stats.published.Load()
	cur := tp.seq.Load()
	tp.seq.Store(cur - 5)
	old := encodePeers([]peer.ID{ps[1].host.ID()}) // as if 2 and 3 were not ready yet
	if err := ps[0].publish(context.Background(), peersTopic, old, []Option{AllowReserved()}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the late copy sent", func() bool { return tp.stats.published.Load() > sent })
	tp.seq.Store(cur) // what comes next is newer again
	// Nothing tells when the copy was dropped: give it the time a copy
	// takes to arrive, a thousand times over.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !settled(ps) {
			for i, p := range ps[1:] {
				t.Logf("node %d: %d links of node 0 known", i+1, len(p.Links()[ps[0].host.ID()]))
			}
			t.Fatal("a late announcement overwrote a newer one")
		}
	}
}
