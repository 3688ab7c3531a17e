package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

// The smoke test opens sockets: like the library's tests it runs in a
// network namespace of its own with only loopback (as root), and skips
// otherwise.
func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }

// tinyParams is the quick path scaled down further: the test checks that
// the pipeline works end to end, never how fast anything is.
func tinyParams() Params {
	p := quickParams()
	p.LatencyFor = 300 * time.Millisecond
	p.ThroughputCount = map[int]int{small: 2000, large: 40}
	p.ThroughputFor = 300 * time.Millisecond
	p.SearchTrials = 1
	p.SearchFor = 200 * time.Millisecond
	p.BurstCount = map[int]int{small: 1000, large: 20}
	p.BurstFor = 500 * time.Millisecond
	p.Warmup = 20
	return p
}

func TestQuickPath(t *testing.T) {
	netns.Require(t)
	for _, sys := range []System{&reflectSystem{}, &redisSystem{pipelined: true}} {
		t.Run(sys.Name(), func(t *testing.T) {
			if why := sys.Unavailable(); why != "" {
				t.Skip(why)
			}
			dir := t.TempDir()
			cfg := config{
				ns: []int{3}, runs: 1, systems: []System{sys}, params: tinyParams(),
				scenarios: map[string]bool{"latency": true, "throughput": true, "burst": true},
				quiet:     !testing.Verbose(),
			}
			cfg.params.Sizes = []int{small, large}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res := benchmark(ctx, cfg, os.Stderr)
			if len(res.Samples) != 1 {
				t.Fatalf("%d samples, want 1", len(res.Samples))
			}
			s := res.Samples[0]
			if s.Error != "" {
				t.Fatalf("error: %s", s.Error)
			}
			if s.Latency == nil || s.Latency.Sent == 0 || s.Latency.Delivered == 0 {
				t.Errorf("latency scenario measured nothing: %+v", s.Latency)
			}
			if len(s.Throughput) != 2 || len(s.Burst) != 2 || s.Memory == nil {
				t.Errorf("throughput %d, burst %d results, memory %v; want 2, 2, set", len(s.Throughput), len(s.Burst), s.Memory)
			}
			for _, b := range s.Burst {
				if b.Sent == 0 {
					t.Errorf("burst of %d B sent nothing", b.Size)
				}
			}

			// Every output can be written and read back.
			if md := writeReport(t, dir, res); !strings.Contains(md, "plots/latency.png") {
				t.Errorf("BENCHMARKS.md does not link the latency plot")
			}
			js := filepath.Join(dir, "results.json")
			if err := writeJSON(js, res); err != nil {
				t.Fatal(err)
			}
			var back Results
			if b, err := os.ReadFile(js); err != nil || json.Unmarshal(b, &back) != nil {
				t.Fatalf("results.json does not read back: %v", err)
			}
			var sb strings.Builder
			printText(&sb, res)
			if !strings.Contains(sb.String(), sys.Name()) {
				t.Errorf("table lacks the system:\n%s", sb.String())
			}
		})
	}
}

