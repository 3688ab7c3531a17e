package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// fakeConn is the two addresses of a connection, for the gate.
type fakeConn struct{ local, remote ma.Multiaddr }

func (c fakeConn) LocalMultiaddr() ma.Multiaddr  { return c.local }
func (c fakeConn) RemoteMultiaddr() ma.Multiaddr { return c.remote }

func conn(remote string, port int) fakeConn {
	return fakeConn{ma.StringCast("/ip4/10.0.0.1/tcp/4001"), ma.StringCast(fmt.Sprintf("%s/tcp/%d", remote, port))}
}

// testGate is a gate with a clock the test moves.
func testGate(timeout time.Duration) (*handshakeGate, *counters, *time.Time) {
	var count counters
	g := newHandshakeGate(timeout, &count, newWarnLimiter(slog.New(slog.DiscardHandler), warnEvery))
	now := time.Unix(1000, 0)
	g.now = func() time.Time { return now }
	return g, &count, &now
}

func TestHandshakeGateCapsUnfinishedHandshakesPerAddress(t *testing.T) {
	g, count, now := testGate(3 * time.Second)
	port := 1000
	accept := func(remote string) bool { port++; return g.InterceptAccept(conn(remote, port)) }

	for i := range maxPendingPerSource {
		if !accept("/ip4/192.168.1.66") {
			t.Fatalf("connection %d from a private address refused below the cap", i+1)
		}
	}
	if accept("/ip4/192.168.1.66") {
		t.Fatal("a private address got past the cap: private ranges must not be exempt")
	}
	for _, other := range []string{"/ip4/192.168.1.67", "/ip4/127.0.0.1", "/ip6/fe80::1"} {
		if !accept(other) {
			t.Fatalf("%s refused because of another address's handshakes", other)
		}
	}
	// Loopback is capped too.
	for range maxPendingPerSource - 1 {
		accept("/ip4/127.0.0.1")
	}
	if accept("/ip4/127.0.0.1") {
		t.Fatal("loopback got past the cap")
	}
	// An IPv6 /64 is one source: a LAN host can take any address of it.
	for i := 2; i <= maxPendingPerSource; i++ {
		if !accept(fmt.Sprintf("/ip6/fe80::%x", i)) {
			t.Fatalf("IPv6 connection %d refused below the cap", i)
		}
	}
	if accept("/ip6/fe80::ffff") || !accept("/ip6/fe80:0:0:1::1") {
		t.Fatal("IPv6 sources are not /64 blocks")
	}
	if got := count.handshakesRefused.Load(); got != 3 {
		t.Fatalf("refused %d, want 3", got)
	}
	if got := g.pendingCount(); got != 3*maxPendingPerSource+2 {
		t.Fatalf("pending %d, want %d", got, 3*maxPendingPerSource+2)
	}

	// A secured connection frees its slot at once.
	c := conn("/ip4/192.168.1.66", 1001)
	if !g.InterceptSecured(network.DirInbound, "peer", c) {
		t.Fatal("secured connection refused")
	}
	if !accept("/ip4/192.168.1.66") || accept("/ip4/192.168.1.66") {
		t.Fatal("a secured connection did not free exactly one slot")
	}
	// Failed handshakes free theirs when libp2p's accept timeout has
	// closed them (plus the slack).
	*now = now.Add(3*time.Second + pendingSlack)
	for i := range maxPendingPerSource {
		if !accept("/ip4/192.168.1.66") {
			t.Fatalf("connection %d refused after the old ones expired", i+1)
		}
	}
	if got := g.pendingCount(); got != maxPendingPerSource {
		t.Fatalf("pending %d after expiry, want %d", got, maxPendingPerSource)
	}
}

func TestHandshakeGateTotalIsBounded(t *testing.T) {
	g, count, _ := testGate(time.Second)
	refused := 0
	for i := range maxPendingTotal + 100 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !g.InterceptAccept(conn("/ip4/"+addr.String(), 1)) {
			refused++
		}
	}
	if refused != 100 || g.pendingCount() != maxPendingTotal || count.handshakesRefused.Load() != 100 {
		t.Fatalf("refused %d, pending %d; want 100 refused, %d pending", refused, g.pendingCount(), maxPendingTotal)
	}
}

// refuser is a caller's gater that refuses one peer.
type refuser struct{ bad peer.ID }

func (r refuser) InterceptPeerDial(p peer.ID) bool                                { return p != r.bad }
func (r refuser) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool                { return p != r.bad }
func (r refuser) InterceptAccept(network.ConnMultiaddrs) bool                     { return true }
func (r refuser) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
func (r refuser) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return p != r.bad
}

