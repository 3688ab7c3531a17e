package node

import (
	"context"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// groupListener counts the packets that reach mDNS's group of one family
// on ifi from the address from, beside any responder on port 5353.
func groupListener(t *testing.T, network string, group *net.UDPAddr, ifi *net.Interface, from net.IP) *atomic.Int64 {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	addr := "0.0.0.0:5353"
	if network == "udp6" {
		addr = "[::]:5353"
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		t.Fatalf("%s: %v", network, err)
	}
	t.Cleanup(func() { pc.Close() })
	if network == "udp4" {
		err = ipv4.NewPacketConn(pc).JoinGroup(ifi, group)
	} else {
		err = ipv6.NewPacketConn(pc).JoinGroup(ifi, group)
	}
	if err != nil {
		t.Fatalf("%s: join %v on %s: %v", network, group, ifi.Name, err)
	}
	var n atomic.Int64
	go func() {
		buf := make([]byte, mdnsReadBuffer)
		for {
			_, src, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if u, ok := src.(*net.UDPAddr); ok && u.IP.Equal(from) {
				n.Add(1)
			}
		}
	}()
	return &n
}

// vethPair adds a veth pair, both ends up with multicast, each with its
// addresses (no duplicate address detection), removed when t ends, and
// returns the first end. Listeners tell the first end's own questions
// (multicast loopback) from its peer's by their source address.
func vethPair(t *testing.T, name, peerName string, addrs, peerAddrs []string) *net.Interface {
	t.Helper()
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("link", "add", name, "type", "veth", "peer", "name", peerName)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
	for dev, as := range map[string][]string{name: addrs, peerName: peerAddrs} {
		ip("link", "set", dev, "addrgenmode", "none")
		for _, a := range as {
			if strings.Contains(a, ":") {
				ip("addr", "add", a, "dev", dev, "nodad")
			} else {
				ip("addr", "add", a, "dev", dev)
			}
		}
		ip("link", "set", dev, "up", "multicast", "on")
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return ifi
}

// A question goes out in one family per interface: IPv4 where the
// interface has an IPv4 address, else IPv6. Responders listen on both, so
// each receives and parses it once.
func TestMDNSAsksInOneFamily(t *testing.T) {
	netns.Require(t)
	if _, err := exec.LookPath("ip"); err != nil {
		if netns.Required() {
			t.Fatal("ip not in PATH (apt-get install iproute2)")
		}
		t.Skip("ip not in PATH")
	}
	dual := vethPair(t, "rfdual", "rfdualpeer", []string{"10.77.0.1/24", "fe80::77/64"}, []string{"10.77.0.2/24", "fe80::78/64"})
	only6 := vethPair(t, "rf6only", "rf6onlypeer", []string{"fe80::66/64"}, []string{"fe80::67/64"})
	if !hasIPv4(dual) || hasIPv4(only6) {
		t.Fatalf("hasIPv4: %v on %s, %v on %s; want true, false", hasIPv4(dual), dual.Name, hasIPv4(only6), only6.Name)
	}
	v4dual := groupListener(t, "udp4", mdnsGroup4, dual, net.ParseIP("10.77.0.1"))
	v6dual := groupListener(t, "udp6", mdnsGroup6, dual, net.ParseIP("fe80::77"))
	v6only := groupListener(t, "udp6", mdnsGroup6, only6, net.ParseIP("fe80::66"))

	ask, err := newMDNSAsker(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer ask.close()
	if ask.p4 == nil || ask.p6 == nil {
		t.Fatal("the asker needs both families here")
	}
	q, err := buildQuestion(testService, mdnsDomain, nil)
	if err != nil {
		t.Fatal(err)
	}
	const asks = 3
	for range asks {
		ask.send(q)
	}
	testutil.Eventually(t, 2*time.Second, "the questions", func() bool {
		return v4dual.Load() == asks && v6only.Load() == asks
	})
	time.Sleep(200 * time.Millisecond)
	if n4, n6, n6only := v4dual.Load(), v6dual.Load(), v6only.Load(); n4 != asks || n6 != 0 || n6only != asks {
		t.Errorf("questions received: IPv4 %d and IPv6 %d on the dual-stack interface, IPv6 %d on the IPv6-only one; want %d, 0, %d",
			n4, n6, n6only, asks, asks)
	}
}
