package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// logBuf collects a logger's output (testutil.LogBuffer), with the
// searches the tests below need.
type logBuf struct{ testutil.LogBuffer }

// lines returns the lines holding every one of subs.
func (b *logBuf) lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// waitLine waits until a line holds every one of subs, and returns it.
func (b *logBuf) waitLine(t *testing.T, within time.Duration, subs ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(b.lines(subs...)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in %v; log:\n%s", subs, within, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b.lines(subs...)[0]
}

// captureLogger returns a logger writing every level as text to a logBuf.
func captureLogger() (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// Not parallel: it replaces slog.Default.
func TestDefaultLoggerSendsWarningsToSlogDefault(t *testing.T) {
	log, buf := captureLogger()
	old := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(old)

	cfg := localConfig("short") // weak: New warns
	n := startNode(t, cfg)
	closeNode(t, n)
	buf.waitLine(t, time.Second, "level=WARN", "the secret is short")
	if below := append(buf.lines("level=INFO"), buf.lines("level=DEBUG")...); len(below) > 0 {
		t.Fatalf("records below Warn reached slog.Default by default:\n%s", strings.Join(below, "\n"))
	}
	if n.Logger().Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("the default logger is enabled for Info")
	}
}

// diagConfig is localConfig with a short handshake timeout and a captured
// log.
func diagConfig(key string) (Config, *logBuf) {
	cfg := localConfig(key)
	cfg.HandshakeTimeout = 300 * time.Millisecond
	cfg.DialTimeout = time.Second
	log, buf := captureLogger()
	cfg.Logger = log
	return cfg, buf
}

// The failed handshakes are named in the log on both sides, and counted
// (Stats.HandshakesFailed, reflect_node_handshakes_failed_total): a's
// outbound ones and b's inbound ones, before b dials a in turn.
func TestDifferentSecretIsNamedBothWays(t *testing.T) {
	cfgA, logA := diagConfig(testKey)
	cfgB, logB := diagConfig(testKey + "-other")
	regA := prometheus.NewRegistry()
	cfgA.Metrics = regA
	a, b := startNode(t, cfgA), startNode(t, cfgB)

	for i, dir := range []struct {
		from, to       *Node
		fromLog, toLog *logBuf
	}{{a, b, logA, logB}, {b, a, logB, logA}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := dir.from.Connect(ctx, dir.to.Addrs()[0])
		cancel()
		if err == nil || !strings.Contains(err.Error(), "different secret") {
			t.Fatalf("Connect to a node with another secret: %v, want an error naming a different secret", err)
		}
		if i == 0 {
			// Nobody has dialled a: its count is of its dials.
			if n := a.Stats().HandshakesFailed; n == 0 {
				t.Fatalf("a's failed dial not counted: HandshakesFailed %d", n)
			}
			// b has dialled nobody: its count is of inbound connections,
			// counted when they expire.
			testutil.Eventually(t, 10*time.Second, "b counts the failed inbound handshake", func() bool {
				return b.Stats().HandshakesFailed > 0
			})
		}
		// The dialled node names the remote address of the connection.
		line := dir.toLog.waitLine(t, 10*time.Second, "level=WARN", "different secret?", "remote=/ip4/127.0.0.1/tcp/")
		t.Logf("inbound:  %s", line)
		// The dialling node's redials (Connect keeps the peer) name the peer.
		line = dir.fromLog.waitLine(t, 10*time.Second, "level=WARN", "cannot connect to a bootstrap peer", "different secret?", "peer="+dir.to.ID().String())
		t.Logf("outbound: %s", line)
	}
	if len(a.Peers())+len(b.Peers()) != 0 {
		t.Fatal("nodes with different secrets joined")
	}
	if v, ok := testutil.MetricValue(t, regA, "reflect_node_handshakes_failed_total"); !ok || v == 0 {
		t.Fatalf("reflect_node_handshakes_failed_total = %v (present %v), want > 0", v, ok)
	}
}

// A healthy pair counts no failed handshake: not the dial by address only
// (the first connection learns the peer id and is dropped in Noise, on
// both sides), not anything before the pending entries expire.
func TestHandshakesFailedZeroWhenHealthy(t *testing.T) {
	cfg, _ := diagConfig(testKey)
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	a := startNode(t, cfg)
	cfg, _ = diagConfig(testKey)
	b := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.Addrs()[0]); err != nil { // no /p2p/: learnt on connect
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		if err := n.WaitPeers(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Every inbound connection has passed the handshakes or expired
	// (and would be counted by now).
	testutil.Eventually(t, 10*time.Second, "no handshake pending", func() bool {
		return a.Stats().HandshakesPending == 0 && b.Stats().HandshakesPending == 0
	})
	for _, n := range []*Node{a, b} {
		if st := n.Stats(); st.HandshakesFailed != 0 {
			t.Errorf("%s: HandshakesFailed %d on a healthy pair", n.ID(), st.HandshakesFailed)
		}
	}
	testutil.WantMetric(t, reg, 0, "reflect_node_handshakes_failed_total")
}

func TestBootstrapFailuresAreNamed(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// A port that accepts and then says nothing.
	silent, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	otherCfg, _ := diagConfig(testKey)
	other := startNode(t, otherCfg)
	wrongID, _ := newPlaceholder()
	cfg, buf := diagConfig(testKey)
	cfg.BootstrapPeers = []string{
		fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", closedPort, wrongID),
		fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", silent.Addr().(*net.TCPAddr).Port),
		other.Host().Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + wrongID.String())).String(),
	}
	// The first and third name one peer id at two addresses: its dials fail
	// with the reason of one of them. Give the third its own id.
	wrongID2, _ := newPlaceholder()
	cfg.BootstrapPeers[2] = other.Host().Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + wrongID2.String())).String()
	startNode(t, cfg)

	t.Logf("refused:  %s", buf.waitLine(t, 10*time.Second, "level=WARN", "refused the connection", "peer="+wrongID.String()))
	t.Logf("silent:   %s", buf.waitLine(t, 10*time.Second, "level=WARN", "timed out in the handshakes", fmt.Sprintf("/tcp/%d", silent.Addr().(*net.TCPAddr).Port)))
	t.Logf("other id: %s", buf.waitLine(t, 10*time.Second, "level=WARN", "answered with another peer id", "peer="+wrongID2.String(), "actual_peer="+other.ID().String()))
}

