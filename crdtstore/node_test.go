package crdtstore_test

import (
	"context"
	"encoding/binary"
	"errors"
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

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/internal/testutil"
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
	s    *crdtstore.Store // nil for startNode's
	gate *gate
}

// startNode starts a node on loopback, closed at the end of the test.
func startNode(t testing.TB, cfg node.Config) testNode {
	t.Helper()
	g := &gate{}
	cfg.Key = testKey
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.DisableMDNS = true
	cfg.ReconnectMin = 50 * time.Millisecond
	cfg.ReconnectMax = 500 * time.Millisecond
	cfg.Libp2pOptions = []libp2p.Option{libp2p.ConnectionGater(g)}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil && !errors.Is(err, node.ErrClosed) {
			t.Errorf("node Close: %v", err)
		}
	})
	return testNode{n: n, gate: g}
}

// startStoreNode starts a node with the default store open on it.
func startStoreNode(t testing.TB) testNode {
	t.Helper()
	return startStoreNodeWith(t, node.Config{}, fastOptions())
}

func startStoreNodeWith(t testing.TB, cfg node.Config, opts crdtstore.Options) testNode {
	t.Helper()
	tn := startNode(t, cfg)
	s, err := crdtstore.Open(tn.n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) }) // runs before the node's Close
	tn.s = s
	return tn
}

func connect(t testing.TB, a, b testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.n.Connect(ctx, b.n.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
}

func stores(tn []testNode) []*crdtstore.Store {
	out := make([]*crdtstore.Store, len(tn))
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
		mustSet(t, tn[0].s, fmt.Sprintf("a/%d", i), "from 0")
		mustSet(t, tn[3].s, fmt.Sprintf("b/%d", i), "from 3")
	}
	mustDelete(t, tn[0].s, "a/7")
	testutil.Eventually(t, 15*time.Second, "five stores to converge", func() bool { return converged(stores(tn)) && tn[4].s.Len() == 999 })
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
	if err := a.n.Host().Network().ClosePeer(b.n.ID()); err != nil {
		t.Fatal(err)
	}
	if err := b.n.Host().Network().ClosePeer(a.n.ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "disconnection", func() bool { return len(a.n.Peers()) == 0 && len(b.n.Peers()) == 0 })
	return func() {
		a.gate.closed.Store(false)
		b.gate.closed.Store(false)
	}
}

func TestLoopbackReconnectConverges(t *testing.T) {
	a, b := startStoreNode(t), startStoreNode(t)
	connect(t, a, b)
	mustSet(t, a.s, "k", "before")
	testutil.Eventually(t, 5*time.Second, "k on b", func() bool { return has(b.s, "k") })
	heal := partition(t, a, b)
	mustSet(t, a.s, "only-a", "1")
	mustSet(t, b.s, "only-b", "2")
	mustDelete(t, a.s, "k")   // concurrent with b's Set below:
	mustSet(t, b.s, "k", "b") // the Set wins
	heal()                    // the reconnect loops find each other again
	testutil.Eventually(t, 10*time.Second, "convergence after reconnect", func() bool { return converged([]*crdtstore.Store{a.s, b.s}) })
	for _, s := range []*crdtstore.Store{a.s, b.s} {
		mustGet(t, s, "k", "b")
		mustGet(t, s, "only-a", "1")
		mustGet(t, s, "only-b", "2")
	}
}

// Deltas that do not decode are refused by pub/sub, on either way: direct
// streams (the default between two connected nodes) and GossipSub (where
// the deprecated Sign keeps every broadcast).
func TestLoopbackMalformedDeltasRefused(t *testing.T) {
	for _, sign := range []bool{false, true} {
		t.Run(fmt.Sprintf("sign=%v", sign), func(t *testing.T) {
			//lint:ignore SA1019 Sign is what keeps the deltas on GossipSub here
			malformedDeltasRefused(t, node.Config{PubSub: pubsub.Config{Sign: sign}})
		})
	}
}

func malformedDeltasRefused(t *testing.T, cfg node.Config) {
	a, b := startStoreNodeWith(t, cfg, fastOptions()), startStoreNodeWith(t, cfg, fastOptions())
	connect(t, a, b)
	topic := pubsub.ReservedPrefix + "store/" + crdtstore.DefaultName
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Until b knows a subscribes, what b publishes may reach no one.
	if err := b.n.PubSub().WaitSubscribers(ctx, topic, 1); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b.s, "k", "v")
	testutil.Eventually(t, 5*time.Second, "k on a", func() bool { return has(a.s, "k") })
	junk := [][]byte{[]byte("garbage"), {1}, {0xff, 0xff, 0xff, 0xff, 0x0f}, make([]byte, 1000)}
	for _, j := range junk {
		if err := b.n.PubSub().Publish(ctx, topic, j, pubsub.AllowReserved()); err != nil {
			t.Fatal(err)
		}
		if err := b.n.PubSub().Flush(ctx); err != nil { // one batch each
			t.Fatal(err)
		}
	}
	// The store's decoder refuses each one in pub/sub, before delivery
	// and before any relaying.
	testutil.Eventually(t, 5*time.Second, "the junk to be refused", func() bool {
		return a.s.Stats().DeltasInvalid == uint64(len(junk)) && a.n.PubSub().Stats().Invalid == uint64(len(junk))
	})
	// b's messages arrive in order: k's delta, if not lost, is counted by
	// now, and the barrier's is the only one to come. Once it has, any
	// trace of the junk in the store would show.
	received := a.s.Stats().DeltasReceived
	mustSet(t, b.s, "barrier", "x")
	testutil.Eventually(t, 5*time.Second, "the barrier's delta on a", func() bool {
		return a.s.Stats().DeltasReceived > received && has(a.s, "barrier")
	})
	if st := a.s.Stats(); st.DeltasReceived != received+1 || st.DeltasInvalid != uint64(len(junk)) {
		t.Fatalf("a: %d deltas received since the junk, %d invalid; want 1 (the barrier's) and %d", st.DeltasReceived-received, st.DeltasInvalid, len(junk))
	}
	mustGet(t, a.s, "k", "v")
	if n := a.s.Len(); n != 2 {
		t.Fatalf("a has %d keys, want 2", n)
	}
}

