package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }

const testKey = "reflect-node-test-secret"

// localConfig is a loopback-only, mDNS-off config with fast redials.
func localConfig(key string) Config {
	return Config{
		Key:          key,
		ListenAddrs:  []string{"/ip4/127.0.0.1/tcp/0"},
		DisableMDNS:  true,
		DialTimeout:  2 * time.Second,
		ReconnectMin: 50 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond,
	}
}

func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeNode(t, n) })
	return n
}

// startMesh starts count nodes with key and connects every pair.
func startMesh(t testing.TB, count int, key string) []*Node {
	t.Helper()
	ns := make([]*Node, count)
	for i := range ns {
		ns[i] = startNode(t, localConfig(key))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range ns {
		for j := i + 1; j < count; j++ {
			if err := ns[i].Connect(ctx, ns[j].Addrs()[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range ns {
		if err := waitNeighbours(ctx, n, count-1); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// waitNeighbours waits until n has at least count direct peers joined.
func waitNeighbours(ctx context.Context, n *Node, count int) error {
	for {
		ps, changed := n.members.joinedNeighbours()
		if len(ps) >= count {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d direct peers, have %d (members %d): %w", count, len(ps), len(n.Peers()), ctx.Err())
		}
	}
}

// closeNode closes n at the end of a test; the test may have closed it.
func closeNode(t testing.TB, n *Node) {
	if err := n.Close(); err != nil && !errors.Is(err, ErrClosed) {
		t.Errorf("close %s: %v", n.ID(), err)
	}
}

// waitSubscribers waits until n knows want ready subscribers of topic.
func waitSubscribers(t testing.TB, n *Node, topic string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.PubSub().WaitSubscribers(ctx, topic, want); err != nil {
		t.Fatal(err)
	}
}
