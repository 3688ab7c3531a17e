package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"
)

// A Suite runs a group of scenarios that share one cluster of a system:
// pubsubSuite (scenarios 1–3, every system, and the headers scenario),
// storeSuite (4–8, systems that implement KVSystem; suite_store.go) and
// callsSuite (request/reply and queue groups, systems that implement
// CallSystem; suite_calls.go), each filling its own fields of
// Sample. main runs every selected suite for every system that Supports it.
type Suite interface {
	Name() string
	// Scenarios lists the scenario ids the suite can run (for -scenarios).
	Scenarios() []string
	Supports(System) bool
	// Run opens a cluster of n participants of sys, runs the scenarios
	// env selects, and records them in s.
	Run(ctx context.Context, sys System, n int, env *Env, s *Sample) error
}

// suites lists every suite, in order.
func suites() []Suite { return []Suite{pubsubSuite{}, storeSuite{}, callsSuite{}} }

// Env is what every suite gets besides the system.
type Env struct {
	P         Params
	Scenarios map[string]bool // selected scenario ids
	Open      OpenOptions
	// CPUProfile, if set, is written over the scenarios of the first
	// cluster that runs any (pub/sub, else calls), after it opened and
	// warmed up, before it closes.
	CPUProfile string
	Logf       func(format string, args ...any)
	profiled   bool
}

func (e *Env) want(id string) bool { return e.Scenarios[id] }

