package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/sys/unix"

	"github.com/reflectmesh/reflect/internal/netns"
)

// tcpEnd is the kernel's view of one end of a TCP connection of this
// process.
type tcpEnd struct {
	local, remote                     int // ports
	idle, interval, count, userMillis int
}

// tcpEnds lists this process's TCP sockets connected to or from port,
// read with getsockopt on the process's own descriptors.
func tcpEnds(t *testing.T, port int) []tcpEnd {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var ends []tcpEnd
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			continue
		}
		peer, err := unix.Getpeername(fd)
		if err != nil {
			continue // a listener, or not connected
		}
		local, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		lp, rp := inetPort(local), inetPort(peer)
		if lp != port && rp != port {
			continue
		}
		end := tcpEnd{local: lp, remote: rp}
		for _, o := range []struct {
			opt int
			dst *int
		}{{unix.TCP_KEEPIDLE, &end.idle}, {unix.TCP_KEEPINTVL, &end.interval}, {unix.TCP_KEEPCNT, &end.count}, {unix.TCP_USER_TIMEOUT, &end.userMillis}} {
			if *o.dst, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, o.opt); err != nil {
				t.Fatalf("fd %d: getsockopt %d: %v", fd, o.opt, err)
			}
		}
		ends = append(ends, end)
	}
	return ends
}

func inetPort(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return -1
}

func tcpPort(t *testing.T, n *Node) int {
	t.Helper()
	p, err := n.Addrs()[0].ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Both ends of a connection on the node's TCP transport carry the kernel's
// keepalive, set after libp2p's own 30 s, and a silent cut is noticed by
// both nodes with yamux pinging no more.
func TestKernelKeepaliveNoticesSilentCut(t *testing.T) {
	requireNft(t)
	cfg := localConfig(testKey)
	cfg.KeepAlive, cfg.WriteTimeout = time.Second, 2*time.Second
	cfg.ReconnectMin, cfg.ReconnectMax = time.Second, time.Second
	a, b := startNode(t, cfg), startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if err := waitNeighbours(ctx, a, 1); err != nil {
		t.Fatal(err)
	}
	if err := waitNeighbours(ctx, b, 1); err != nil {
		t.Fatal(err)
	}
	pa, pb := tcpPort(t, a), tcpPort(t, b)

	// a dialled b: one end on b's listening port (accepted), one end
	// dialling to it (dialled). Each gets the same options.
	want := newTCPAlive(cfg.KeepAlive, cfg.WriteTimeout, nil)
	ends := tcpEnds(t, pb)
	var dialled, accepted int
	for _, e := range ends {
		if e.idle != int(want.idle/time.Second) || e.interval != int(want.interval/time.Second) || e.count != want.count || e.userMillis != int(want.userTimeout.Milliseconds()) {
			t.Errorf("socket %d→%d: keepalive idle %d s, interval %d s, count %d, user timeout %d ms; want %v, %v, %d, %v",
				e.local, e.remote, e.idle, e.interval, e.count, e.userMillis, want.idle, want.interval, want.count, want.userTimeout)
		}
		if e.local == pb {
			accepted++
		} else {
			dialled++
		}
	}
	if accepted == 0 || dialled == 0 {
		t.Fatalf("found %d accepted and %d dialled sockets on port %d, want both: %+v", accepted, dialled, pb, ends)
	}

	cutPorts(t, "reflectcut", pa, pb)
	cut := time.Now()

	// The kernel drops the connection when the peer has been silent for
	// the user timeout (KeepAlive+max(WriteTimeout, 3 s), 4 s): allow
	// twice that.
	deadline := cut.Add(2 * want.userTimeout)
	for a.Host().Network().Connectedness(b.ID()) == network.Connected || b.Host().Network().Connectedness(a.ID()) == network.Connected {
		if time.Now().After(deadline) {
			t.Fatalf("after %v the cut link is still connected (a→b %v, b→a %v)", time.Since(cut).Round(time.Millisecond),
				a.Host().Network().Connectedness(b.ID()), b.Host().Network().Connectedness(a.ID()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("silent cut noticed by both ends after %v (user timeout %v)", time.Since(cut).Round(time.Millisecond), want.userTimeout)
}

// requireNft skips the test (fails it where namespaces are required)
// unless it runs in a network namespace with nft at hand.
func requireNft(t *testing.T) {
	t.Helper()
	netns.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		if netns.Required() {
			t.Fatal("nft not in PATH (apt-get install nftables)")
		}
		t.Skip("nft not in PATH")
	}
}

// cutPorts drops every packet to and from the given TCP ports, as when a
// cable is pulled, until the test ends. They are dropped on the way in:
// the sender's kernel counts them sent, and waits for their
// acknowledgement (dropped on the way out, they would stay queued).
func cutPorts(t *testing.T, table string, ports ...int) {
	t.Helper()
	set := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ports)), ", "), "[]")
	rules := fmt.Sprintf(`table inet %[1]s {
	chain in {
		type filter hook input priority 0;
		tcp sport { %[2]s } drop
		tcp dport { %[2]s } drop
	}
}`, table, set)
	nft := exec.Command("nft", "-f", "-")
	nft.Stdin = strings.NewReader(rules)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", table).Run() })
}

