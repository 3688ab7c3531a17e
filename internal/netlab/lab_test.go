//go:build linux

package netlab_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netlab"
)

// Timeouts for expected failures: long enough for a working path on a busy
// 2-core machine (a round trip takes well under a millisecond), short enough
// to keep the tests fast.
const (
	failDial = 300 * time.Millisecond
	silence  = 300 * time.Millisecond
)

const echoPort = 7000

func TestPartitionAndHeal(t *testing.T) {
	lab := netlab.New(t, 3)
	a1, a2, a3 := startAgent(t, lab.Host(1)), startAgent(t, lab.Host(2)), startAgent(t, lab.Host(3))
	a2.must("serve-tcp %d", echoPort)
	target := fmt.Sprintf("%s:%d", lab.Host(2).IP(), echoPort)
	a1.must("dial %s 2000", target)

	if err := lab.Partition([]int{1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	if r := a1.do("dial %s %d", target, failDial.Milliseconds()); !strings.HasPrefix(r, "fail") {
		t.Fatalf("across the partition: %s, want a failure", r)
	}
	a3.must("dial %s 2000", target) // same side

	if err := lab.Heal(); err != nil {
		t.Fatal(err)
	}
	a1.must("dial %s 2000", target)
}

// TestCutIsOneWay also shows that address resolution survives a cut: host 2
// has never talked to host 1, so its ARP request and host 1's reply cross the
// cut.
func TestCutIsOneWay(t *testing.T) {
	lab := netlab.New(t, 2)
	a1, a2 := startAgent(t, lab.Host(1)), startAgent(t, lab.Host(2))
	a1.must("listen-udp 7001")
	a2.must("listen-udp 7001")
	if err := lab.Cut(1, 2); err != nil {
		t.Fatal(err)
	}
	a1.must("send-udp %s:7001 one-to-two", lab.Host(2).IP())
	a2.must("send-udp %s:7001 two-to-one", lab.Host(1).IP())
	if !a1.received("two-to-one", 2*time.Second) {
		t.Error("2 -> 1 did not arrive; only 1 -> 2 is cut")
	}
	if a2.received("one-to-two", silence) {
		t.Error("1 -> 2 arrived through the cut")
	}
}

func TestLoss(t *testing.T) {
	lab := netlab.New(t, 2)
	a1, a2 := startAgent(t, lab.Host(1)), startAgent(t, lab.Host(2))
	a2.must("serve-tcp %d", echoPort)
	target := fmt.Sprintf("%s:%d", lab.Host(2).IP(), echoPort)

	if err := lab.Loss(2, 100); err != nil {
		t.Fatal(err)
	}
	if r := a1.do("dial %s %d", target, failDial.Milliseconds()); !strings.HasPrefix(r, "fail") {
		t.Fatalf("with 100%% loss: %s, want a failure", r)
	}

	// 50 % on the way in to host 2: about half of 200 datagrams arrive.
	if err := lab.Loss(2, 50); err != nil {
		t.Fatal(err)
	}
	a2.must("listen-udp 7001")
	const n = 200
	for i := range n {
		a1.must("send-udp %s:7001 d%d", lab.Host(2).IP(), i)
	}
	a1.must("send-udp %s:7001 d%d", lab.Host(2).IP(), n) // may be lost too: only a pause
	a2.received(fmt.Sprint("d", n), silence)
	got := strings.Count(a2.p.Stdout(), "udp d")
	if got < n/2-40 || got > n/2+40 {
		t.Errorf("50%% loss: %d of %d datagrams arrived", got, n)
	}
	t.Logf("50%% loss: %d of %d datagrams arrived", got, n)

	if err := lab.Loss(2, 0); err != nil {
		t.Fatal(err)
	}
	a1.must("dial %s 2000", target)
}

func TestLinkDownUp(t *testing.T) {
	lab := netlab.New(t, 2)
	a1, a2 := startAgent(t, lab.Host(1)), startAgent(t, lab.Host(2))
	a2.must("serve-tcp %d", echoPort)
	target := fmt.Sprintf("%s:%d", lab.Host(2).IP(), echoPort)
	a1.must("dial %s 2000", target)
	if err := lab.LinkDown(2); err != nil {
		t.Fatal(err)
	}
	if r := a1.do("dial %s %d", target, failDial.Milliseconds()); !strings.HasPrefix(r, "fail") {
		t.Fatalf("with host 2's link down: %s, want a failure", r)
	}
	if err := lab.LinkUp(2); err != nil {
		t.Fatal(err)
	}
	a1.must("dial %s 2000", target)
}

func TestMulticastCrossesBridge(t *testing.T) {
	lab := netlab.New(t, 3)
	a1, a3 := startAgent(t, lab.Host(1)), startAgent(t, lab.Host(3))
	a3.must("join 224.0.0.251:7002")
	a1.must("send-udp 224.0.0.251:7002 hello")
	if !a3.received("hello", 2*time.Second) {
		t.Fatal("multicast from host 1 did not reach host 3")
	}
	if err := lab.Partition([]int{1}, []int{3}); err != nil {
		t.Fatal(err)
	}
	a1.must("send-udp 224.0.0.251:7002 blocked")
	if a3.received("blocked", silence) {
		t.Fatal("multicast crossed the partition")
	}
}

func TestAddHost(t *testing.T) {
	lab := netlab.New(t, 2)
	h := lab.AddHost()
	if h.Index() != 3 || h != lab.Host(3) || len(lab.Hosts()) != 3 {
		t.Fatalf("late joiner is %v (index %d), hosts %v", h, h.Index(), lab.Hosts())
	}
	want := lab.Subnet().Addr().As4()
	want[3] = 3
	if h.IP().As4() != want {
		t.Fatalf("late joiner's IP %v, want %v", h.IP(), want)
	}
	// Every host knows every other's address statically, the late joiner
	// included (permanent neighbour entries: no shared ARP table limit).
	for _, x := range lab.Hosts() {
		out, err := x.Command(t.Context(), "ip", "neigh", "show", "dev", "veth0", "nud", "permanent").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", x.Name(), err, out)
		}
		for _, o := range lab.Hosts() {
			if o != x && !strings.Contains(string(out), o.IP().String()+" lladdr ") {
				t.Fatalf("%s has no permanent neighbour entry for %s:\n%s", x.Name(), o.IP(), out)
			}
		}
	}
	a1, a3 := startAgent(t, lab.Host(1)), startAgent(t, h)
	a3.must("serve-tcp %d", echoPort)
	a1.must("dial %s:%d 2000", h.IP(), echoPort)
	if err := lab.Cut(1, 3); err != nil {
		t.Fatal(err)
	}
	if r := a1.do("dial %s:%d %d", h.IP(), echoPort, failDial.Milliseconds()); !strings.HasPrefix(r, "fail") {
		t.Fatalf("cut from the late joiner: %s, want a failure", r)
	}
}

func TestProc(t *testing.T) {
	lab := netlab.New(t, 1)
	a := startAgent(t, lab.Host(1))
	if r := a.do("isolated"); r != "ok true" {
		t.Fatalf("agent on a lab host: netns.Isolated() answered %q", r)
	}
	a.must("stderr to the report")
	for i := 0; !strings.Contains(a.p.Stderr(), "to the report"); i++ {
		if i == 200 { // stderr is read concurrently with stdout
			t.Fatalf("stderr not captured: %q", a.p.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.p.PID() <= 0 || !strings.HasPrefix(a.p.String(), "h1/") {
		t.Fatalf("PID %d, String %q", a.p.PID(), a.p.String())
	}

	if err := a.p.Kill(); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := a.p.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("Wait after Kill: %v, want killed by SIGKILL", err)
	}
	if err := syscall.Kill(a.p.PID(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process %d still exists after Kill: %v", a.p.PID(), err)
	}
	if _, err := a.p.WaitLine(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("WaitLine on a killed process: %v, want an error with the exit status", err)
	}

	b := startAgent(t, lab.Host(1))
	b.must("isolated")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := b.p.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v, want nil for a process that died of SIGTERM", err)
	}

	c := startAgent(t, lab.Host(1))
	c.p.Stdin.Close() // the agent exits at EOF
	if err := c.p.Wait(); err != nil {
		t.Fatalf("agent after EOF: %v", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.p.WaitLine(ctx, func(l string) bool { return l == "never" }); err == nil {
		t.Fatal("WaitLine found a line that was never printed")
	}
}

// TestClose checks teardown with Open and Close, outside of test helpers:
// processes the lab did not start itself are killed too, and no namespace
// stays behind.
func TestClose(t *testing.T) {
	netlab.Require(t)
	lab, err := netlab.Open(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close() // if the test fails before its own Close
	exe, _ := os.Executable()
	cmd := lab.Host(2).Command(context.Background(), exe, "-test.run=^TestHelperAgent$", "-netlab.agent")
	stdin, _ := cmd.StdinPipe() // kept open: the agent would run forever
	defer stdin.Close()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Close kills what runs in the lab's namespaces: wait until the agent
	// does (until it answers, ip netns exec may not have entered yet).
	if _, err := io.WriteString(stdin, "isolated\n"); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		answered <- line
	}()
	select {
	case line := <-answered:
		if !strings.HasPrefix(line, "ok") {
			t.Fatalf("agent answered %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not answer within 10s")
	}
	if n := len(labNamespaces(t, lab.Name())); n != 3 {
		t.Fatalf("%d namespaces for lab %s, want 3", n, lab.Name())
	}

	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("untracked process exited normally, want killed")
	}
	if left := labNamespaces(t, lab.Name()); len(left) != 0 {
		t.Fatalf("namespaces left after Close: %v", left)
	}
	if _, err := os.Stat("/run/reflect-netlab/" + lab.Name() + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file left after Close: %v", err)
	}
	if err := lab.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
	if err := lab.Heal(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Heal after Close: %v, want net.ErrClosed", err)
	}
}

func TestHelperPanic(t *testing.T) {
	if !*panicFlag {
		t.Skip("run by TestTeardownOnPanic")
	}
	lab := netlab.New(t, 2)
	startAgent(t, lab.Host(1))
	fmt.Printf("lab %s\n", lab.Name())
	panic("on purpose")
}

func TestTeardownOnPanic(t *testing.T) {
	netlab.Require(t)
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, "-test.run=^TestHelperPanic$", "-netlab.panic").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "panic: on purpose") {
		t.Fatalf("helper: %v, want a panic; output:\n%s", err, out)
	}
	_, rest, ok := strings.Cut(string(out), "lab ")
	name, _, _ := strings.Cut(rest, "\n")
	if !ok || !strings.HasPrefix(name, "rfl") {
		t.Fatalf("no lab name in helper output:\n%s", out)
	}
	if left := labNamespaces(t, name); len(left) != 0 {
		t.Fatalf("namespaces left after a panic: %v", left)
	}
}

func TestCleanupStale(t *testing.T) {
	live := netlab.New(t, 1)
	stale := "rfl" + strings.Repeat("0", 6) // no lock file: its owner is gone
	for _, ns := range []string{stale + "-br", stale + "-h1"} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
	}
	t.Cleanup(func() {
		for _, ns := range labNamespaces(t, stale) {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	removed, err := netlab.CleanupStale()
	if err != nil {
		t.Fatal(err)
	}
	if left := labNamespaces(t, stale); len(left) != 0 || len(removed) < 2 {
		t.Fatalf("stale lab: removed %v, left %v", removed, left)
	}
	if n := len(labNamespaces(t, live.Name())); n != 2 {
		t.Fatalf("live lab %s has %d namespaces after CleanupStale, want 2", live.Name(), n)
	}
}

// labNamespaces lists the namespaces of lab name, per `ip netns list`.
func labNamespaces(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], name+"-") {
			found = append(found, f[0])
		}
	}
	return found
}

func BenchmarkNew(b *testing.B) {
	for _, n := range []int{1, 5, 20} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for b.Loop() {
				lab, err := netlab.Open(context.Background(), n)
				if err != nil {
					b.Fatal(err)
				}
				if err := lab.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