func TestAddressOnlyBootstrapFollowsARestart(t *testing.T) {
	cfgB, logB := diagConfig(testKey)
	b := startNode(t, cfgB)
	addr := b.Host().Addrs()[0] // /ip4/127.0.0.1/tcp/<port>
	cfgC, logC := diagConfig(testKey)
	cfgC.BootstrapPeers = []string{addr.String()}
	c := startNode(t, cfgC)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := c.Peers(); len(got) != 1 || got[0] != b.ID() {
		t.Fatalf("peers %v, want [%s]", got, b.ID())
	}
	// The probe that learnt b's id is not reported as a stranger by b.
	testutil.Eventually(t, 10*time.Second, "b's handshakes expire", func() bool { return b.gate.pendingCount() == 0 })
	b.gate.sweep()
	if l := logB.lines("different secret?"); len(l) > 0 {
		t.Fatalf("the address-only dial was logged as a different secret:\n%s", strings.Join(l, "\n"))
	}

	// b restarts at the same address with a new identity.
	closeNode(t, b)
	cfgB2, _ := diagConfig(testKey)
	cfgB2.ListenAddrs = []string{addr.String()}
	b2 := startNode(t, cfgB2)
	if b2.ID() == b.ID() {
		t.Fatal("same id")
	}
	testutil.Eventually(t, 15*time.Second, "c finds the restarted bootstrap peer", func() bool {
		p := c.Peers()
		return len(p) == 1 && p[0] == b2.ID()
	})
	t.Logf("restart: %s", logC.waitLine(t, time.Second, "another node answers at a bootstrap address", "peer="+b2.ID().String()))
}

