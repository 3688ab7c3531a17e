package pubsub

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/testutil"
)

func TestNextHop(t *testing.T) {
	topo := newTopology("me")
	for _, q := range []peer.ID{"a", "b"} {
		topo.setConnected(q, true)
		topo.setReady(q, true)
	}
	topo.learn("a", []peer.ID{"me", "c"}, nil)
	topo.learn("b", []peer.ID{"me", "c"}, nil)
	topo.learn("c", []peer.ID{"a", "b", "d"}, nil)
	topo.learn("x", []peer.ID{"y"}, []regKey{{regQueue, "jobs", "w"}}) // nobody reaches x
	for target, want := range map[peer.ID]peer.ID{"a": "a", "b": "b", "c": "a", "d": "a"} {
		if h, ok := topo.nextHop(target); !ok || h != want {
			t.Errorf("next hop to %s: %s %v, want %s", target, h, ok, want)
		}
	}
	for _, target := range []peer.ID{"x", "y", "me"} {
		if h, ok := topo.nextHop(target); ok {
			t.Errorf("%s reachable through %s", target, h)
		}
	}
	topo.learn("d", nil, []regKey{{regQueue, "jobs", "w"}, {regResponder, "svc", ""}})
	if got := topo.remoteMembers(regQueue, "jobs"); len(got["w"]) != 1 || got["w"][0] != "d" {
		t.Fatalf("remote members %v, want d only (x is unreachable)", got)
	}
	// a's link goes: d is reached through b.
	topo.setReady("a", false)
	topo.setConnected("a", false)
	topo.forget("a")
	if h, ok := topo.nextHop("d"); !ok || h != "b" {
		t.Fatalf("after a left: next hop to d %s %v, want b", h, ok)
	}
	topo.learn("c", []peer.ID{"b"}, nil)
	if _, ok := topo.nextHop("d"); ok || len(topo.remoteMembers(regQueue, "jobs")) != 0 {
		t.Fatal("d still reachable after its last link went")
	}
}

// star builds a hub with leaves around it: every leaf is connected to the
// hub only. The hub subscribes to nothing.
func star(t *testing.T, leaves int) ([]host.Host, []*PubSub) {
	t.Helper()
	return starOf(t, leaves)
}

// starOf is star for tests and benchmarks.
func starOf(t testing.TB, leaves int) ([]host.Host, []*PubSub) {
	t.Helper()
	hosts := newHosts(t, leaves+1) // fully connected: cut leaf–leaf links
	for i := 1; i <= leaves; i++ {
		hosts[i].ConnManager().Protect(hosts[0].ID(), "test")
		for j := i + 1; j <= leaves; j++ {
			cutLink(t, hosts[i], hosts[j])
		}
	}
	return hosts, pubsubsOn(t, hosts, Config{})
}

// On a star whose hub neither answers nor subscribes, a leaf's request
// reaches a responder on another leaf and its answer comes back, through
// the hub; RequestAll gathers both leaves' answers; Send reaches a leaf.
func TestCallsThroughARelay(t *testing.T) {
	_, ps := star(t, 3)
	a, c, d := ps[1], ps[2], ps[3]
	for i, p := range []*PubSub{c, d} {
		name := fmt.Sprint("leaf", i+2)
		if _, err := p.Handle("svc", func(_ context.Context, m Message) ([]byte, error) {
			return []byte(name + ":" + string(m.Data)), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.WaitResponders(ctx, "svc", 2); err != nil {
		t.Fatal(err)
	}
	m, err := a.Request(ctx, "svc", []byte("hi"))
	if err != nil || (string(m.Data) != "leaf2:hi" && string(m.Data) != "leaf3:hi") {
		t.Fatalf("request through the hub: %q %v", m.Data, err)
	}
	replies, err := a.RequestAll(ctx, "svc", []byte("all"))
	if err != nil || len(replies) != 2 {
		t.Fatalf("RequestAll through the hub: %d replies, %v", len(replies), err)
	}
	got := newCollector()
	if _, err := c.Subscribe("direct", got.handle); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := a.Send(ctx, c.host.ID(), "direct", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !got.wait(50, 10*time.Second) {
		t.Fatalf("c got %d of 50 sends through the hub", got.count())
	}
	got.mu.Lock()
	for i, m := range got.msgs {
		if string(m.Data) != fmt.Sprint(i) || m.From != a.host.ID() {
			t.Fatalf("send %d: %q from %s", i, m.Data, m.From)
		}
	}
	got.mu.Unlock()
	if err := a.Send(ctx, peer.ID("nowhere"), "direct", []byte("x")); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("send to an unknown node: %v", err)
	}
}

// A queue group whose members are leaves of a star, publisher on another
// leaf and a hub that subscribes to nothing: each message once, evenly.
func TestQueueGroupThroughARelay(t *testing.T) {
	_, ps := star(t, 4)
	a := ps[1]
	members := make([]*collector, 3)
	for i := range members {
		members[i] = newCollector()
		if _, err := ps[i+2].Subscribe("jobs", members[i].handle, WithQueueGroup("workers")); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "three members known through the hub", func() bool {
		return len(a.members(regQueue, "jobs")["workers"]) == 3
	})
	const n = 3000
	for i := range n {
		if err := a.Publish(context.Background(), "jobs", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 20*time.Second, "every job delivered", func() bool {
		total := 0
		for _, m := range members {
			total += m.count()
		}
		return total >= n
	})
	seen := map[string]bool{}
	for i, m := range members {
		m.mu.Lock()
		for _, msg := range m.msgs {
			if seen[string(msg.Data)] {
				t.Fatalf("job %s delivered twice", msg.Data)
			}
			seen[string(msg.Data)] = true
		}
		got := len(m.msgs)
		m.mu.Unlock()
		if got < n/3*9/10 || got > n/3*11/10 {
			t.Errorf("member %d got %d jobs, want %d ± 10 %%", i, got, n/3)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct jobs, want %d", len(seen), n)
	}
	if u := ps[0].Stats().Unroutable; u != 0 {
		t.Fatalf("the hub could not forward %d frames", u)
	}
}