// startProfile starts the CPU profile if one was asked for; the returned
// function stops it.
func (e *Env) startProfile() (stop func(), err error) {
	if e.CPUProfile == "" || e.profiled {
		return func() {}, nil
	}
	e.profiled = true
	f, err := os.Create(e.CPUProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// Sample is one run of one system at one cluster size: every figure the
// suites measured. Aggregation over runs happens in report.go.
type Sample struct {
	Run    int    `json:"run"`
	System string `json:"system"`
	N      int    `json:"n"`
	Error  string `json:"error,omitempty"`
	// OpenSecs is how long the cluster took to start and warm up.
	OpenSecs float64 `json:"open_secs"`
	// WarmupDelivered is the % of warm-up messages every subscriber got.
	WarmupDelivered float64            `json:"warmup_delivered_pct"`
	Latency         *LatencyResult     `json:"latency,omitempty"`
	Throughput      []ThroughputResult `json:"throughput,omitempty"`
	// HeaderThroughput is scenario 2 at 256 B with benchHeader on every
	// message (the headers scenario; systems with HeaderPublisher).
	HeaderThroughput *ThroughputResult `json:"throughput_header,omitempty"`
	Burst            []BurstResult     `json:"burst,omitempty"`
	Memory           *MemResult        `json:"memory,omitempty"`
	// Store is scenarios 4–8 (at N = Params.StoreN only).
	Store *StoreResult `json:"store,omitempty"`
	// Calls is request/reply and queue groups (at N = Params.CallsN only).
	Calls *CallsResult `json:"calls,omitempty"`
	// Stale counts deliveries that arrived after their trial had ended.
	Stale uint64 `json:"stale_deliveries"`
	// After Close: goroutines left over the count before the cluster
	// opened, and the process's CPU use in the following 500 ms (a
	// cluster that does not stop would skew the next system's figures).
	LeftGoroutines int     `json:"left_goroutines"`
	AfterCloseCPU  float64 `json:"after_close_cpu_pct"`
	// Reopened counts clusters replaced because an earlier trial's backlog
	// was still being delivered (see handle).
	Reopened int `json:"reopened"`
}

// pubsubSuite is scenarios 1–3 of benchmarks.md: one publisher, N−1
// subscribers, one topic; and the headers scenario (2 at 256 B with a
// small header on every message).
type pubsubSuite struct{}

// scHeaders is the headers scenario's id.
const scHeaders = "headers"

func (pubsubSuite) Name() string         { return "pubsub" }
func (pubsubSuite) Scenarios() []string  { return []string{"latency", "throughput", "burst", scHeaders} }
func (pubsubSuite) Supports(System) bool { return true }
func (p pubsubSuite) selected(e *Env) bool {
	for _, id := range p.Scenarios() {
		if e.want(id) {
			return true
		}
	}
	return false
}

func (p pubsubSuite) Run(ctx context.Context, sys System, n int, env *Env, s *Sample) (err error) {
	if !p.selected(env) {
		return nil
	}
	base := settledMem(nil)
	goroutines := runtime.NumGoroutine()
	h := &handle{sys: sys, n: n, env: env, rec: newRecorder(n - 1)}
	t0 := time.Now()
	if s.WarmupDelivered, err = h.open(ctx); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	s.OpenSecs = time.Since(t0).Seconds()
	defer func() {
		if cerr := h.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
		s.Stale = h.rec.stale.Load()
		s.Reopened = h.reopened
		c0, t0 := cpuTime(), time.Now()
		time.Sleep(500 * time.Millisecond)
		s.AfterCloseCPU = 100 * (cpuTime() - c0).Seconds() / time.Since(t0).Seconds()
		s.LeftGoroutines = runtime.NumGoroutine() - goroutines
		if s.LeftGoroutines > 0 || s.AfterCloseCPU > 20 {
			env.Logf("    after close: %d goroutines left, %.0f%% CPU", s.LeftGoroutines, s.AfterCloseCPU)
		}
	}()
	idle := settledMem(h.c.ServerPIDs())
	mem := &MemResult{
		IdleHeapMB:   perNode(idle.Heap, base.Heap, n),
		IdleHeldMB:   perNode(idle.Held, base.Held, n),
		ServerIdleMB: float64(idle.ServerRSS) / mb,
	}
	s.Memory = mem

	stop, err := env.startProfile()
	if err != nil {
		return err
	}
	defer stop()

	if env.want("latency") && ctx.Err() == nil {
		env.Logf("    latency: %d B at %.0f msg/s for %v", env.P.LatencySize, env.P.LatencyRate, env.P.LatencyFor)
		if s.Latency, err = runLatency(ctx, h); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if env.want("throughput") {
		for _, size := range env.P.Sizes {
			if ctx.Err() != nil {
				break
			}
			env.Logf("    throughput: %d B", size)
			tr, err := runThroughput(ctx, h, size)
			s.Throughput = append(s.Throughput, tr)
			if err != nil {
				return fmt.Errorf("throughput %d B: %w", size, err)
			}
		}
	}
	if env.want(scHeaders) && ctx.Err() == nil {
		if _, ok := h.c.(HeaderPublisher); !ok {
			env.Logf("    headers: %s has no headers, skipped", sys.Name())
		} else {
			env.Logf("    headers: %d B with %d header keys", small, len(benchHeader))
			h.header = true
			tr, err := runThroughput(ctx, h, small)
			h.header = false
			s.HeaderThroughput = &tr
			if err != nil {
				return fmt.Errorf("headers: %w", err)
			}
		}
	}
	if env.want("burst") {
		for _, size := range env.P.Sizes {
			if ctx.Err() != nil {
				break
			}
			env.Logf("    burst: %d × %d B", env.P.BurstCount[size], size)
			var peak *memPeak
			b, err := runBurst(ctx, h, size, func(c PubSubCluster) {
				if size == large {
					runtime.GC()
					peak = startMemPeak(c.ServerPIDs(), 10*time.Millisecond)
				}
			})
			if peak != nil {
				pk := peak.done()
				mem.BurstSizeBytes = size
				mem.BurstHeapMB = perNode(pk.Heap, base.Heap, n)
				mem.BurstHeldMB = perNode(pk.Held, base.Held, n)
				mem.ProcessRSSMB = float64(pk.RSS) / mb
				mem.ServerBurstMB = float64(pk.ServerRSS) / mb
			}
			if err != nil {
				return fmt.Errorf("burst %d B: %w", size, err)
			}
			env.Logf("      sent %d in %.2fs (max call %.1f ms), delivered %.1f%%, drops: %v",
				b.Sent, b.PublishSecs, b.MaxCallMS, b.Delivered, b.Drops)
			s.Burst = append(s.Burst, b)
		}
	}
	return nil
}

// warmup sends a few paced messages and waits for them, so that connections,
// meshes and buffers are warm before anything is measured. It returns the %
// of them that the worst subscriber got.
func warmup(ctx context.Context, c PubSubCluster, rec *recorder, p Params) float64 {
	if p.Warmup == 0 {
		return 100
	}
	t := rec.begin(0)
	pr := publish(ctx, c, t, load{size: small, count: p.Warmup, rate: 1000, limit: 10 * time.Second})
	t.waitDelivered(ctx, int64(pr.Sent), 2*time.Second, 10*time.Second)
	return pct(t.minCount(), int64(p.Warmup))
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
