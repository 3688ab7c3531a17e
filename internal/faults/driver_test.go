package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netlab"
	"github.com/reflectmesh/reflect/internal/testutil"
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

// Bounds of the waits for a demo.
const (
	readyWithin = 15 * time.Second // from the start to the ready line
	replyWithin = 30 * time.Second // for a reply (Demo.Timeout)
)

// demo is one reflect-demo on a lab host, driven by testutil.Demo.
type demo struct {
	*testutil.Demo
	h *netlab.Host
	p *netlab.Proc
}

// startDemo starts reflect-demo on h with key and extra flags, and waits for
// its ready line. It does not fail t, so goroutines may call it.
func startDemo(t testing.TB, h *netlab.Host, key string, extra ...string) (*demo, error) {
	args := append([]string{"-json", "-key", key, "-fast-timers"}, extra...)
	p, err := h.Start(context.Background(), demoBin, args...)
	if err != nil {
		return nil, err
	}
	return driveDemo(t, h, p, readyWithin)
}

// driveDemo drives the reflect-demo process p started on h, once its
// ready line came within ready. It does not fail t.
func driveDemo(t testing.TB, h *netlab.Host, p *netlab.Proc, ready time.Duration) (*demo, error) {
	t.Cleanup(func() {
		// The lab kills the process after this; a panic so far is a bug.
		if s := p.Stderr(); strings.Contains(s, "panic:") {
			t.Errorf("%s panicked:\n%s", h, s)
		}
	})
	d := &demo{Demo: testutil.NewDemo(t, h.String(), p.Stdin, p), h: h, p: p}
	d.Timeout = replyWithin
	if err := d.WaitReady(ready); err != nil {
		return nil, err
	}
	return d, nil
}

// mustStartDemo is startDemo failing t on error.
func mustStartDemo(t testing.TB, h *netlab.Host, key string, extra ...string) *demo {
	t.Helper()
	d, err := startDemo(t, h, key, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return d
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

// diffDumps compares two dumps and describes the first difference, or
// returns "".
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

// waitConverged waits until the stores of ds hold the same keys and values,
// and returns how long that took and the common content; it fails the test
// after timeout.
func waitConverged(t testing.TB, ds []*demo, timeout time.Duration) (time.Duration, map[string]string) {
	t.Helper()
	start := time.Now()
	var final map[string]string
	diff := "not compared yet"
	defer func() {
		if final == nil { // Eventually gave up
			t.Logf("last difference: %s", diff)
		}
	}()
	testutil.Eventually(t, timeout, "the stores to converge", func() bool {
		// The key counts first: they are cheap, and a dump of every store
		// is worth it only when they agree.
		n := ds[0].Stats().Num("store", "keys")
		for _, d := range ds[1:] {
			if m := d.Stats().Num("store", "keys"); m != n {
				diff = fmt.Sprintf("%s has %.0f keys, %s %.0f", ds[0].h, n, d.h, m)
				return false
			}
		}
		first := ds[0].Dump()
		for _, d := range ds[1:] {
			if diff = diffDumps(first, d.Dump()); diff != "" {
				diff = fmt.Sprintf("%s vs %s: %s", ds[0].h, d.h, diff)
				return false
			}
		}
		final = first
		return true
	})
	return time.Since(start), final
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
