package pubsub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestPeersCodec(t *testing.T) {
	ps := []peer.ID{"12D3KooWaaaa", "12D3KooWbbbb", "x"}
	a, err := decodeAnnouncement(encodePeers(ps))
	if err != nil || len(a.peers) != 3 || a.peers[0] != ps[0] || a.peers[2] != "x" || a.regs != nil || a.ages != nil {
		t.Fatalf("round trip: %+v %v", a, err)
	}
	if a, err := decodeAnnouncement(encodePeers(nil)); err != nil || len(a.peers) != 0 {
		t.Fatalf("empty: %+v %v", a, err)
	}
	want := []regKey{{regResponder, "svc", ""}, {regQueue, "jobs", "w"}, {regSubscriber, "news", ""}}
	a, err = decodeAnnouncement(encodePeers(ps, want...))
	if err != nil || len(a.peers) != 3 || !slices.Equal(a.regs, want) {
		t.Fatalf("with registry entries: %+v %v", a, err)
	}
	// Young links' ages, with and without registry entries.
	ages := []linkAge{{0, 0}, {2, linkAgeCap - time.Millisecond}}
	for _, regs := range [][]regKey{nil, want} {
		in := announcement{peers: ps, regs: regs, ages: ages}
		a, err = decodeAnnouncement(encodeAnnouncement(in))
		if err != nil || !slices.Equal(a.peers, ps) || !slices.Equal(a.regs, regs) || !slices.Equal(a.ages, ages) {
			t.Fatalf("with ages: %+v %v, want %+v", a, err, in)
		}
	}
	for _, bad := range [][]byte{nil, {5, 1, 'a'}, {1, 0}, {1, 2, 'a'}, {1, 1, 'a', 'b'}, {0x80, 0x80, 0x80, 0x80, 0x08},
		{0, 0},                                      // zero registry entries written, and no ages
		{0, 1, 4, 1, 'x', 0},                        // unknown kind
		{0, 1, 3, 1, 'x', 1, 'g'},                   // a subscription with a group
		{0, 1, 2, 1, 'x', 0},                        // queue entry without a group
		{0, 1, 1, 0, 0},                             // empty topic
		{0, 1, 1, 1, 'x', 0, 'z'},                   // ages of no peer
		{0, 2, 1, 1, 'x', 0},                        // count beyond the entries
		{1, 1, 'a', 0, 0},                           // zero ages written
		{1, 1, 'a', 0, 1, 1, 5},                     // index beyond the peers
		{2, 1, 'a', 1, 'b', 0, 2, 1, 5, 1, 5},       // indexes not increasing
		{1, 1, 'a', 0, 1, 0, 0xd0, 0x0f},            // 2000 ms: not young
		{1, 1, 'a', 0, 1, 0, 5, 9},                  // trailing
		{1, 1, 'a', 1, 1, 1, 'x', 0, 1, 0, 0x80},    // truncated age
		{1, 1, 'a', 1, 1, 1, 'x', 0, 2, 0, 1, 1, 1}, // more ages than peers
	} {
		if _, err := decodeAnnouncement(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: got %v", bad, err)
		}
	}
}

func FuzzDecodePeers(f *testing.F) {
	f.Add(encodePeers([]peer.ID{"12D3KooWaaaa", "b"}))
	f.Add(encodePeers([]peer.ID{"b"}, regKey{regResponder, "svc", ""}, regKey{regQueue, "jobs", "w"}, regKey{regSubscriber, "news", ""}))
	f.Add(encodeAnnouncement(announcement{peers: []peer.ID{"a", "b"}, ages: []linkAge{{1, 40 * time.Millisecond}}}))
	f.Add(encodeAnnouncement(announcement{peers: []peer.ID{"a"}, regs: []regKey{{regSubscriber, "news", ""}}, ages: []linkAge{{0, time.Second}}}))
	f.Add([]byte{0})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x08})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeAnnouncement(data)
		if err != nil {
			return
		}
		for _, la := range a.ages {
			if la.index >= len(a.peers) || la.age < 0 || la.age >= linkAgeCap {
				t.Fatalf("age %+v of %d peers", la, len(a.peers))
			}
		}
		if again := encodeAnnouncement(a); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs: %x vs %x", data, again)
		}
	})
}