// The caller's own gater still decides, behind the handshake gate (libp2p
// takes one gater only).
func TestCallersConnectionGaterIsKept(t *testing.T) {
	netns.Require(t)
	bad := startNode(t, localConfig(testKey))
	good := startNode(t, localConfig(testKey))
	cfg := localConfig(testKey)
	cfg.Libp2pOptions = []libp2p.Option{libp2p.ConnectionGater(refuser{bad.ID()})}
	a := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Connect(ctx, good.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(ctx, bad.Addrs()[0]); err == nil {
		t.Fatal("the caller's gater was bypassed")
	}
}

// idleConns opens count TCP connections from src to dst that never send a
// byte, and closes them at the end of the test. It returns how many the
// kernel established (the node may close them at once).
func idleConns(t *testing.T, src string, dst net.Addr, count int) int {
	t.Helper()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	for range count {
		c, err := d.Dial("tcp", dst.String())
		if err != nil {
			t.Fatalf("stranger's dial: %v", err)
		}
		conns = append(conns, c)
	}
	return len(conns)
}

func tcpAddr(t *testing.T, n *Node) net.Addr {
	t.Helper()
	for _, a := range n.Host().Addrs() {
		if na, err := manet.ToNetAddr(a); err == nil {
			if _, ok := na.(*net.TCPAddr); ok {
				return na
			}
		}
	}
	t.Fatalf("%s has no TCP address", n.ID())
	return nil
}

func transientInbound(n *Node) int {
	var conns int
	_ = n.Host().Network().ResourceManager().ViewTransient(func(s network.ResourceScope) error {
		conns = s.Stat().NumConnsInbound
		return nil
	})
	return conns
}

// Attack 9: a stranger without the key holds idle TCP connections to a
// node. Before the fix, about 80 of them (the resource manager's transient
// inbound limit, which private and loopback addresses did not escape per
// address) locked every new inbound connection out for as long as the
// stranger kept going; now each of its addresses holds at most 8
// unfinished handshakes, and members, several on one address, still join.
func TestStrangerIdleConnectionsDoNotLockOut(t *testing.T) {
	netns.Require(t)
	a := startNode(t, localConfig(testKey))
	dst := tcpAddr(t, a)
	g0 := runtime.NumGoroutine()

	// Three stranger addresses, 100 connections each: more than the
	// transient limit from each.
	strangers := []string{"127.0.0.7", "127.0.0.8", "127.0.0.9"}
	for _, src := range strangers {
		idleConns(t, src, dst, 100)
	}
	// Every refused connection is counted before the honest ones start.
	want := uint64(len(strangers) * (100 - maxPendingPerSource))
	testutil.Eventually(t, 5*time.Second, "the strangers' connections to be refused", func() bool {
		return a.Stats().HandshakesRefused >= want
	})
	st := a.Stats()
	held := transientInbound(a)
	t.Logf("3 stranger addresses × 100 idle connections: %d refused, %d pending, %d transient inbound, goroutines %d → %d",
		st.HandshakesRefused, st.HandshakesPending, held, g0, runtime.NumGoroutine())
	if max := len(strangers) * maxPendingPerSource; st.HandshakesPending > max || held > max {
		t.Fatalf("strangers hold %d pending handshakes (%d transient inbound), want ≤ %d", st.HandshakesPending, held, max)
	}
	if grew := runtime.NumGoroutine() - g0; grew > 3*len(strangers)*maxPendingPerSource+20 {
		t.Errorf("goroutines grew by %d", grew)
	}

	// Ten members on one address (127.0.0.1) join at once.
	members := make([]*Node, 10)
	for i := range members {
		members[i] = startNode(t, localConfig(testKey))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(members))
	for i, m := range members {
		wg.Go(func() { errs[i] = m.Connect(ctx, a.Addrs()[0]) })
	}
	wg.Wait()
	for i, err := range errs {
		// Connect may lose a race with the cap; its redial loop goes on.
		if err != nil {
			t.Logf("member %d: first dial: %v", i, err)
		}
	}
	if err := a.WaitPeers(ctx, len(members)); err != nil {
		t.Fatalf("members could not join during the attack: %v", err)
	}
}

// An inbound connection that never finishes its handshakes is closed after
// Config.HandshakeTimeout (libp2p's own accept timeout is 15 s).
func TestHandshakeTimeoutClosesIdleConnections(t *testing.T) {
	netns.Require(t)
	cfg := localConfig(testKey)
	cfg.HandshakeTimeout = 300 * time.Millisecond
	a := startNode(t, cfg)
	c, err := net.Dial("tcp", tcpAddr(t, a).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Five seconds: well past the configured timeout, well short of 15 s.
	// The node sends its half of the handshake first; then it must close.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the node kept an idle, unauthenticated connection open past its handshake timeout")
	}
	testutil.Eventually(t, 5*time.Second, "the pending handshake to be released", func() bool {
		return transientInbound(a) == 0
	})
}