// TestStorePath runs the store scenarios, tiny, for each system with a
// store, and renders them.
func TestStorePath(t *testing.T) {
	netns.Require(t)
	for _, sys := range []System{&reflectSystem{}, &natsSystem{}, &redisSystem{pipelined: true}} {
		t.Run(sys.Name(), func(t *testing.T) {
			if why := sys.Unavailable(); why != "" {
				t.Skip(why)
			}
			p := tinyParams()
			p.StoreN, p.VisibleKeys, p.VisibleWarmup, p.StoreKeys, p.MemKeys = 3, 50, 5, 500, 2000
			p.StoreWait = 20 * time.Second
			cfg := config{
				ns: []int{3}, runs: 1, systems: []System{sys}, params: p,
				scenarios: map[string]bool{scVisible: true, scRate: true, scJoin: true, scReconnect: true, scKeyMem: true},
				quiet:     !testing.Verbose(),
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res := benchmark(ctx, cfg, os.Stderr)
			if len(res.Samples) != 1 || res.Samples[0].Error != "" {
				t.Fatalf("samples %+v", res.Samples)
			}
			st := res.Samples[0].Store
			if st == nil || st.Visible == nil || st.Rate == nil || st.Join == nil || st.Reconnect == nil || st.InSync == nil || st.KeyMemory == nil {
				t.Fatalf("store scenarios missing: %+v", st)
			}
			if st.Visible.Lost > 0 || st.Rate.Applied != 100 {
				t.Errorf("lost %d visible writes; %.1f%% of the load applied", st.Visible.Lost, st.Rate.Applied)
			}
			if st.Join.Keys != p.StoreKeys {
				t.Errorf("join loaded %d keys, want %d", st.Join.Keys, p.StoreKeys)
			}
			if st.Reconnect.Bytes() == 0 {
				t.Errorf("reconnect moved no bytes: %+v", st.Reconnect)
			}
			if len(res.StoreSummaries) != 1 {
				t.Fatalf("%d store summaries, want 1", len(res.StoreSummaries))
			}
			if md := writeReport(t, t.TempDir(), res); !strings.Contains(md, "plots/store.png") || !strings.Contains(md, "Store, N = 3") {
				t.Errorf("BENCHMARKS.md lacks the store table or plot")
			}
		})
	}
}

func TestStats(t *testing.T) {
	for _, tc := range []struct {
		in               []float64
		median, min, max float64
		runs             int
	}{
		{[]float64{3, 1, 2}, 2, 1, 3, 3},
		{[]float64{4, 1, 2, 3}, 2.5, 1, 4, 4},
		{[]float64{5}, 5, 5, 5, 1},
	} {
		s := statOf(tc.in)
		if s.Median != tc.median || s.Min != tc.min || s.Max != tc.max || s.Runs != tc.runs {
			t.Errorf("statOf(%v) = %+v", tc.in, s)
		}
	}
	if statOf(nil).ok() {
		t.Error("statOf(nil) claims a value")
	}
	lat := []int64{1000, 2000, 3000, 4000}
	if got := quantileUS(lat, 0.5); got != 2 {
		t.Errorf("p50 = %v µs, want 2", got)
	}
	if got := quantileUS(lat, 1); got != 4 {
		t.Errorf("max = %v µs, want 4", got)
	}
}

func TestRecorder(t *testing.T) {
	r := newRecorder(2)
	old := r.begin(4)
	tr := r.begin(4)
	msg := make([]byte, headerLen+8)
	putHeader(msg, tr.id, 1, now())
	r.deliver(1, msg)
	r.deliver(1, msg) // duplicate: counted once
	r.deliver(2, msg)
	putHeader(msg, old.id, 0, now())
	r.deliver(1, msg) // an earlier trial's
	r.deliver(1, msg[:3])
	if c := tr.counts(); c[0] != 1 || c[1] != 1 {
		t.Errorf("counts %v, want [1 1]", c)
	}
	if r.stale.Load() != 1 || r.garbled.Load() != 1 {
		t.Errorf("stale %d, garbled %d; want 1, 1", r.stale.Load(), r.garbled.Load())
	}
	if n := len(tr.latencies()); n != 2 {
		t.Errorf("%d latencies, want 2", n)
	}
}

func TestDrops(t *testing.T) {
	a := newDrops("x", uint64(3), "y", uint64(1))
	b := newDrops("x", uint64(5), "y", uint64(1))
	d := b.sub(a)
	if d.Events != 2 || d.String() != "x 2" {
		t.Errorf("diff = %+v (%q), want 2 events, \"x 2\"", d, d.String())
	}
}

// writeReport writes the plots and BENCHMARKS.md of res under dir and
// returns the Markdown.
func writeReport(t *testing.T, dir string, res *Results) string {
	t.Helper()
	plots, err := writePlots(filepath.Join(dir, "plots"), res)
	if err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "BENCHMARKS.md")
	if err := writeMarkdown(md, res, nil, plots); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCallsPath runs the request/reply, queue-group and headers scenarios,
// tiny, for each system that has them, and renders them. It checks
// correctness only (every request answered, every queued message delivered
// once), never speed.
func TestCallsPath(t *testing.T) {
	netns.Require(t)
	for _, sys := range []System{&reflectSystem{}, &natsSystem{}} {
		t.Run(sys.Name(), func(t *testing.T) {
			p := tinyParams()
			p.Sizes = []int{small}
			p.CallsN = 3
			p.RequestFor, p.RequestWarmup = 200*time.Millisecond, 20
			p.LoadRate, p.LoadFor, p.LoadConcurrency = 2000, 300*time.Millisecond, 8
			p.QueueCount, p.QueueFor = 2000, 2*time.Second
			cfg := config{
				ns: []int{3}, runs: 1, systems: []System{sys}, params: p,
				scenarios: map[string]bool{"throughput": true, scHeaders: true, scRequest: true, scRequestRate: true, scQueue: true},
				quiet:     !testing.Verbose(),
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res := benchmark(ctx, cfg, os.Stderr)
			if len(res.Samples) != 1 || res.Samples[0].Error != "" {
				t.Fatalf("samples %+v", res.Samples)
			}
			s := res.Samples[0]
			if s.HeaderThroughput == nil || s.HeaderThroughput.Unpaced.Sent == 0 {
				t.Errorf("headers scenario measured nothing: %+v", s.HeaderThroughput)
			}
			c := s.Calls
			if c == nil || c.Request == nil || c.Load == nil || c.Queue == nil {
				t.Fatalf("calls scenarios missing: %+v", c)
			}
			if c.Request.OK == 0 || c.Request.OK != c.Request.Sent {
				t.Errorf("request: %d of %d answered (%s)", c.Request.OK, c.Request.Sent, c.Request.FirstError)
			}
			if c.Load.Sent == 0 || c.Load.Lost != 0 {
				t.Errorf("request-rate: %d lost of %d (%s)", c.Load.Lost, c.Load.Sent, c.Load.FirstError)
			}
			q := c.Queue
			if q.Sent == 0 || q.Duplicates != 0 || q.Missing != 0 || len(q.PerMember) != 2 {
				t.Errorf("queue: %+v", q)
			}
			if len(res.CallSummaries) != 1 {
				t.Fatalf("%d call summaries, want 1", len(res.CallSummaries))
			}
			if md := writeReport(t, t.TempDir(), res); !strings.Contains(md, "Request/reply and queue groups, N = 3") || !strings.Contains(md, "Headers:") {
				t.Errorf("BENCHMARKS.md lacks the calls or headers table")
			}
		})
	}
}

func TestQueueRecorder(t *testing.T) {
	var r queueRecorder
	old := r.begin(1, 4, 2)
	tr := r.begin(2, 4, 2)
	msg := make([]byte, headerLen)
	putHeader(msg, tr.id, 1, now())
	r.deliver(1, msg)
	r.deliver(2, msg) // the same message to a second member: a duplicate
	putHeader(msg, tr.id, 2, now())
	r.deliver(2, msg)
	putHeader(msg, old.id, 0, now())
	r.deliver(1, msg) // an earlier trial's: ignored
	r.deliver(1, msg[:3])
	if d, dup, l := tr.distinct(), tr.dup.Load(), loads(tr.count); d != 2 || dup != 1 || l[0] != 1 || l[1] != 2 {
		t.Errorf("distinct %d, duplicates %d, per member %v; want 2, 1, [1 2]", d, dup, l)
	}
	if r.garbled.Load() != 1 {
		t.Errorf("garbled %d, want 1", r.garbled.Load())
	}
}
