package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
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

// proc is one running demo, driven through stdin, its stdout read as JSON
// lines.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the process has exited
	err   error         // its exit error, once done

	mu      sync.Mutex
	lines   []map[string]any // unread stdout lines
	newLine chan struct{}    // closed and replaced at each line and at exit
	eof     bool
	stderr  bytes.Buffer

	id    string   // from ready
	addrs []string // from ready
}

// startDemo starts the demo with args and, unless env replaces it, the
// environment of the test minus $REFLECT_KEY. It waits for the ready line.
func startDemo(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := startRaw(t, name, nil, args...)
	r := p.next(func(m map[string]any) bool { return true })
	if r["event"] != "ready" {
		t.Fatalf("%s: first line %v, want ready", name, r)
	}
	p.id, _ = r["id"].(string)
	for _, a := range r["addrs"].([]any) {
		p.addrs = append(p.addrs, a.(string))
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

// startRaw starts the demo without waiting for anything.
func startRaw(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := demoCmd(t, env, args...)
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{}), newLine: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(stdout)
	t.Cleanup(func() {
		// Kill only this process, by its PID, if the test left it running.
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(waitFor):
				t.Errorf("%s: still running after SIGKILL", p.name)
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if t.Failed() {
			t.Logf("%s stderr:\n%s\nunread stdout: %v", p.name, p.stderr.String(), p.lines)
		}
		if s := p.stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") {
			t.Errorf("%s stderr:\n%s", p.name, s)
		}
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// read collects stdout: every line must be one JSON object with an "event".
func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["event"] == nil {
			p.t.Errorf("%s: stdout line is not a JSON event: %q", p.name, sc.Text())
			continue
		}
		p.mu.Lock()
		p.lines = append(p.lines, m)
		close(p.newLine)
		p.newLine = make(chan struct{})
		p.mu.Unlock()
	}
	p.err = p.cmd.Wait()
	p.mu.Lock()
	p.eof = true
	close(p.newLine)
	p.mu.Unlock()
	close(p.done)
}

// next removes and returns the first unread line for which match is true,
// waiting for it at most waitFor. Other lines stay unread.
func (p *proc) next(match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	m, err := p.tryNext(waitFor, match)
	if err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	return m
}

func (p *proc) tryNext(d time.Duration, match func(map[string]any) bool) (map[string]any, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for i, m := range p.lines {
			if match(m) {
				p.lines = append(p.lines[:i], p.lines[i+1:]...)
				p.mu.Unlock()
				return m, nil
			}
		}
		eof, wake := p.eof, p.newLine
		p.mu.Unlock()
		if eof {
			return nil, fmt.Errorf("exited (%v) without the line", p.err)
		}
		select {
		case <-wake:
		case <-deadline.C:
			return nil, fmt.Errorf("no such line after %v", d)
		}
	}
}

// isReply matches the replies to commands, as opposed to async events.
func isReply(m map[string]any) bool {
	switch m["event"] {
	case "ok", "error", "value", "keys", "peers", "id", "stats":
		return true
	}
	return false
}

// send writes command lines.
func (p *proc) send(lines ...string) {
	p.t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(p.stdin, l+"\n"); err != nil {
			p.t.Fatalf("%s: writing %q: %v", p.name, l, err)
		}
	}
}

// do sends one command and returns its reply.
func (p *proc) do(line string) map[string]any {
	p.t.Helper()
	p.send(line)
	return p.next(isReply)
}

// must sends one command and fails the test unless the reply has the
// given event (and, for ok and error, the command's name).
func (p *proc) must(line, event string) map[string]any {
	p.t.Helper()
	r := p.do(line)
	name, _ := cut(line)
	if r["event"] != event || (r["cmd"] != nil && r["cmd"] != name) {
		p.t.Fatalf("%s: %q: reply %v, want %s", p.name, line, r, event)
	}
	return r
}

// message waits for a message event on topic from the given peer.
func (p *proc) message(topic, from string) map[string]any {
	p.t.Helper()
	m := p.next(func(m map[string]any) bool {
		return m["event"] == "message" && m["topic"] == topic && m["from"] == from
	})
	return m["data"].(map[string]any)
}

// wait closes stdin and waits for the exit; it returns the exit status.
func (p *proc) wait() int {
	p.t.Helper()
	_ = p.stdin.Close()
	return p.exitStatus()
}

func (p *proc) exitStatus() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitFor):
		p.t.Fatalf("%s: still running %v after the end of input", p.name, waitFor)
	}
	return p.cmd.ProcessState.ExitCode()
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
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
	for _, a := range p.addrs {
		if strings.HasPrefix(a, "/ip4/") && strings.Contains(a, "/tcp/") && strings.Contains(a, "/p2p/") {
			return a
		}
	}
	p.t.Fatalf("%s: no /ip4 TCP address in %v", p.name, p.addrs)
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
	select {
	case <-done:
	case <-time.After(waitFor):
		_ = cmd.Process.Kill() // only this process, by its PID
		<-done
		t.Fatalf("still running after %v; stderr:\n%s", waitFor, errb.String())
	}
	if s := errb.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") {
		t.Errorf("stderr:\n%s", s)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}