func TestConnectWithoutPeerID(t *testing.T) {
	cfgB, logB := diagConfig(testKey)
	a, b := startNode(t, localConfig(testKey)), startNode(t, cfgB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.Host().Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := a.Peers(); len(got) != 1 || got[0] != b.ID() {
		t.Fatalf("peers %v, want [%s]", got, b.ID())
	}
	testutil.Eventually(t, 10*time.Second, "b's handshakes expire", func() bool { return b.gate.pendingCount() == 0 })
	b.gate.sweep()
	if l := logB.lines("different secret?"); len(l) > 0 {
		t.Fatalf("the address-only dial was logged as a different secret:\n%s", strings.Join(l, "\n"))
	}
	// Nobody at the address: the error says so.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port))
	l.Close()
	if err := a.Connect(ctx, free); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Connect to a closed port: %v", err)
	}
}

func TestWebSocketOnlyWithMDNSWarns(t *testing.T) {
	cfg, buf := diagConfig(testKey)
	cfg.ListenAddrs = nil
	cfg.DisableMDNS = false
	cfg.Libp2pOptions = []libp2p.Option{libp2p.Transport(websocket.New)}
	startNode(t, cfg)
	t.Logf("ws: %s", buf.waitLine(t, time.Second, "level=WARN", "does not advertise WebSocket (/ws) addresses"))

	cfg, buf = diagConfig(testKey)
	cfg.DisableMDNS = false
	startNode(t, cfg)
	if l := buf.lines("does not advertise"); len(l) > 0 {
		t.Fatalf("a TCP node warned: %s", l)
	}
}

// Every node of a mesh may be given one list of bootstrap addresses, its
// own among them: libp2p refuses to dial a listen address of its own
// (127.0.0.1 here), and another address of the node (127.0.0.2, also
// loopback, which libp2p does not know as its own) answers with its id.
func TestBootstrapListWithOwnAddress(t *testing.T) {
	b := startNode(t, localConfig(testKey))
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg, buf := diagConfig(testKey)
	cfg.ListenAddrs = []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port)}
	own := []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), fmt.Sprintf("/ip4/127.0.0.2/tcp/%d", port)}
	cfg.BootstrapPeers = append(own, b.Host().Addrs()[0].String())
	a := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the own addresses forgotten", func() bool { return a.Stats().Members == 1 })
	testutil.Eventually(t, 10*time.Second, "a's handshakes expire", func() bool { return a.gate.pendingCount() == 0 })
	a.gate.sweep()
	if l := append(buf.lines("different secret?"), buf.lines("cannot connect")...); len(l) > 0 {
		t.Fatalf("dialling its own address was logged as a failure:\n%s", strings.Join(l, "\n"))
	}
	if n := len(buf.lines("this node's own")); n != 2 {
		t.Fatalf("%d own addresses noticed, want 2:\n%s", n, buf)
	}
	for _, o := range own {
		if err := a.Connect(ctx, ma.StringCast(o)); !errors.Is(err, ErrConfig) {
			t.Fatalf("Connect to its own address %s: %v, want ErrConfig", o, err)
		}
	}
}

// A node given another's address without its id, when that node has
// dialled it already, takes the connection as it is: no probe, so nothing
// for the other to log.
func TestAddressOnlyConnectToAConnectedPeer(t *testing.T) {
	cfgB, logB := diagConfig(testKey)
	a, b := startNode(t, localConfig(testKey)), startNode(t, cfgB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx, a.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// a knows b's listen address once identify has run.
	testutil.Eventually(t, 10*time.Second, "a learns b's listen address", func() bool {
		return a.members.connectedAt(b.Host().Addrs()[:1]) == b.ID()
	})
	if err := a.Connect(ctx, b.Host().Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "b's handshakes expire", func() bool { return b.gate.pendingCount() == 0 })
	b.gate.sweep()
	if l := logB.lines("different secret?"); len(l) > 0 {
		t.Fatalf("an address-only Connect to a connected peer was logged as a different secret:\n%s", strings.Join(l, "\n"))
	}
	if got := a.Stats().Members; got != 1 {
		t.Fatalf("%d members, want 1", got)
	}
}