func TestLoopbackHostileSyncFrames(t *testing.T) {
	a, b := startStoreNode(t), startStoreNode(t)
	mustSet(t, a.s, "k", "v")
	connect(t, a, b)
	proto := crdtstore.SyncProtocol(a.s)
	hostile := map[string][]byte{
		"length 2^31":   append(binary.AppendUvarint(nil, 1<<31), crdtstore.FrameContext, 'x', 'y'),
		"garbage":       []byte("\x05\x01garbage that is not a context"),
		"zero length":   {0},
		"wrong kind":    append(binary.AppendUvarint(nil, 3), 99, 0, 0),
		"lying context": append(binary.AppendUvarint(nil, 8), crdtstore.FrameContext, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f),
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
			defer s.Reset()
			if err := s.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(frame); err != nil {
				t.Fatal(err)
			}
			// CloseWrite fails if the server has refused the frame and
			// reset the stream already; the reset is checked below.
			closeErr := s.CloseWrite()
			reply, err := io.ReadAll(s)
			runtime.ReadMemStats(&m1)
			if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 8<<20 {
				t.Fatalf("serving a hostile frame allocated %d bytes", grew)
			}
			if len(reply) != 0 {
				t.Fatalf("got a %d-byte reply to a hostile frame", len(reply))
			}
			if !errors.Is(err, network.ErrReset) {
				t.Fatalf("the server ended the stream with %v, want a reset (CloseWrite: %v)", err, closeErr)
			}
		})
	}
	testutil.Eventually(t, 5*time.Second, "failures to be counted", func() bool { return a.s.Stats().SyncFailures >= uint64(len(hostile)) })
	if got, ok := a.s.GetString("k"); !ok || got != "v" || a.s.Len() != 1 {
		t.Fatalf("store changed: %q %v, %d keys", got, ok, a.s.Len())
	}
}

// A peer without the store is no sync failure: the node transport reports
// it as ErrNoStore, and the store counts the peer as synced.
func TestLoopbackPeerWithoutStore(t *testing.T) {
	opts := fastOptions()
	opts.DiscoveryGrace = time.Hour // synced only through the peer
	a := startStoreNodeWith(t, node.Config{}, opts)
	mustSet(t, a.s, "k", "v")
	plain := startNode(t, node.Config{}) // no store open
	connect(t, plain, a)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := crdtstore.OpenSync(ctx, a.s, string(plain.n.ID()))
	if !errors.Is(err, crdtstore.ErrNoStore) {
		t.Fatalf("OpenSync to a node without the store: %v, want ErrNoStore", err)
	}
	if err := a.s.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if f := a.s.Stats().SyncFailures; f != 0 {
		t.Fatalf("%d sync failures", f)
	}
	if a.s.Node() != a.n {
		t.Fatal("Node() is not the node the store was opened on")
	}
}

// Open bounds values by the node's pub/sub message size, as
// Options.MaxDeltaBytes left zero says.
func TestOpenDerivesDeltaLimits(t *testing.T) {
	tn := startNode(t, node.Config{PubSub: pubsub.Config{MaxMessageSize: 64 << 10}})
	s, err := crdtstore.Open(tn.n, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	const maxValue = 64<<10 - 4096
	if err := s.Set("fits", make([]byte, maxValue)); err != nil {
		t.Fatalf("Set of a %d-byte value: %v", maxValue, err)
	}
	if err := s.Set("too big", make([]byte, maxValue+1)); !errors.Is(err, crdtstore.ErrTooLarge) {
		t.Fatalf("Set of a %d-byte value: %v, want ErrTooLarge", maxValue+1, err)
	}
	if _, err := crdtstore.Open(tn.n, crdtstore.Options{Name: "other", MaxValueLen: 64 << 10}); !errors.Is(err, crdtstore.ErrConfig) {
		t.Fatalf("Open with MaxValueLen = the message size: %v, want ErrConfig", err)
	}
}

// On a node, Entry.Peer is the writer's peer id in its text form, for a
// value received by delta and one received by sync.
func TestLoopbackEntryPeerIsTheTextID(t *testing.T) {
	a, b := startStoreNode(t), startStoreNode(t)
	if err := a.s.Set("before", []byte("1")); err != nil { // reaches b by sync
		t.Fatal(err)
	}
	connect(t, a, b)
	testutil.Eventually(t, 10*time.Second, "b has before", func() bool { _, ok := b.s.Get("before"); return ok })
	w := b.s.Watch("after")
	defer w.Stop()
	if err := a.s.Set("after", []byte("2")); err != nil { // by delta
		t.Fatal(err)
	}
	select {
	case c := <-w.Updates():
		if c.Peer != a.n.ID().String() {
			t.Errorf("Change.Peer %q, want %s", c.Peer, a.n.ID())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change on b")
	}
	for _, key := range []string{"before", "after"} {
		if e, ok := b.s.GetEntry(key); !ok || e.Peer != a.n.ID().String() {
			t.Errorf("b's entry of %s: Peer %q, want %s", key, e.Peer, a.n.ID())
		}
		if e, ok := a.s.GetEntry(key); !ok || e.Peer != a.n.ID().String() {
			t.Errorf("a's own entry of %s: Peer %q, want %s", key, e.Peer, a.n.ID())
		}
	}
}