func TestAllConnectedTo(t *testing.T) {
	topo := newTopology("me")
	if !topo.allConnectedTo("a") {
		t.Fatal("with no peers, nobody needs a relay")
	}
	topo.setConnected("a", true)
	topo.setConnected("b", true)
	if topo.allConnectedTo("a") {
		t.Fatal("b has not announced a connection to a")
	}
	topo.learn("b", []peer.ID{"a", "me"}, nil)
	if topo.allConnectedTo("a") {
		t.Fatal("a has not announced that it sends to b")
	}
	topo.learn("a", []peer.ID{"b", "me"}, nil)
	if !topo.allConnectedTo("a") {
		t.Fatal("a sends to b and b hears a")
	}
	topo.setConnected("c", true)
	if topo.allConnectedTo("a") {
		t.Fatal("c joined and has not announced")
	}
	topo.learn("c", []peer.ID{"me", "a"}, nil)
	if topo.allConnectedTo("a") {
		t.Fatal("c is connected to a, but a does not send to c yet")
	}
	topo.learn("a", []peer.ID{"b", "c", "me"}, nil)
	if !topo.allConnectedTo("a") {
		t.Fatal("a sends to c now")
	}
	topo.learn("b", []peer.ID{"me"}, nil)
	if topo.allConnectedTo("a") {
		t.Fatal("b lost a: a's announcement is not enough")
	}
	topo.setConnected("b", false)
	topo.forget("b")
	if !topo.allConnectedTo("a") {
		t.Fatal("b left")
	}
}

// We announce the peers we send to, not merely those we are connected to.
func TestAnnouncedIsReadyPeers(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("a", true)
	topo.setConnected("b", true)
	topo.setReady("b", true)
	if got := topo.announced(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("announced %v, want [b]", got)
	}
	topo.setConnected("b", false)
	topo.setReady("a", true)
	if got := topo.announced(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("announced %v, want [a]", got)
	}
}

