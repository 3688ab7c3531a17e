package pubsub

import (
	"slices"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A node out of reach is forgotten once it has been out of reach at every
// sweep for forgetAfter: what it announced, the copy held for catch-ups,
// and what knownRefresh remembers of it. Nodes in reach are kept however
// long they have said nothing new, and so is a node that came back in
// reach before forgetAfter.
func TestForgetGone(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("a", true)
	topo.setReady("a", true)
	now := time.Now()
	ann := func(author peer.ID, peers ...peer.ID) {
		topo.learn(author, peers, []regKey{{regSubscriber, "t-" + string(author), ""}})
		topo.hold(author, 1, &pb.Message{}, now, []any{announcement{peers: peers}})
		topo.knownRefresh(author, 1, []any{announcement{peers: peers}}, now, false, false)
	}
	// me – a – b – c: all in reach.
	ann("a", "me", "b")
	ann("b", "a", "c")
	ann("c", "b")
	if n := topo.forgetGone(now); len(n) != 0 {
		t.Fatalf("forgot %v in reach", n)
	}
	// b loses c, and a loses b: b and c are out of reach.
	ann("b", "a")
	ann("a", "me")
	if n := topo.forgetGone(now); len(n) != 0 {
		t.Fatalf("forgot %v at the first sweep out of reach", n)
	}
	if n := topo.forgetGone(now.Add(forgetAfter - time.Second)); len(n) != 0 {
		t.Fatalf("forgot %v before forgetAfter", n)
	}
	// b comes back in reach through a: c, still out of reach, is
	// forgotten, b is kept and its clock restarts.
	ann("a", "me", "b")
	if n := topo.forgetGone(now.Add(forgetAfter)); !slices.Equal(n, []peer.ID{"c"}) {
		t.Fatalf("forgot %v, want c alone (b in reach again)", n)
	}
	ann("a", "me")
	if n := topo.forgetGone(now.Add(forgetAfter + time.Second)); len(n) != 0 {
		t.Fatalf("forgot %v, b out of reach again a moment ago", n)
	}
	if n := topo.forgetGone(now.Add(2*forgetAfter + time.Second)); !slices.Equal(n, []peer.ID{"b"}) {
		t.Fatalf("forgot %v, want b", n)
	}
	topo.mu.Lock()
	for _, q := range []peer.ID{"b", "c"} {
		_, theirs := topo.theirs[q]
		_, since := topo.since[q]
		_, regs := topo.regs[q]
		_, seen := topo.seen[q]
		_, given := topo.given[q]
		_, relayed := topo.relayed[q]
		_, held := topo.held[q]
		_, gone := topo.gone[q]
		if theirs || since || regs || seen || given || relayed || held || gone {
			t.Errorf("%s kept: theirs %v since %v regs %v seen %v given %v relayed %v held %v gone %v",
				q, theirs, since, regs, seen, given, relayed, held, gone)
		}
	}
	_, a := topo.theirs["a"]
	_, aRegs := topo.regs["a"]
	_, aHeld := topo.held["a"]
	topo.mu.Unlock()
	if !a || !aRegs || !aHeld {
		t.Fatalf("a, a peer, forgotten: theirs %v regs %v held %v", a, aRegs, aHeld)
	}
	if _, ok := topo.digest()["c"]; ok {
		t.Fatal("a forgotten node still in the catch-up digest")
	}
	// A far node in reach that says nothing new for hours keeps its
	// registry entries (routes to its responders).
	ann("a", "me", "d")
	ann("d", "a")
	for i := range 10 {
		topo.forgetGone(now.Add(time.Duration(i) * time.Hour))
	}
	if got := topo.farSubscribers("t-d"); len(got) != 1 || got[0] != "d" {
		t.Fatalf("far subscriber d after hours in reach: %v", got)
	}
}

// A peer we are connected to is never forgotten, even before its pub/sub
// is ready (it is not yet a link of ours).
func TestForgetGoneKeepsConnected(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("a", true)
	topo.learn("a", nil, nil)
	now := time.Now()
	for i := range 3 {
		if n := topo.forgetGone(now.Add(time.Duration(i) * forgetAfter)); len(n) != 0 {
			t.Fatalf("sweep %d forgot %v", i, n)
		}
	}
	topo.setConnected("a", false)
	topo.forgetGone(now)
	if n := topo.forgetGone(now.Add(forgetAfter)); !slices.Equal(n, []peer.ID{"a"}) {
		t.Fatalf("forgot %v once disconnected, want a", n)
	}
}
