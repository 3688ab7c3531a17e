package node

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestWarnLimiterLogsOncePerIntervalAndCountsTheRest(t *testing.T) {
	var buf bytes.Buffer
	w := newWarnLimiter(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	logged := 0
	for range 100 {
		if w.warn("a", "flood a") {
			logged++
		}
		if w.warn("b", "flood b") {
			logged++
		}
		now = now.Add(50 * time.Millisecond) // 5 s in all
	}
	if logged != 2 {
		t.Fatalf("logged %d warnings in 5 s, want one per kind", logged)
	}
	now = now.Add(5 * time.Second)
	if !w.warn("a", "flood a") {
		t.Fatal("nothing logged after the interval")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "suppressed_since_last=99") {
		t.Fatalf("log:\n%s", buf.String())
	}
}

func TestWarnLimiterPerKeyIsBounded(t *testing.T) {
	var buf bytes.Buffer
	w := newWarnLimiter(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	if !w.warnKey("k", "10.0.0.1", "m") || !w.warnKey("k", "10.0.0.2", "m") {
		t.Fatal("a second key was held back by the first")
	}
	if w.warnKey("k", "10.0.0.1", "m") {
		t.Fatal("one key logged twice in the interval")
	}
	for i := range 10 * maxWarnKeys {
		w.warnKey("k", fmt.Sprint("key", i), "m")
	}
	w.mu.Lock()
	size := len(w.kinds)
	w.mu.Unlock()
	if size > maxWarnKeys+1 {
		t.Fatalf("%d entries, want at most %d", size, maxWarnKeys+1)
	}
	now = now.Add(10 * time.Second)
	if !w.warnKey("k", "another", "m") {
		t.Fatal("a new key held back after the interval")
	}
	w.mu.Lock()
	size = len(w.kinds)
	w.mu.Unlock()
	if size > 2 {
		t.Fatalf("%d entries after the interval: old keys not dropped", size)
	}
}
