package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestStoreFlags checks -store-keys and -store-wait: they set the store
// scenarios' key count and wait bound, leave the defaults (full and
// -quick) alone when absent, and refuse values out of range.
func TestStoreFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-store-keys", "1000000", "-store-wait", "3m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.params.StoreKeys != 1_000_000 || cfg.params.StoreWait != 3*time.Minute {
		t.Errorf("store keys %d, wait %v; want 1000000, 3m", cfg.params.StoreKeys, cfg.params.StoreWait)
	}
	for _, c := range []struct {
		args []string
		want Params
	}{{nil, fullParams()}, {[]string{"-quick"}, quickParams()}} {
		cfg, err := parseFlags(c.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.params.StoreKeys != c.want.StoreKeys || cfg.params.StoreWait != c.want.StoreWait {
			t.Errorf("%v: store keys %d, wait %v; want the defaults %d, %v",
				c.args, cfg.params.StoreKeys, cfg.params.StoreWait, c.want.StoreKeys, c.want.StoreWait)
		}
	}
	for _, args := range [][]string{
		{"-store-keys", "5"}, {"-store-keys", "20000000"}, {"-store-keys", "-1"},
		{"-store-wait", "10ms"}, {"-store-wait", "2h"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%v: err %v, want out of range", args, err)
		}
	}
}

// TestJoinTarget checks the join target follows the store's size: < 1 s
// at the default 100,000 keys, issue 12's ≤ 5 s at 1,000,000.
func TestJoinTarget(t *testing.T) {
	for _, c := range []struct {
		keys int
		secs float64
		want string // the join target's verdict
		sign string
	}{
		{100_000, 0.6, "yes", "< 1 s"},
		{100_000, 2.5, "no", "< 1 s"},
		{1_000_000, 2.5, "yes", "≤ 5 s"},
		{1_000_000, 5.0, "yes", "≤ 5 s"},
		{1_000_000, 5.5, "no", "≤ 5 s"},
	} {
		p := fullParams()
		p.StoreKeys = c.keys
		res := &Results{Params: p, StoreSummaries: []StoreSummary{{System: "reflect", N: 5,
			JoinSecs: Stat{Median: c.secs, Min: c.secs, Max: c.secs, Runs: 1}}}}
		var got *TargetCheck
		for _, tc := range checkStoreTargets(res) {
			if strings.HasPrefix(tc.Target, "store: join ") {
				got = &tc
			}
		}
		if got == nil {
			t.Fatalf("%d keys: no join target", c.keys)
		}
		if got.Met != c.want || !strings.HasSuffix(got.Target, c.sign) {
			t.Errorf("%d keys in %g s: %q met %q, want %q ending %q", c.keys, c.secs, got.Target, got.Met, c.want, c.sign)
		}
	}
}
