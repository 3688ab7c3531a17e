package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netlab"
)

// demoBin is the reflect-demo binary built for the suite.
var demoBin string

// buildDemo builds cmd/reflect-demo into dir.
func buildDemo(dir string) (string, error) {
	out := filepath.Join(dir, "reflect-demo")
	cmd := exec.Command("go", "build", "-o", out, "github.com/reflectmesh/reflect/cmd/reflect-demo")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building reflect-demo: %w", err)
	}
	return out, nil
}

// replyEvents are the events that answer a command, one per command.
var replyEvents = map[string]bool{"ok": true, "value": true, "keys": true, "peers": true, "id": true, "error": true, "stats": true, "dump": true}

// demo drives one reflect-demo process in -json mode.
type demo struct {
	t     testing.TB
	h     *netlab.Host
	p     *netlab.Proc
	id    string
	addrs []string
	mu    sync.Mutex // one command at a time
	in    *bufio.Writer
}

// event is one JSON line of the demo.
type event map[string]any

func (e event) str(k string) string { s, _ := e[k].(string); return s }

func parse(line string) (event, bool) {
	var e event
	if json.Unmarshal([]byte(line), &e) != nil {
		return nil, false
	}
	return e, true
}

func isEvent(kinds ...string) func(string) bool {
	return func(line string) bool {
		e, ok := parse(line)
		if !ok {
			return false
		}
		for _, k := range kinds {
			if e.str("event") == k {
				return true
			}
		}
		return false
	}
}

// startDemo starts reflect-demo on h with key and extra flags, and waits for
// its ready event.
func startDemo(t testing.TB, h *netlab.Host, key string, extra ...string) *demo {
	t.Helper()
	args := append([]string{"-json", "-key", key, "-fast-timers"}, extra...)
	p, err := h.Start(context.Background(), demoBin, args...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	line, err := p.WaitLine(ctx, isEvent("ready"))
	if err != nil {
		t.Fatalf("%s: no ready event: %v", h, err)
	}
	e, _ := parse(line)
	d := &demo{t: t, h: h, p: p, id: e.str("id"), in: bufio.NewWriter(p.Stdin)}
	for _, a := range e["addrs"].([]any) {
		d.addrs = append(d.addrs, a.(string))
	}
	return d
}

// send writes command lines without waiting for their replies. It fails
// once the process is gone (a crash scenario kills it on purpose).
func (d *demo) send(lines ...string) error {
	for _, l := range lines {
		d.in.WriteString(l)
		d.in.WriteByte('\n')
	}
	if err := d.in.Flush(); err != nil {
		return fmt.Errorf("%s: writing commands: %w", d.h, err)
	}
	return nil
}

// reply waits for the next command reply.
func (d *demo) reply(timeout time.Duration) (event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	line, err := d.p.WaitLine(ctx, func(l string) bool {
		e, ok := parse(l)
		return ok && replyEvents[e.str("event")]
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.h, err)
	}
	e, _ := parse(line)
	return e, nil
}

// do runs one command and returns its reply; an error reply is an error.
func (d *demo) do(line string, timeout time.Duration) (event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.send(line); err != nil {
		return nil, err
	}
	e, err := d.reply(timeout)
	if err != nil {
		return nil, err
	}
	if e.str("event") == "error" {
		return e, fmt.Errorf("%s: %q: %s", d.h, line, e.str("error"))
	}
	return e, nil
}

// must runs a command and fails the test on error.
func (d *demo) must(line string) event {
	d.t.Helper()
	e, err := d.do(line, 30*time.Second)
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

// setMany sets keys (key → value) in batches and returns the acknowledged
// keys: those whose set got an ok reply.
func (d *demo) setMany(kv [][2]string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var acked []string
	const batch = 200
	for i := 0; i < len(kv); i += batch {
		chunk := kv[i:min(i+batch, len(kv))]
		lines := make([]string, len(chunk))
		for j, p := range chunk {
			lines[j] = "set " + p[0] + " " + p[1]
		}
		if d.send(lines...) != nil {
			return acked // the process died: what was acked so far counts
		}
		for _, p := range chunk {
			e, err := d.reply(30 * time.Second)
			if err != nil {
				return acked // the process died: what was acked so far counts
			}
			if e.str("event") == "ok" {
				acked = append(acked, p[0])
			}
		}
	}
	return acked
}

// peers returns the connected peer ids.
func (d *demo) peers() []string {
	e := d.must("peers")
	var out []string
	for _, p := range e["peers"].([]any) {
		out = append(out, fmt.Sprint(p))
	}
	return out
}

// dump returns every key and value of the store.
func (d *demo) dump() map[string]string {
	e := d.must("dump")
	out := map[string]string{}
	entries, _ := e["entries"].([]any)
	for _, x := range entries {
		m := x.(map[string]any)
		v, _ := json.Marshal(m["value"])
		out[m["key"].(string)] = string(v)
	}
	return out
}

// stats returns the demo's stats reply.
func (d *demo) stats() event { return d.must("stats") }

func (e event) num(path ...string) float64 {
	var cur any = map[string]any(e)
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0
		}
		cur = m[k]
	}
	f, _ := cur.(float64)
	return f
}

// waitPeers waits until d has n peers; it returns how long that took.
func (d *demo) waitPeers(n int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	_, err := d.do(fmt.Sprintf("wait-peers %d %d", n, int(timeout.Seconds())), timeout+5*time.Second)
	return time.Since(start), err
}

// figures collects the printed figures of every scenario for the summary.
var figures struct {
	sync.Mutex
	lines []string
}

// report prints a scenario's figures line and records it.
func report(t testing.TB, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	fmt.Fprintln(os.Stderr, "FIGURES", t.Name(), line)
	figures.Lock()
	figures.lines = append(figures.lines, t.Name()+": "+line)
	figures.Unlock()
}

// eq compares two dumps and describes the first difference.
func diffDumps(a, b map[string]string) string {
	for k, v := range a {
		if w, ok := b[k]; !ok {
			return fmt.Sprintf("%q missing on the second", k)
		} else if w != v {
			return fmt.Sprintf("%q: %s vs %s", k, v, w)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return fmt.Sprintf("%q missing on the first", k)
		}
	}
	return ""
}

// waitConverged polls the dumps of ds until all are equal; it returns how
// long that took, or fails the test after timeout.
func waitConverged(t testing.TB, ds []*demo, timeout time.Duration) (time.Duration, map[string]string) {
	t.Helper()
	start := time.Now()
	for {
		first := ds[0].dump()
		diff := ""
		for _, d := range ds[1:] {
			if diff = diffDumps(first, d.dump()); diff != "" {
				diff = fmt.Sprintf("%s vs %s: %s", ds[0].h, d.h, diff)
				break
			}
		}
		if diff == "" {
			return time.Since(start), first
		}
		if time.Since(start) > timeout {
			t.Fatalf("not converged after %v: %s", timeout, diff)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkSet is the Jepsen set check: every acknowledged key is present (lost)
// and no key is present that nobody wrote (unexpected).
func checkSet(t testing.TB, final map[string]string, acked []string, written map[string]bool) (lost, unexpected int) {
	t.Helper()
	for _, k := range acked {
		if _, ok := final[k]; !ok {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged key %q lost", k)
			}
		}
	}
	for k := range final {
		if !written[k] {
			unexpected++
			if unexpected <= 5 {
				t.Errorf("unexpected key %q", k)
			}
		}
	}
	return lost, unexpected
}

func joinIDs(ids []string) string { return strings.Join(ids, ",") }