// In a fully connected mesh, once the announcements are in and the direct
// streams are open, every batch goes straight to each subscriber: nothing
// goes through GossipSub, nothing is relayed, each message arrives once.
func TestFullMeshSendsDirect(t *testing.T) {
	ps := newMesh(t, 4, Config{})
	cols := make([]*collector, 4)
	for i := 1; i < 4; i++ {
		cols[i] = newCollector()
		if _, err := ps[i].Subscribe("t", cols[i].handle); err != nil {
			t.Fatal(err)
		}
	}
	waitTopicPeers(t, ps[0], "t", 3)
	waitDirect(t, ps[0], "t", 3)
	before := make([]Stats, 4)
	for i, p := range ps {
		before[i] = p.Stats()
	}
	const total = 200
	for i := range total {
		if err := ps[0].Publish(context.Background(), "t", binary.AppendUvarint(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // many batches, not one
	}
	barrier(t, ps[0], cols[1:], total)
	for i := 1; i < 4; i++ {
		checkSequence(t, fmt.Sprintf("node %d", i), cols[i], total+1)
		cols[i].mu.Lock()
		for j, m := range cols[i].msgs {
			if m.From != ps[0].host.ID() {
				t.Errorf("node %d message %d from %s", i, j, m.From)
			}
		}
		cols[i].mu.Unlock()
	}
	pub, pub0 := ps[0].Stats().Topics["t"], before[0].Topics["t"]
	if b, d := pub.Batches-pub0.Batches, pub.DirectBatches-pub0.DirectBatches; b < 2 || d != b {
		t.Errorf("%d batches, %d of them direct", b, d)
	}
}

func TestTopologyClosed(t *testing.T) {
	topo := newTopology("me")
	if !topo.closed() {
		t.Fatal("alone: nobody is further away")
	}
	topo.setConnected("a", true)
	topo.setConnected("b", true)
	if topo.closed() {
		t.Fatal("a and b have not announced")
	}
	topo.learn("a", []peer.ID{"me", "b"}, nil)
	topo.learn("b", []peer.ID{"me"}, nil)
	topo.setReady("a", true)
	if topo.closed() {
		t.Fatal("b is not ready: we may not know its subscriptions")
	}
	topo.setReady("b", true)
	if !topo.closed() {
		t.Fatal("a, b and me are all we can reach")
	}
	topo.learn("b", []peer.ID{"me", "a", "c"}, nil)
	if topo.closed() {
		t.Fatal("c is reachable through b only")
	}
	topo.setConnected("c", true)
	if topo.closed() {
		t.Fatal("c has not announced")
	}
	topo.learn("c", []peer.ID{"b", "me"}, nil)
	topo.setReady("c", true)
	if !topo.closed() {
		t.Fatal("connected to c as well")
	}
	topo.setConnected("c", false)
	topo.forget("c")
	if topo.closed() {
		t.Fatal("c left but b still reaches it")
	}
}

// A neighbourhood that closes sends directly only closedHold later; one
// that opens again stops at once, and closing again starts the hold over.
func TestSendsDirectAfterClosedHold(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("b", true)
	topo.setReady("b", true)
	if topo.sendsDirect(time.Now().Add(time.Hour)) {
		t.Fatal("b has not announced")
	}
	topo.learn("b", []peer.ID{"me"}, nil)
	if now := time.Now(); topo.sendsDirect(now) || !topo.sendsDirect(now.Add(closedHold)) {
		t.Fatal("not closed for closedHold only after closedHold")
	}
	topo.learn("b", []peer.ID{"me", "c"}, nil) // a newcomer behind b
	if topo.sendsDirect(time.Now().Add(time.Hour)) {
		t.Fatal("c is reachable through b only")
	}
	topo.learn("b", []peer.ID{"me"}, nil)
	if now := time.Now(); topo.sendsDirect(now) || !topo.sendsDirect(now.Add(closedHold)) {
		t.Fatal("closing again did not start the hold over")
	}
	// A change that keeps it closed does not.
	topo.mu.Lock()
	topo.closedFrom = time.Now().Add(-closedHold)
	topo.mu.Unlock()
	topo.learn("b", []peer.ID{"me"}, []regKey{{regResponder, "svc", ""}})
	if !topo.sendsDirect(time.Now()) {
		t.Fatal("a change that left it closed started the hold over")
	}
}

// In a line a–b–c, b relays a's messages to c.
func TestPartialMeshRelays(t *testing.T) {
	hs, c, probes := line(t, "t", "t")
	waitTopicPeers(t, hs[0], "t", 1)
	waitTopicPeers(t, hs[1], "t", 1)
	waitRelay(t, hs[0], probes) // GossipSub's heartbeat puts c in b's mesh
	// A probe may have gone directly to b while b announced only a (c not
	// ready at b yet): count from here, once the relay works.
	direct := hs[0].Stats().Topics["t"].DirectBatches
	const total = 20
	for i := range total {
		if err := hs[0].Publish(context.Background(), "t", binary.AppendUvarint(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(total, 10*time.Second) {
		t.Fatalf("c got %d of %d messages through b", c.count(), total)
	}
	checkSequence(t, "c", c, total)
	if d := hs[0].Stats().Topics["t"].DirectBatches - direct; d != 0 {
		t.Fatalf("a sent %d batches directly although c needs b to relay them", d)
	}
}

// In a line a–b–c, once a message of a has reached c through b, the next
// ones do too: a, whose neighbourhood closes when b's first announcement
// comes (made before c was ready at b), goes on sending through GossipSub
// until b's next one (closedHold). Without the hold, c got none of the 20
// in 9 of 270 runs under load (two busy loops on 2 cores; with this test
// and one on a wildcard), with it in none of 270.
func TestNewcomerBehindRelayIsNotCutOff(t *testing.T) {
	hs, c, probes := line(t, "t", "t")
	waitTopicPeers(t, hs[0], "t", 1)
	ctx := context.Background()
	for i := 0; probes.count() == 0; i++ {
		if i == 500 {
			t.Fatal("no probe reached c through b")
		}
		if err := hs[0].Publish(ctx, "t", binary.AppendUvarint(nil, probeBase+uint64(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	const total = 20
	for i := range total {
		if err := hs[0].Publish(ctx, "t", binary.AppendUvarint(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(total, 10*time.Second) {
		t.Fatalf("c got %d of %d after a probe had reached it", c.count(), total)
	}
	checkSequence(t, "c", c, total)
}

// In a diamond a–{b, c}–d, b and c both relay a's messages to d, which
// counts the second copy of each as a duplicate.
func TestDuplicatesAreCounted(t *testing.T) {
	hosts := newHosts(t, 4) // fully connected: cut a–d and b–c below
	ps := pubsubsOn(t, hosts, Config{})
	cutLink(t, hosts[0], hosts[3])
	cutLink(t, hosts[1], hosts[2])
	c, probes := newCollector(), newCounter()
	if _, err := ps[3].Subscribe("t", numbered(c, probes)); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps[1:3] {
		if _, err := p.Subscribe("t", func(Message) {}); err != nil {
			t.Fatal(err)
		}
	}
	waitTopicPeers(t, ps[0], "t", 2)
	// Probe until both relays have d in their mesh: d then counts copies.
	waitRelay(t, ps[0], probes)
	for i := 0; ps[3].Stats().InboundDuplicates == 0; i++ {
		if i == 500 {
			t.Fatal("no duplicate at d after 500 probes through two relays")
		}
		if err := ps[0].Publish(context.Background(), "t", binary.AppendUvarint(nil, probeBase+uint64(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // GossipSub's heartbeat grafts every second
	}
	const total = 20
	for i := range total {
		if err := ps[0].Publish(context.Background(), "t", binary.AppendUvarint(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	barrier(t, ps[0], []*collector{c}, total)
	checkSequence(t, "d", c, total+1) // each once, whatever the copies
}

// A refresh that says what our peers hold of its author already (what we
// last relayed, or what reached all of them from the author) is never
// relayed, whatever its batch number; a change always is, and so is a
// return to what was said before, the author's first announcement and a
// restart. While the
// mesh forms nothing is relayed (the author's repeat will be). A change
// learnt by catching up leaves us owing our peers a catch-up (catchup.go);
// after a round of catch-ups, what we held is what they hold.
func TestKnownRefresh(t *testing.T) {
	topo := newTopology("me")
	now := time.Now()
	seq := uint64(1001)
	vals := func(peers []peer.ID, regs ...regKey) []any { return []any{announcement{peers: peers, regs: regs}} }
	same := vals([]peer.ID{"x", "n"})
	owes := func() bool {
		select {
		case <-topo.owes:
			return true
		default:
			return false
		}
	}
	stepAfter := func(d time.Duration, v []any, forming, reached, want bool, what string) {
		t.Helper()
		now = now.Add(d)
		seq++
		if got := topo.knownRefresh("a", seq, v, now, forming, reached); got != want {
			t.Fatalf("%s: knownRefresh = %v, want %v", what, got, want)
		}
	}
	// Steps further apart than relayAfterChange: no change around us is
	// recent.
	step := func(v []any, forming, reached, want bool, what string) {
		t.Helper()
		stepAfter(relayAfterChange, v, forming, reached, want, what)
	}
	step(same, false, false, false, "the first (a node appeared)")
	step(same, false, false, true, "the same")
	step(vals([]peer.ID{"n", "x"}), false, false, true, "the same peers in another order")
	step(vals([]peer.ID{"x"}), false, false, false, "a link less")
	step(same, false, false, false, "back to what it said before")
	step(vals([]peer.ID{"x", "n"}, regKey{kind: regSubscriber, topic: "t"}), false, false, false, "a subscription more")
	step(vals([]peer.ID{"x", "n"}, regKey{kind: regSubscriber, topic: "u"}), false, false, false, "another subscription")
	step(same, false, false, false, "the subscription gone")
	step(same, false, false, true, "the same")
	step(nil, false, false, false, "no value")
	step(nil, true, false, true, "no value, forming")
	step(nil, false, true, true, "no value, reached all")
	step(vals([]peer.ID{"y"}), false, true, true, "a change that reached all our peers")
	step(vals([]peer.ID{"y"}), false, false, true, "the same again")
	step(same, true, false, true, "a change while forming")
	if owes() {
		t.Fatal("owing a change not relayed while forming (its author repeats it)")
	}
	step(same, true, false, true, "the same, still forming")
	step(same, false, false, false, "the same, once settled: never relayed")
	step(same, false, false, true, "the same again")

	for range 64 {
		now, seq = now.Add(relayAfterChange), seq+1
		if !topo.knownRefresh("a", seq, same, now, false, false) {
			t.Fatalf("identical refresh %d relayed", seq)
		}
	}

	// Within relayAfterChange of a change around us (a gain, or another
	// node's first announcement), the next announcement is relayed
	// whatever it says, until one is relayed announceAgain after it.
	topo.gainedAt = now
	stepAfter(time.Second, same, false, false, false, "a second after a gain")
	stepAfter(time.Second, same, false, false, false, "relayed, but not announceAgain after the gain")
	stepAfter(time.Second, same, false, false, true, "relayed announceAgain after the gain")
	now = now.Add(relayAfterChange)
	if !topo.knownRefresh("z", 7, vals([]peer.ID{"x"}), now, true, false) || !topo.newcomer.Equal(now) {
		t.Fatal("a new author's announcement while forming: relayed, or not counted as a node that appeared")
	}
	stepAfter(time.Second, same, false, false, false, "a node appeared a second ago")
	topo.gainedAt = now
	stepAfter(relayAfterChange, same, false, false, true, "a gain relayAfterChange ago, nothing relayed since")

	// The author restarted: its numbers start again at its clock.
	seq += 10 * restartGap
	step(same, false, false, false, "the author restarted")
	stepAfter(time.Second, same, false, false, false, "a second after the restart")
	step(same, false, false, true, "the same, later")

	// A change learnt by catching up with a peer: owed to the others if
	// its giver had held it for a while; a round of catch-ups (roundStart,
	// gave) settles it.
	topo.caughtUp("a", seq+1, vals([]peer.ID{"w"}), false)
	if owes() {
		t.Fatal("owing a change still on its way through GossipSub")
	}
	other := vals([]peer.ID{"z"})
	topo.hold("a", seq+2, nil, now.Add(-linkAgeCap), other)
	topo.caughtUp("a", seq+2, other, true)
	if !owes() {
		t.Fatal("an old change caught up, and nothing owed")
	}
	sums, _ := topo.roundStart(now)
	topo.gave(sums)
	seq += 2
	step(other, false, false, true, "what a round of catch-ups gave")
	topo.caughtUp("a", seq+1, other, true)
	if owes() {
		t.Fatal("owing what a round gave")
	}
	// A young announcement is not handed over (it is on its way through
	// GossipSub): a round does not count it as given.
	topo.hold("b", 5, nil, now, vals([]peer.ID{"v"}))
	if sums, _ := topo.roundStart(now); sums["a"] == 0 || sums["b"] != 0 {
		t.Fatalf("a round hands over %v; want a's old announcement, not b's young one", sums)
	}
}

// A peer that disconnects loses its link to us from what it announced,
// and nothing else: its next announcement tells the rest.
func TestForgetDropsOnlyTheLinkToUs(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("p", true)
	topo.learn("p", []peer.ID{"me", "q"}, nil)
	topo.setConnected("p", false)
	topo.forget("p")
	if got := sortedPeers(topo.theirs["p"]); !slices.Equal(got, []peer.ID{"q"}) {
		t.Fatalf("what p announced, after it disconnected: %v, want [q]", got)
	}
}

// The refresh period grows with the mesh, 15 s per 20 nodes, at most 75 s,
// jittered by a half either way.
func TestRefreshIntervalScalesWithTheMesh(t *testing.T) {
	for _, c := range []struct {
		nodes int
		every time.Duration
	}{{1, announceRefresh}, {20, announceRefresh}, {21, 2 * announceRefresh}, {100, 5 * announceRefresh}, {1000, 5 * announceRefresh}} {
		for range 50 {
			got := refreshInterval(c.nodes)
			if got < c.every/2 || got >= c.every*3/2 {
				t.Fatalf("%d nodes: refresh after %v, want %v ± 50%%", c.nodes, got, c.every)
			}
		}
	}
}
