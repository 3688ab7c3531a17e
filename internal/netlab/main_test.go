//go:build linux

package netlab_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reflectmesh/reflect/internal/netlab"
	"github.com/reflectmesh/reflect/internal/netns"
)

func TestMain(m *testing.M) {
	code := netns.RunTests(m)
	if code == 0 && !*agentFlag && !*panicFlag {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	agentFlag = flag.Bool("netlab.agent", false, "run TestHelperAgent as the agent on a lab host")
	panicFlag = flag.Bool("netlab.panic", false, "run TestHelperPanic: build a lab, then panic")
)

// TestHelperAgent is the program the tests run on lab hosts: the test binary
// itself, re-executed with -netlab.agent. It reads commands on stdin and
// answers one line each:
//
//	serve-tcp PORT          echo server            -> ok | fail ...
//	dial ADDR MILLIS        TCP round trip         -> ok | fail ...
//	listen-udp PORT         print "udp PAYLOAD" for each datagram
//	join GROUP:PORT         the same for a multicast group on veth0
//	send-udp ADDR PAYLOAD   one datagram           -> ok | fail ...
//	stderr TEXT             write TEXT to stderr   -> ok
//	isolated                                       -> ok true|false
func TestHelperAgent(t *testing.T) {
	if !*agentFlag {
		t.Skip("agent run on lab hosts by the other tests")
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	receive := func(c net.PacketConn) {
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			say("udp %s", buf[:n])
		}
	}
	result := func(err error) {
		if err != nil {
			say("fail %v", err)
		} else {
			say("ok")
		}
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "serve-tcp":
			l, err := net.Listen("tcp", ":"+f[1])
			if err == nil {
				go func() {
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						go func() { io.Copy(c, c); c.Close() }()
					}
				}()
			}
			result(err)
		case "dial":
			ms, _ := strconv.Atoi(f[2])
			result(roundTrip(f[1], time.Duration(ms)*time.Millisecond))
		case "listen-udp":
			c, err := net.ListenPacket("udp4", ":"+f[1])
			if err == nil {
				go receive(c)
			}
			result(err)
		case "join":
			var c *net.UDPConn
			ifi, err := net.InterfaceByName("veth0")
			if err == nil {
				var addr *net.UDPAddr
				if addr, err = net.ResolveUDPAddr("udp4", f[1]); err == nil {
					c, err = net.ListenMulticastUDP("udp4", ifi, addr)
				}
			}
			if err == nil {
				go receive(c)
			}
			result(err)
		case "send-udp":
			c, err := net.Dial("udp4", f[1])
			if err == nil {
				_, err = c.Write([]byte(f[2]))
				c.Close()
			}
			result(err)
		case "stderr":
			fmt.Fprintln(os.Stderr, strings.Join(f[1:], " "))
			result(nil)
		case "isolated":
			say("ok %v", netns.Isolated())
		default:
			say("fail unknown command %q", f[0])
		}
	}
}

func roundTrip(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo returned %q", line)
	}
	return nil
}

// agent is TestHelperAgent running on a lab host.
type agent struct {
	t *testing.T
	p *netlab.Proc
}

func startAgent(t *testing.T, h *netlab.Host) *agent {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(t.Context(), exe, "-test.run=^TestHelperAgent$", "-netlab.agent")
	// No one-second pause at exit under the race detector.
	cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	p, err := h.StartCmd(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{t, p}
}

// do sends a command and returns the answer: "ok..." or "fail ...".
func (a *agent) do(format string, args ...any) string {
	a.t.Helper()
	cmd := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(a.p.Stdin, cmd); err != nil {
		a.t.Fatalf("%s: sending %q: %v", a.p, cmd, err)
	}
	ctx, cancel := context.WithTimeout(a.t.Context(), 10*time.Second)
	defer cancel()
	line, err := a.p.WaitLine(ctx, func(l string) bool { return l == "ok" || strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "fail ") })
	if err != nil {
		a.t.Fatalf("%s: %q: %v", a.p, cmd, err)
	}
	return line
}

// must runs a command that has to succeed.
func (a *agent) must(format string, args ...any) {
	a.t.Helper()
	if r := a.do(format, args...); !strings.HasPrefix(r, "ok") {
		a.t.Fatalf("%s: %q: %s", a.p, fmt.Sprintf(format, args...), r)
	}
}

// received reports whether the datagram payload arrives within d.
func (a *agent) received(payload string, d time.Duration) bool {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.t.Context(), d)
	defer cancel()
	_, err := a.p.WaitLine(ctx, func(l string) bool { return l == "udp "+payload })
	return err == nil
}