// Data sent down a link that went silent stops the kernel's keepalive,
// and the kernel declares the link dead only the user timeout after the
// data: silent finds it once the peer has been silent for the user
// timeout, as the kernel does with an idle link, and the membership's
// sweep closes it (closeSilent).
func TestSilentLinkWithData(t *testing.T) {
	requireNft(t)
	alive := newTCPAlive(time.Second, 2*time.Second, nil) // user timeout 4 s
	alive.conns = newTCPConns(alive.userTimeout)
	limit := alive.userTimeout
	l, err := manet.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan manet.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	dialled, err := manet.Dial(l.Multiaddr())
	if err != nil {
		t.Fatal(err)
	}
	defer dialled.Close()
	server := <-accepted
	defer server.Close()
	for _, c := range []manet.Conn{dialled, server} {
		if err := alive.apply(c); err != nil {
			t.Fatal(err)
		}
	}
	alive.conns.add(dialled)
	// A round trip, then silence: the keepalive's probes are answered.
	if _, err := dialled.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(limit / 2)
	if got := silent(alive.conns, []manet.Conn{dialled}); len(got) != 0 {
		t.Fatal("a link whose probes are answered found silent")
	}
	// Data one way for longer than the user timeout: the dialler sends
	// nothing, so no acknowledgement comes to it, yet it hears the peer.
	go func() { _, _ = io.Copy(io.Discard, dialled) }()
	for end := time.Now().Add(limit + time.Second); time.Now().Before(end); {
		if _, err := server.Write([]byte("news")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := silent(alive.conns, []manet.Conn{dialled}); len(got) != 0 {
		h, _ := lastHeard(dialled.(tcpConn))
		t.Fatalf("a link receiving data found silent (last heard from %v ago)", h)
	}

	port := func(c manet.Conn) int { return c.LocalAddr().(*net.TCPAddr).Port }
	cutPorts(t, "reflectsilent", port(dialled), port(server))
	cut := time.Now()
	// Before the kernel's verdict on the idle link, the dialler sends:
	// the data waits for an acknowledgement that never comes, and the
	// kernel would drop the link at about cut + 2×limit − 1 s.
	time.Sleep(limit - time.Second)
	if _, err := dialled.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	for len(silent(alive.conns, []manet.Conn{dialled})) == 0 {
		if time.Since(cut) > limit+limit/2 {
			h, err := lastHeard(dialled.(tcpConn))
			t.Fatalf("the link not found silent %v after the cut (user timeout %v; last heard from %v ago, %v)", time.Since(cut), limit, h, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	at := time.Since(cut)
	if _, err := lastHeard(dialled.(tcpConn)); err != nil {
		t.Fatalf("the kernel had closed the link %v after the cut, before silent found it: %v", at, err)
	}
	t.Logf("silent link found %v after the cut (user timeout %v; the kernel would wait until data sent %v after the cut had gone unacknowledged that long)", at.Round(time.Millisecond), limit, limit-time.Second)
	dialled.Close()
	silent(alive.conns, []manet.Conn{dialled})
	if n := len(alive.conns.by); n != 0 {
		t.Errorf("%d connections recorded after the only one closed", n)
	}
}
