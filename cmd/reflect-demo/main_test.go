package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// demoEnv makes the test binary run the demo instead of the tests: the
// end-to-end tests start the real program by re-executing themselves.
const demoEnv = "REFLECT_DEMO_RUN"

func TestMain(m *testing.M) {
	if os.Getenv(demoEnv) == "1" {
		// Before netns.RunTests: the demo stays in the namespace of the
		// test that started it, where its peers are.
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(netns.RunTests(m))
}

// waitFor bounds every wait for a line, a reply or an exit.
const waitFor = 10 * time.Second

// proc is one running demo: the driver, and the process for signals.
type proc struct {
	*testutil.Demo
	t   *testing.T
	cmd *testutil.Cmd
}

// startDemo starts the demo with args and the environment of the test
// minus $REFLECT_KEY, plus env, and waits for its ready line.
func startDemo(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	c, err := testutil.StartCmd(t, demoCmd(t, env, args...))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Demo: testutil.NewDemo(t, name, c.Stdin, c), t: t, cmd: c}
	p.Timeout = waitFor
	if err := p.WaitReady(waitFor); err != nil {
		t.Fatal(err)
	}
	return p
}

// demoCmd returns the command that runs the demo: this test binary, with
// the test's environment minus $REFLECT_KEY, plus env.
func demoCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, keyEnv+"=") && !strings.HasPrefix(kv, "GORACE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, demoEnv+"=1",
		// No one-second pause at exit under the race detector.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Signal(sig); err != nil {
		p.t.Fatalf("%s: %v", p.Name, err)
	}
}

// testKey returns a secret for one test: meshes of different tests, which
// may share a namespace, never see each other.
func testKey(t *testing.T) string {
	return "reflect-demo-test/" + t.Name()
}

// loopback are the flags of an instance on loopback without mDNS.
func loopback(key string, peers ...string) []string {
	args := []string{"-json", "-key", key, "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0"}
	for _, p := range peers {
		args = append(args, "-peer", p)
	}
	return args
}

// tcp4 returns the first /ip4/.../tcp address of p.
func (p *proc) tcp4() string {
	p.t.Helper()
	for _, a := range p.Addrs {
		if strings.HasPrefix(a, "/ip4/") && strings.Contains(a, "/tcp/") && strings.Contains(a, "/p2p/") {
			return a
		}
	}
	p.t.Fatalf("%s: no /ip4 TCP address in %v", p.Name, p.Addrs)
	return ""
}

// runOnce runs the demo to the end with the given input and returns its
// stdout, stderr and exit status.
func runOnce(t *testing.T, input string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := demoCmd(t, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(input), &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(waitFor):
		// Only this process, by its PID. An error means it exited meanwhile.
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill: %v", err)
		}
		<-done
		t.Fatalf("still running after %v; stderr:\n%s", waitFor, errb.String())
	}
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatalf("waiting for the demo: %v", err)
	}
	if s := errb.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") {
		t.Errorf("stderr:\n%s", s)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}
