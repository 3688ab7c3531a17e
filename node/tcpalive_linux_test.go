package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
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
	netns.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		if netns.Required() {
			t.Fatal("nft not in PATH (apt-get install nftables)")
		}
		t.Skip("nft not in PATH")
	}
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

	// Drop every packet to and from both nodes' ports: nothing is sent back,
	// as when a cable is pulled.
	rules := fmt.Sprintf(`table inet reflectcut {
	chain out {
		type filter hook output priority 0;
		tcp sport { %[1]d, %[2]d } drop
		tcp dport { %[1]d, %[2]d } drop
	}
}`, pa, pb)
	nft := exec.Command("nft", "-f", "-")
	nft.Stdin = strings.NewReader(rules)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", "reflectcut").Run() })
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
