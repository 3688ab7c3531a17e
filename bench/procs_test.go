package main

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

// TestProcsPath runs the -procs mode end to end on small clusters: the
// participant binaries are built, every participant and server is a
// process, and each figure is measured (never how fast).
func TestProcsPath(t *testing.T) {
	netns.Require(t)
	if testing.Short() {
		t.Skip("builds the participant binaries")
	}
	cfg, err := parseFlags([]string{"-procs", "-n", "3", "-systems", "reflect,nats-tls", "-sizes", "256"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.params = tinyParams()
	cfg.params.Sizes = []int{small}
	cfg.params.MemIdle = 0
	cfg.params.StoreN, cfg.params.StoreKeys, cfg.params.StoreWait = 3, 2000, time.Minute
	cfg.runs = 1
	cfg.quiet = !testing.Verbose()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res := procsBenchmark(ctx, cfg, os.Stderr)
	if len(res.Samples) != 2 {
		t.Fatalf("%d samples, want 2: %+v", len(res.Samples), res.Samples)
	}
	for _, s := range res.Samples {
		if s.Error != "" {
			t.Fatalf("%s: %s", s.System, s.Error)
		}
		if s.Latency == nil || s.Latency.Sent == 0 || s.Latency.Delivered == 0 || s.Latency.P50 <= 0 {
			t.Errorf("%s: latency measured nothing: %+v", s.System, s.Latency)
		}
		if len(s.Throughput) != 1 || s.Throughput[0].Deliveries == 0 || s.Throughput[0].CPUSecs <= 0 {
			t.Errorf("%s: throughput %+v: want one run with deliveries and CPU time", s.System, s.Throughput)
		}
		want := map[string]int{rolePub: 1, roleSub: 2}
		if s.System == "nats-tls" {
			want[roleServer] = 1
		}
		got := map[string]int{}
		for _, p := range s.Procs {
			got[p.Role]++
			if p.IdleRSSMB <= 0 || p.IdleAnonMB <= 0 || p.IdleAnonMB > p.IdleRSSMB || p.PeakRSSMB < p.IdleAnonMB {
				t.Errorf("%s %s: memory %+v", s.System, p.Role, p)
			}
		}
		for role, n := range want {
			if got[role] != n {
				t.Errorf("%s: %d %s processes, want %d", s.System, got[role], role, n)
			}
		}
		if s.LoadAvg == "" {
			t.Errorf("%s: no load average", s.System)
		}
		// The store join runs for systems with a store only.
		if j := s.Join; (j != nil) != joinSystems[s.System] {
			t.Errorf("%s: join %+v", s.System, j)
		} else if j != nil && (j.Keys != 2000 || j.JoinSecs <= j.UpSecs || j.UpSecs <= 0 || j.JoinerRSSMB <= 0 || j.HolderRSSMB <= 0) {
			t.Errorf("%s: join %+v: want 2000 keys, up before joined, memory read", s.System, j)
		}
	}
	if len(res.Ratios) != 1 || !res.Ratios[0].P50.ok() {
		t.Errorf("ratios %+v: want reflect ÷ nats-tls", res.Ratios)
	}

	// The JSON reads back, and BENCHMARKS.md shows the multi-process
	// tables first, the in-process ones after as the library micro-view.
	dir := t.TempDir()
	js := filepath.Join(dir, procsResultsFile)
	if err := writeProcsJSON(js, res); err != nil {
		t.Fatal(err)
	}
	back, err := loadProcsResults(js)
	if err != nil || len(back.Samples) != 2 || len(back.Summaries) != 2 {
		t.Fatalf("read back: %v, %+v", err, back)
	}
	md := filepath.Join(dir, "BENCHMARKS.md")
	if err := writeMarkdown(md, &Results{Ns: []int{3}}, back, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	head := strings.Index(string(b), "## Results: one process per participant")
	micro := strings.Index(string(b), "## Library micro-view")
	if head < 0 || micro < head || !strings.Contains(string(b), "| nats-tls |") || !strings.Contains(string(b), "**Store, N = 3, one process per participant") {
		t.Errorf("BENCHMARKS.md: headline at %d, micro-view at %d; want both, headline first, with a nats-tls row and the store table", head, micro)
	}
}

// TestProcsFlags checks -procs's defaults and refusals.
func TestProcsFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-procs"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.procs || len(cfg.ns) != 1 || cfg.ns[0] != 5 || cfg.procsOut != procsResultsFile || cfg.out != "" ||
		strings.Join(cfg.procsSystems, ",") != "reflect,nats,nats-tls,redis" || !cfg.scenarios["latency"] || !cfg.scenarios["throughput"] || !cfg.scenarios["join"] {
		t.Errorf("-procs: %+v", cfg)
	}
	cfg, err = parseFlags([]string{"-procs", "-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.procsOut != "" || cfg.md != "" || cfg.runs != 1 || cfg.params.MemIdle != time.Second {
		t.Errorf("-procs -quick writes %q and %q, %d runs, settles %v; want nothing, 1 run, 1s", cfg.procsOut, cfg.md, cfg.runs, cfg.params.MemIdle)
	}
	cfg, err = parseFlags([]string{"-procs", "-out", "x.json", "-n", "5,10"}, io.Discard)
	if err != nil || cfg.procsOut != "x.json" || len(cfg.ns) != 2 {
		t.Errorf("-procs -out x.json -n 5,10: %v, %q, %v", err, cfg.procsOut, cfg.ns)
	}
	for _, args := range [][]string{
		{"-procs", "-systems", "libp2p"},
		{"-procs", "-scenarios", "burst"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	// Without -procs, nats-tls is not an in-process system.
	if _, err := parseFlags([]string{"-systems", "nats-tls"}, io.Discard); err == nil {
		t.Errorf("-systems nats-tls accepted without -procs")
	}
}

// TestProcStat parses /proc lines as the kernel writes them.
func TestProcStat(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 250, stime 50 ticks.
	stat := []byte("4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 1000000 500 18446744073709551615")
	cpu, err := statCPU(stat)
	if err != nil || cpu != 3*time.Second {
		t.Errorf("statCPU = %v, %v; want 3s", cpu, err)
	}
	if _, err := statCPU([]byte("4242 (x) S 1")); err == nil {
		t.Errorf("a short stat line parsed")
	}
	status := []byte("Name:\tx\nVmRSS:\t   47104 kB\nRssAnon:\t   25600 kB\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n")
	if rss, anon := statusKB(status, "VmRSS:"), statusKB(status, "RssAnon:"); rss != 47104<<10 || anon != 25600<<10 {
		t.Errorf("VmRSS %d, RssAnon %d", rss, anon)
	}
	if v := statusValue(status, "voluntary_ctxt_switches:") + statusValue(status, "nonvoluntary_ctxt_switches:"); v != 15 {
		t.Errorf("switches %d, want 15", v)
	}
	if v := statusValue(status, "VmSwap:"); v != 0 {
		t.Errorf("a missing line reads %d", v)
	}
	// This process: some memory, some CPU.
	st, err := readProcStat(os.Getpid())
	if err != nil || st.RSS == 0 || st.Anon == 0 || st.Anon > st.RSS {
		t.Errorf("readProcStat(self) = %+v, %v", st, err)
	}
	if _, err := readProcStat(-1); err == nil {
		t.Errorf("readProcStat(-1) succeeded")
	}
}

// TestProcsRatios checks that ratios pair runs and take the median over
// them, and the summary's medians per role.
func TestProcsRatios(t *testing.T) {
	sample := func(run int, sys string, p50, rate, cpu, subRSS float64) ProcsSample {
		return ProcsSample{Run: run, System: sys, N: 5,
			Latency:    &LatencyResult{Sent: 10, P50: p50, P99: 2 * p50, Delivered: 100},
			Throughput: []ProcsThroughput{{Size: small, Sent: 10, MsgsPerSec: rate, CPUPerMsgUS: cpu, Delivered: 100}},
			Procs: []ProcFigures{{Role: rolePub, IdleRSSMB: 100}, {Role: roleSub, IdleRSSMB: subRSS, IdleAnonMB: 1},
				{Role: roleSub, IdleRSSMB: subRSS + 2, IdleAnonMB: 1}, {Role: roleSub, IdleRSSMB: subRSS + 4, IdleAnonMB: 1}},
		}
	}
	res := &ProcsResults{Ns: []int{5}, Runs: 3, Params: Params{Sizes: []int{small}},
		Systems: []SystemInfo{{Name: "reflect"}, {Name: "nats"}},
		Samples: []ProcsSample{
			sample(1, "reflect", 100, 1000, 2, 30), sample(1, "nats", 200, 1000, 1, 10),
			sample(2, "reflect", 300, 3000, 2, 30), sample(2, "nats", 300, 1000, 4, 10),
			sample(3, "reflect", 50, 500, 2, 30), sample(3, "nats", 25, 1000, 2, 10),
		}}
	analyzeProcs(res)
	if len(res.Ratios) != 1 {
		t.Fatalf("%d ratios", len(res.Ratios))
	}
	r := res.Ratios[0]
	// Per run: p50 0.5, 1, 2; rate 1, 3, 0.5; CPU 2, 0.5, 1; subscriber RSS
	// (median of 30, 32, 34 over that of 10, 12, 14) 32/12.
	for name, c := range map[string]struct {
		got           Stat
		med, min, max float64
	}{
		"p50":  {r.P50, 1, 0.5, 2},
		"rate": {r.Msgs256, 1, 0.5, 3},
		"cpu":  {r.CPU256, 1, 0.5, 2},
		"rss":  {r.IdleRSS, 32.0 / 12, 32.0 / 12, 32.0 / 12},
	} {
		if math.Abs(c.got.Median-c.med) > 1e-9 || c.got.Min != c.min || c.got.Max != c.max || c.got.Runs != 3 {
			t.Errorf("%s ratio %+v, want median %v (%v–%v) of 3", name, c.got, c.med, c.min, c.max)
		}
	}
	s := res.Summaries[0]
	sub, ok := s.role(roleSub)
	if s.System != "reflect" || !ok || sub.Processes != 3 || sub.IdleRSSMB.Median != 32 || s.IdleRSSMB.Median != 196 {
		t.Errorf("summary %+v / subscribers %+v: want 3 subscribers at 32 MB, 196 MB in all", s, sub)
	}
	// The figures: 3.1 ms per MB, 2 cores, 4 subscribers: ~161 MB/s.
	c := &CryptoCeiling{MSPerMB: 3.1, Cores: 2}
	if v := c.perSubscriber(5); math.Abs(v-161.29) > 0.01 {
		t.Errorf("crypto ceiling per subscriber %.2f MB/s, want 161.29", v)
	}
	res.Crypto = c
	if got := ceilingPct(res, ProcsSummary{System: "reflect", N: 5}, ProcsSizeSummary{MBPerSec: statOf([]float64{50})}); got != "31% of 161 MB/s" {
		t.Errorf("ceiling column %q", got)
	}
	if m := lossMark(statOf([]float64{100, 99.5})); m == "" {
		t.Errorf("a lossy unpaced run is not marked")
	}
}

// The drops counted during formation are reported per sample that had
// any, and results without the reading do not claim there were none.
func TestFormationDrops(t *testing.T) {
	some := newDrops("OutboundDropped", uint64(3))
	none := newDrops()
	res := &ProcsResults{Samples: []ProcsSample{{Run: 1, N: 5, System: "reflect"}}}
	if got := formationDrops(res); got != "not recorded in these results" {
		t.Fatalf("without readings: %q", got)
	}
	res.Samples[0].FormationDrops = &none
	res.Samples = append(res.Samples, ProcsSample{Run: 1, N: 5, System: "nats", FormationDrops: &none})
	if got := formationDrops(res); got != "none, in any of the 2 samples" {
		t.Fatalf("no drops: %q", got)
	}
	res.Samples = append(res.Samples, ProcsSample{Run: 2, N: 20, System: "reflect", FormationDrops: &some},
		ProcsSample{Run: 3, N: 20, System: "reflect", Error: "open: failed", FormationDrops: &some})
	if got := formationDrops(res); got != "run 2 N=20 reflect: OutboundDropped 3" {
		t.Fatalf("with drops: %q", got)
	}
}

// A child that answers "quit" and exits at once: its reply is read even
// when the child is reaped before the parent reads it.
func TestProcStopReadsTheLastReply(t *testing.T) {
	for i := range 30 {
		p, err := startProc("sh", "/bin/sh", "-c", `read line; echo '{}'`)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
		if err := p.stop(); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
	}
}
