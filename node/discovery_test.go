package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

// mdnsConfig is a loopback config with mDNS on. Only for tests that called
// netns.Require: mDNS multicasts on every interface it finds.
func mdnsConfig(key string) Config {
	cfg := localConfig(key)
	cfg.DisableMDNS = false
	return cfg
}

// formMesh starts count mDNS nodes and waits until every one is connected
// to all others, returning the nodes and the time that took.
func formMesh(t *testing.T, count int, key string) ([]*Node, time.Duration) {
	t.Helper()
	start := time.Now()
	ns := make([]*Node, count)
	for i := range ns {
		ns[i] = startNode(t, mdnsConfig(key))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i, n := range ns {
		if err := waitNeighbours(ctx, n, count-1); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	return ns, time.Since(start)
}

// exchange checks that a broadcast from ns[0] reaches every other node.
func exchange(t *testing.T, ns []*Node, topic string) {
	t.Helper()
	got := make(chan int, len(ns))
	for i := 1; i < len(ns); i++ {
		if _, err := ns[i].Subscribe(topic, func(map[string]any) { got <- i }); err != nil {
			t.Fatal(err)
		}
	}
	waitSubscribers(t, ns[0], topic, len(ns)-1)
	if err := ns[0].Broadcast(context.Background(), topic, map[string]any{"hello": true}); err != nil {
		t.Fatal(err)
	}
	for range len(ns) - 1 {
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("a node missed the broadcast")
		}
	}
}

func TestMDNSDiscovery(t *testing.T) {
	netns.Require(t)
	for _, count := range []int{3, 5} {
		t.Run(fmt.Sprint(count, " nodes"), func(t *testing.T) {
			ns, took := formMesh(t, count, fmt.Sprintf("%s-%d", testKey, count))
			t.Logf("%d nodes fully connected in %v", count, took)
			exchange(t, ns, "hello")
		})
	}
}

func TestMDNSLateJoinerAndStranger(t *testing.T) {
	netns.Require(t)
	ns, _ := formMesh(t, 3, testKey)
	stranger := startNode(t, mdnsConfig("some-other-mesh-secret"))
	late := startNode(t, mdnsConfig(testKey))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := late.WaitPeers(ctx, 3); err != nil {
		t.Fatal(err)
	}
	exchange(t, append([]*Node{late}, ns...), "late")
	for _, n := range append(ns, late) {
		for _, p := range n.Peers() {
			if p == stranger.ID() {
				t.Fatalf("the stranger is connected to %s", n.ID())
			}
		}
	}
	if len(stranger.Peers()) != 0 {
		t.Fatalf("the stranger has peers %v", stranger.Peers())
	}
}

func TestMDNSFormationsInARow(t *testing.T) {
	netns.Require(t)
	if testing.Short() {
		t.Skip("-short")
	}
	const rounds, count = 20, 3
	var total, worst time.Duration
	for r := range rounds {
		ok := t.Run(fmt.Sprint("round ", r), func(t *testing.T) {
			ns, took := formMesh(t, count, fmt.Sprintf("%s-round-%d", testKey, r))
			total += took
			worst = max(worst, took)
			exchange(t, ns, "round")
		})
		if !ok {
			t.Fatalf("formation %d of %d failed", r+1, rounds)
		}
	}
	t.Logf("%d formations of %d nodes: mean %v, worst %v", rounds, count, total/rounds, worst)
}
