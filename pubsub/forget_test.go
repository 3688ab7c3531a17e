package pubsub

import (
	"context"
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

// A node that left is forgotten by the others once out of reach for
// forgetAfter: its links, its announcement held for catch-ups, and its
// sequence in the reorderer of a topic it published on. The sweeps run
// at forged times here; the announce loop runs them when it announces, at
// most once per forgetSweep.
func TestForgetGoneNode(t *testing.T) {
	hosts := newHostsApart(t, 3)
	connect(t, hosts[0], hosts[1])
	connect(t, hosts[1], hosts[2])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps := pubsubsOn(t, hosts, Config{})
	id := func(i int) peer.ID { return hosts[i].ID() }
	cols := make([]*collector, 3)
	for i, p := range ps {
		cols[i] = newCollector()
		if _, err := p.Subscribe("t", cols[i].handle); err != nil {
			t.Fatal(err)
		}
	}
	wantLinks(t, ps[0], "node 0, the chain formed", map[peer.ID][]peer.ID{
		id(0): {id(1)},
		id(1): sorted(id(0), id(2)),
		id(2): {id(1)},
	})
	waitTopicPeers(t, ps[2], "t", 2)
	if err := ps[2].Publish(ctx, "t", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if !cols[0].wait(1, 10*time.Second) {
		t.Fatal("node 0 did not get node 2's message")
	}
	top, err := ps[0].topic("t", false)
	if err != nil {
		t.Fatal(err)
	}
	knows := func() (held, author bool) {
		ps[0].topo.mu.Lock()
		_, held = ps[0].topo.held[id(2)]
		ps[0].topo.mu.Unlock()
		top.order.mu.Lock()
		_, author = top.order.authors[string(id(2))]
		top.order.mu.Unlock()
		return held, author
	}
	if held, author := knows(); !held || !author {
		t.Fatalf("before: node 2's announcement held %v, in the reorderer %v", held, author)
	}

	closePubSub(t, ps[2])
	if err := hosts[2].Close(); err != nil {
		t.Fatal(err)
	}
	wantLinks(t, ps[0], "node 0, node 2 gone", map[peer.ID][]peer.ID{
		id(0): {id(1)},
		id(1): {id(0)},
	})
	now := time.Now()
	ps[0].forgetGone(now)
	if held, author := knows(); !held || !author {
		t.Fatalf("forgotten at once: held %v, in the reorderer %v", held, author)
	}
	ps[0].forgetGone(now.Add(forgetAfter))
	if held, author := knows(); held || author {
		t.Fatalf("after forgetAfter: node 2's announcement held %v, in the reorderer %v", held, author)
	}
	if _, ok := ps[0].topo.digest()[id(2)]; ok {
		t.Fatal("node 2 still in node 0's catch-up digest")
	}
	if _, ok := ps[0].topo.digest()[id(1)]; !ok {
		t.Fatal("node 1, a peer, not in node 0's catch-up digest")
	}
}
