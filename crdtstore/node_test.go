package crdtstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

const testKey = "crdtstore-test-secret"

// gate blocks every connection while closed is set (a partition).
type gate struct{ closed atomic.Bool }

func (g *gate) InterceptPeerDial(peer.ID) bool               { return !g.closed.Load() }
func (g *gate) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return !g.closed.Load() }
func (g *gate) InterceptAccept(network.ConnMultiaddrs) bool  { return !g.closed.Load() }
func (g *gate) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return !g.closed.Load()
}
func (g *gate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return !g.closed.Load(), 0
}

type testNode struct {
	n    *node.Node
	s    *Store
	gate *gate
}

func startStoreNode(t testing.TB) testNode {
	t.Helper()
	g := &gate{}
	n, err := node.New(node.Config{
		Key:           testKey,
		ListenAddrs:   []string{"/ip4/127.0.0.1/tcp/0"},
		DisableMDNS:   true,
		ReconnectMin:  50 * time.Millisecond,
		ReconnectMax:  500 * time.Millisecond,
		Libp2pOptions: []libp2p.Option{libp2p.ConnectionGater(g)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(n, fastOptions())
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = n.Close()
	})
	return testNode{n, s, g}
}

func connect(t testing.TB, a, b testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.n.Connect(ctx, b.n.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
}

func stores(tn []testNode) []*Store {
	out := make([]*Store, len(tn))
	for i, x := range tn {
		out[i] = x.s
	}
	return out
}

func TestLoopbackFiveNodesConverge(t *testing.T) {
	tn := make([]testNode, 5)
	for i := range tn {
		tn[i] = startStoreNode(t)
	}
	for i := 1; i < len(tn); i++ {
		connect(t, tn[0], tn[i])
		for j := 1; j < i; j++ {
			connect(t, tn[i], tn[j])
		}
	}
	for i := range 500 {
		_ = tn[0].s.SetString(fmt.Sprintf("a/%d", i), "from 0")
		_ = tn[3].s.SetString(fmt.Sprintf("b/%d", i), "from 3")
	}
	_ = tn[0].s.Delete("a/7")
	eventually(t, 15*time.Second, "five stores to converge", func() bool { return converged(stores(tn)) && tn[4].s.Len() == 999 })
}

func TestLoopbackLateJoinerGets10000Keys(t *testing.T) {
	a := startStoreNode(t)
	for i := range 10000 {
		if err := a.s.SetString(fmt.Sprintf("key/%05d", i), "a value of about forty bytes, give or take"); err != nil {
			t.Fatal(err)
		}
	}
	b := startStoreNode(t)
	start := time.Now()
	connect(t, b, a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.s.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("late joiner synced 10,000 keys in %v", time.Since(start))
	if n := b.s.Len(); n != 10000 {
		t.Fatalf("late joiner has %d keys", n)
	}
}

// partition cuts a and b apart and keeps them apart until heal.
func partition(t testing.TB, a, b testNode) (heal func()) {
	t.Helper()
	a.gate.closed.Store(true)
	b.gate.closed.Store(true)
	_ = a.n.Host().Network().ClosePeer(b.n.ID())
	_ = b.n.Host().Network().ClosePeer(a.n.ID())
	eventually(t, 5*time.Second, "disconnection", func() bool { return len(a.n.Peers()) == 0 && len(b.n.Peers()) == 0 })
	return func() {
		a.gate.closed.Store(false)
		b.gate.closed.Store(false)
	}
}

func TestLoopbackReconnectConverges(t *testing.T) {
	a, b := startStoreNode(t), startStoreNode(t)
	connect(t, a, b)
	_ = a.s.SetString("k", "before")
	eventually(t, 5*time.Second, "k on b", func() bool { _, ok := b.s.Get("k"); return ok })
	heal := partition(t, a, b)
	_ = a.s.SetString("only-a", "1")
	_ = b.s.SetString("only-b", "2")
	_ = a.s.Delete("k")         // concurrent with b's Set below:
	_ = b.s.SetString("k", "b") // the Set wins
	heal()                      // the reconnect loops find each other again
	eventually(t, 10*time.Second, "convergence after reconnect", func() bool { return converged([]*Store{a.s, b.s}) })
	for _, s := range []*Store{a.s, b.s} {
		mustGet(t, s, "k", "b")
		mustGet(t, s, "only-a", "1")
		mustGet(t, s, "only-b", "2")
	}
}

func TestLoopbackMalformedDeltasRefused(t *testing.T) {
	a, b := startStoreNode(t), startStoreNode(t)
	connect(t, a, b)
	_ = b.s.SetString("k", "v")
	eventually(t, 5*time.Second, "k on a", func() bool { _, ok := a.s.Get("k"); return ok })
	before := a.s.List("")
	topic := pubsub.ReservedPrefix + "store/" + DefaultName
	ctx := context.Background()
	for _, junk := range [][]byte{[]byte("garbage"), {1}, {0xff, 0xff, 0xff, 0xff, 0x0f}, make([]byte, 1000)} {
		if err := b.n.PubSub().Publish(ctx, topic, junk, pubsub.AllowReserved()); err != nil {
			t.Fatal(err)
		}
		if err := b.n.PubSub().Flush(ctx); err != nil { // one batch each
			t.Fatal(err)
		}
	}
	// The store's validator refuses each one in pub/sub, before delivery
	// and before any relaying.
	eventually(t, 5*time.Second, "the junk to be refused", func() bool {
		return a.s.Stats().DeltasInvalid == 4 && a.n.PubSub().Stats().Invalid == 4
	})
	if r := a.s.Stats().DeltasReceived; r > 1 {
		t.Fatalf("DeltasReceived = %d: junk reached the store", r)
	}
	after := a.s.List("")
	if len(after) != len(before) || string(after[0].Value) != "v" {
		t.Fatalf("store changed: %v -> %v", before, after)
	}
}

func TestLoopbackHostileSyncFrames(t *testing.T) {
	a, b := startStoreNode(t), startStoreNode(t)
	_ = a.s.SetString("k", "v")
	connect(t, a, b)
	proto := a.s.tr.(*nodeTransport).proto
	hostile := map[string][]byte{
		"length 2^31":   append(binary.AppendUvarint(nil, 1<<31), frameContext, 'x', 'y'),
		"garbage":       []byte("\x05\x01garbage that is not a context"),
		"zero length":   {0},
		"wrong kind":    append(binary.AppendUvarint(nil, 3), 99, 0, 0),
		"lying context": append(binary.AppendUvarint(nil, 8), frameContext, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f),
	}
	for name, frame := range hostile {
		t.Run(name, func(t *testing.T) {
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := b.n.Host().NewStream(ctx, a.n.ID(), proto)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = s.Write(frame)
			_ = s.CloseWrite()
			_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
			reply, _ := io.ReadAll(s)
			s.Close()
			runtime.ReadMemStats(&m1)
			if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 8<<20 {
				t.Fatalf("serving a hostile frame allocated %d bytes", grew)
			}
			if len(reply) != 0 {
				t.Fatalf("got a %d-byte reply to a hostile frame", len(reply))
			}
		})
	}
	eventually(t, 5*time.Second, "failures to be counted", func() bool { return a.s.Stats().SyncFailures >= uint64(len(hostile)) })
	if got, ok := a.s.GetString("k"); !ok || got != "v" || a.s.Len() != 1 {
		t.Fatalf("store changed: %q %v, %d keys", got, ok, a.s.Len())
	}
}
