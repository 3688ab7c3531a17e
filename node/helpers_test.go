package node

import (
	"context"
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
	t.Cleanup(func() { _ = n.Close() })
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
		if err := n.WaitPeers(ctx, count-1); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
