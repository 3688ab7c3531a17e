package netns_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }

func TestOnlyLoopback(t *testing.T) {
	netns.Require(t)
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != "lo" {
		t.Fatalf("interfaces = %v, want only lo", ifs)
	}
	const want = net.FlagUp | net.FlagLoopback | net.FlagMulticast
	if ifs[0].Flags&want != want {
		t.Fatalf("lo flags = %v, want %v", ifs[0].Flags, want)
	}
	if !netns.OnlyLoopback() {
		t.Fatal("OnlyLoopback() = false with only lo")
	}
}

func TestMulticastOnLoopback(t *testing.T) {
	netns.Require(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	group := net.IPv4(224, 0, 0, 251)
	l, err := net.ListenMulticastUDP("udp4", lo, &net.UDPAddr{IP: group}) // port 0: a random high port
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.LocalAddr().(*net.UDPAddr).Port

	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: group, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte("hello group")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	l.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, from, err := l.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no multicast packet on lo (port %d): %v", port, err)
	}
	if !bytes.Equal(buf[:n], msg) {
		t.Fatalf("got %q from %v, want %q", buf[:n], from, msg)
	}
}

func TestOutsideUnreachable(t *testing.T) {
	netns.Require(t)
	for _, addr := range []string{"10.255.255.1:9", "192.0.2.1:9", "[2001:db8::1]:9"} {
		for _, network := range []string{"udp", "tcp"} {
			c, err := net.DialTimeout(network, addr, time.Second)
			if err == nil {
				c.Close()
				t.Errorf("%s %s: dial succeeded, want network is unreachable", network, addr)
				continue
			}
			if !errors.Is(err, syscall.ENETUNREACH) {
				t.Errorf("%s %s: %v, want network is unreachable", network, addr, err)
			}
		}
	}
}

func TestIsolated(t *testing.T) {
	netns.Require(t)
	if !netns.Isolated() {
		t.Fatal("Require passed but Isolated() is false")
	}
}
