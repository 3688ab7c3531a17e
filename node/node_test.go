package node

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/pubsub"
)

func TestBroadcastReachesEveryNode(t *testing.T) {
	const nodes, count = 5, 1000
	ns := startMesh(t, nodes, testKey)
	var mu sync.Mutex
	got := make([][]float64, nodes)
	done := make(chan int, nodes*count)
	for i := 1; i < nodes; i++ {
		if _, err := ns[i].Subscribe("chat", func(m map[string]any) {
			mu.Lock()
			got[i] = append(got[i], m["n"].(float64))
			mu.Unlock()
			done <- i
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitSubscribers(t, ns[0], "chat", nodes-1)
	start := time.Now()
	for i := range count {
		if err := ns[0].Broadcast(context.Background(), "chat", map[string]any{"n": i, "text": "hello"}); err != nil {
			t.Fatal(err)
		}
	}
	timeout := time.After(30 * time.Second)
	for range (nodes - 1) * count {
		select {
		case <-done:
		case <-timeout:
			mu.Lock()
			defer mu.Unlock()
			for i := 1; i < nodes; i++ {
				t.Logf("node %d: %d messages", i, len(got[i]))
			}
			t.Fatal("timed out")
		}
	}
	t.Logf("%d messages to %d nodes in %v", count, nodes-1, time.Since(start))
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < nodes; i++ {
		for j, v := range got[i] {
			if int(v) != j {
				t.Fatalf("node %d message %d is %v: out of order", i, j, v)
			}
		}
	}
}

func TestWrongKeyNeverConnects(t *testing.T) {
	ns := startMesh(t, 2, testKey)
	cfg := localConfig("a-different-secret-entirely")
	cfg.DialTimeout = time.Second
	stranger := startNode(t, cfg)
	got := make(chan map[string]any, 1)
	if _, err := stranger.Subscribe("chat", func(m map[string]any) { got <- m }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, dial := range []struct {
		from, to *Node
		limit    time.Duration
	}{
		{stranger, ns[0], cfg.DialTimeout}, {ns[0], stranger, localConfig(testKey).DialTimeout},
	} {
		start := time.Now()
		if err := dial.from.Connect(ctx, dial.to.Addrs()[0]); err == nil {
			t.Fatalf("%s connected to %s", dial.from.ID(), dial.to.ID())
		}
		if d := time.Since(start); d > dial.limit+time.Second {
			t.Fatalf("a failed dial took %v, timeout %v", d, dial.limit)
		}
	}
	// A member's broadcast reaches the other member (the barrier), never
	// the stranger, which has no connection at all to receive it on.
	member := make(chan map[string]any, 1)
	if _, err := ns[0].Subscribe("chat", func(m map[string]any) { member <- m }); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, ns[1], "chat", 1)
	if err := ns[1].Broadcast(ctx, "chat", map[string]any{"text": "members only"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-member:
	case <-ctx.Done():
		t.Fatal("the other member got nothing")
	}
	for _, n := range ns {
		if slices.Contains(n.Peers(), stranger.ID()) || len(n.Host().Network().ConnsToPeer(stranger.ID())) != 0 {
			t.Fatal("the stranger is connected to a member")
		}
	}
	if ps, conns := stranger.Peers(), stranger.Host().Network().Conns(); len(ps) != 0 || len(conns) != 0 {
		t.Fatalf("the stranger has peers %v and %d connections", ps, len(conns))
	}
	select {
	case m := <-got:
		t.Fatalf("stranger received %v", m)
	default:
	}
}

func TestReconnectAfterConnectionDies(t *testing.T) {
	ns := startMesh(t, 2, testKey)
	events := make(chan PeerEvent, 16)
	stop := ns[0].OnPeer(func(e PeerEvent) { events <- e })
	defer stop()
	select {
	case e := <-events: // the snapshot of peers already joined
		if e.State != PeerJoined || e.ID != ns[1].ID() {
			t.Fatalf("first event %v %v, want the snapshot's join", e.ID, e.State)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot event")
	}
	start := time.Now()
	if err := ns[0].Host().Network().ClosePeer(ns[1].ID()); err != nil {
		t.Fatal(err)
	}
	want := []PeerState{PeerLeft, PeerJoined}
	for _, w := range want {
		select {
		case e := <-events:
			if e.State != w || e.ID != ns[1].ID() {
				t.Fatalf("got event %v %v, want %v", e.ID, e.State, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %v event", w)
		}
	}
	t.Logf("reconnected after %v", time.Since(start))
}

func TestRestartWithPersistedIdentity(t *testing.T) {
	dir := t.TempDir()
	idFile := filepath.Join(dir, "id.key")
	a := startNode(t, localConfig(testKey))

	cfg := localConfig(testKey)
	cfg.IdentityFile = idFile
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := b.Addrs()[0]
	if err := a.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	id := b.ID()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "a to see b leave", func() bool { return len(a.Peers()) == 0 })

	// Same identity file, same port: a's reconnect loop finds b again.
	port, _ := addr.ValueForProtocol(ma.P_TCP)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/" + port}
	b2 := startNode(t, cfg)
	if b2.ID() != id {
		t.Fatalf("restarted with id %s, want %s", b2.ID(), id)
	}
	if err := a.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if a.Peers()[0] != id {
		t.Fatalf("a is connected to %v", a.Peers())
	}
}

func TestWebSocketOnly(t *testing.T) {
	mk := func() *Node {
		cfg := localConfig(testKey)
		cfg.ListenAddrs = nil
		cfg.Libp2pOptions = []libp2p.Option{libp2p.Transport(websocket.New)}
		return startNode(t, cfg)
	}
	a, b := mk(), mk()
	var wsAddr bool
	for _, addr := range a.Addrs() {
		if _, err := addr.ValueForProtocol(ma.P_WS); err == nil {
			wsAddr = true
		}
	}
	if !wsAddr {
		t.Fatalf("no WebSocket listen address in %v", a.Addrs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.ConnectPeer(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	got := make(chan map[string]any, 1)
	if _, err := a.Subscribe("t", func(m map[string]any) { got <- m }); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "subscription", func() bool { return len(b.PubSub().ListPeers("t")) == 1 })
	if err := b.Broadcast(ctx, "t", map[string]any{"via": "ws"}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m["via"] != "ws" {
			t.Fatalf("got %v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message over WebSocket")
	}
}

func TestCloseStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ns := make([]*Node, 3)
	for i := range ns {
		n, err := New(localConfig(testKey))
		if err != nil {
			t.Fatal(err)
		}
		ns[i] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 1; i < 3; i++ {
		if err := ns[0].Connect(ctx, ns[i].Addrs()[0]); err != nil {
			t.Fatal(err)
		}
	}
	stop := ns[0].OnPeer(func(PeerEvent) {})
	defer stop()
	if _, err := ns[1].Subscribe("t", func(map[string]any) {}); err != nil {
		t.Fatal(err)
	}
	if err := ns[0].Broadcast(ctx, "t", map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
	}
}

// A broadcast right after WaitPeers reaches the subscriptions the peer had
// when it connected: a peer joins only once its pub/sub hello arrived.
func TestBroadcastRightAfterWaitPeers(t *testing.T) {
	for round := range 10 {
		a := startNode(t, localConfig(testKey))
		b := startNode(t, localConfig(testKey))
		got := make(chan map[string]any, 1)
		if _, err := b.Subscribe("chat", func(m map[string]any) { got <- m }); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.Connect(ctx, b.Addrs()[0]); err != nil {
			t.Fatal(err)
		}
		if err := a.WaitPeers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := a.Broadcast(ctx, "chat", map[string]any{"round": round}); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the broadcast right after WaitPeers was lost", round)
		}
		closeNode(t, a)
		closeNode(t, b)
	}
}

// The one-liners for request/reply and send: a responder's error comes
// back as an error; Send reaches one node only.
func TestRequestHandleSend(t *testing.T) {
	ns := startMesh(t, 3, "request handle send")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := ns[0].Request(ctx, "svc", map[string]any{}); !errors.Is(err, pubsub.ErrNoResponders) {
		t.Fatalf("no responders: %v", err)
	}
	if _, err := ns[1].Handle("svc", func(req map[string]any) (map[string]any, error) {
		if req["fail"] == true {
			return nil, errors.New("refused")
		}
		return map[string]any{"echo": req["x"]}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ns[1].Handle("nil", nil); !errors.Is(err, pubsub.ErrConfig) {
		t.Fatalf("nil handler: %v", err)
	}
	if err := ns[0].PubSub().WaitResponders(ctx, "svc", 1); err != nil {
		t.Fatal(err)
	}
	resp, err := ns[0].Request(ctx, "svc", map[string]any{"x": "y"})
	if err != nil || resp["echo"] != "y" {
		t.Fatalf("reply %v, %v", resp, err)
	}
	if _, err := ns[0].Request(ctx, "svc", map[string]any{"fail": true}); !errors.Is(err, pubsub.ErrRemote) {
		t.Fatalf("responder error: %v", err)
	}

	got := [2]chan map[string]any{make(chan map[string]any, 4), make(chan map[string]any, 4)}
	for i, n := range ns[1:] {
		if _, err := n.Subscribe("direct", func(m map[string]any) { got[i] <- m }); err != nil {
			t.Fatal(err)
		}
	}
	waitSubscribers(t, ns[0], "direct", 2)
	if err := ns[0].Send(ctx, ns[2].ID(), "direct", map[string]any{"to": "c"}); err != nil {
		t.Fatal(err)
	}
	// Then one to b: had c's gone to b as well, it would have been on the
	// same stream ahead of b's own, and b's first message.
	if err := ns[0].Send(ctx, ns[1].ID(), "direct", map[string]any{"to": "b"}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"b", "c"} {
		select {
		case m := <-got[i]:
			if m["to"] != want {
				t.Fatalf("node %d got a message for %v", i+1, m["to"])
			}
		case <-ctx.Done():
			t.Fatalf("node %d got nothing", i+1)
		}
	}
}
