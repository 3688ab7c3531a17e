package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reflectmesh/reflect/bench/participant"
)

// ProcsSample is one run of one system at one N in the -procs mode: every
// participant (and server) its own process.
type ProcsSample struct {
	Run    int    `json:"run"`
	System string `json:"system"`
	N      int    `json:"n"`
	Error  string `json:"error,omitempty"`
	// LoadAvg is /proc/loadavg when the sample started.
	LoadAvg         string  `json:"loadavg"`
	OpenSecs        float64 `json:"open_secs"`
	WarmupDelivered float64 `json:"warmup_delivered_pct"`
	// FormationDrops are the drop counters of every process from its
	// start until the warm-up ended (connections, mesh formation and 200
	// paced messages); nil in results written before it was recorded.
	FormationDrops *Drops            `json:"formation_drops,omitempty"`
	Latency        *LatencyResult    `json:"latency,omitempty"`
	Throughput     []ProcsThroughput `json:"throughput,omitempty"`
	Procs          []ProcFigures     `json:"procs"`
	// Join is the store scenario (at N = Params.StoreN, systems with a
	// store), on a cluster of its own.
	Join   *ProcsJoin `json:"join,omitempty"`
	Reused int        `json:"unquiet_trials,omitempty"`
	byPID  map[int]*ProcFigures
}

// ProcsThroughput is one unpaced run (scenario 2's first step) across
// processes, with what it cost every process of the system.
type ProcsThroughput struct {
	Size int `json:"size"`
	Sent int `json:"sent"`
	// PubRate is what the publisher achieved (sent / publishing time).
	PubRate float64 `json:"publish_per_sec"`
	// Delivered is the worst subscriber's share of the sent messages, %;
	// MsgsPerSec its delivery rate (messages ÷ (its last receive − first
	// send)); MBPerSec the same in 10⁶ bytes.
	Delivered  float64 `json:"min_delivered_pct"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
	Lossless   bool    `json:"lossless"`
	// Deliveries is the sum over subscribers; CPUSecs the CPU time of
	// every process of the system (servers included) from the first send
	// until the deliveries ended; Switches their context switches.
	Deliveries int64   `json:"deliveries"`
	CPUSecs    float64 `json:"cpu_secs"`
	Switches   uint64  `json:"context_switches"`
	// CPUPerMsgUS is CPUSecs per delivery, µs; SwitchesPerMsg likewise.
	CPUPerMsgUS    float64 `json:"cpu_per_delivery_us"`
	SwitchesPerMsg float64 `json:"switches_per_delivery"`
	Drops          Drops   `json:"drops"`
}

// ProcFigures is one process of a sample.
type ProcFigures struct {
	Role string `json:"role"`
	// Idle: after warm-up and Params.MemIdle without traffic.
	IdleRSSMB  float64 `json:"idle_rss_mb"`
	IdleAnonMB float64 `json:"idle_private_mb"`
	// IdleCPUPct and IdleWakeups are CPU (% of one core) and context
	// switches per second over procsIdleWindow right after.
	IdleCPUPct  float64 `json:"idle_cpu_pct"`
	IdleWakeups float64 `json:"idle_switches_per_sec"`
	// Peak: sampled every procsPeakEvery during the latency and
	// throughput scenarios.
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	PeakAnonMB float64 `json:"peak_private_mb"`
}

const (
	procsIdleWindow = 2 * time.Second
	procsPeakEvery  = 20 * time.Millisecond
)

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// runProcsSample opens one cluster of sys and runs the -procs scenarios
// env selects on it (latency, throughput; memory and CPU always).
// bin is the directory of the participant binaries.
func runProcsSample(ctx context.Context, bin, sys string, n int, env *Env, s *ProcsSample) (err error) {
	t0 := time.Now()
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	c, err := openProcs(octx, bin, sys, n, env.Open.Star, false)
	cancel()
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := c.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	d := &driver{c: c, p: env.P, logf: env.Logf}
	procs := c.processes()
	s.byPID = map[int]*ProcFigures{}
	s.Procs = make([]ProcFigures, len(procs))
	for i, pr := range procs {
		s.Procs[i].Role = pr.role
		s.byPID[pr.pid] = &s.Procs[i]
	}

	if s.WarmupDelivered, err = d.warmup(ctx); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	s.OpenSecs = time.Since(t0).Seconds()
	fd := c.drops(ctx)
	s.FormationDrops = &fd
	env.Logf("    formed and warmed up in %.2fs; drops so far: %s", s.OpenSecs, cmp.Or(fd.String(), "none"))

	// Idle: settle, then a window of CPU and wake-ups, memory at its end.
	sleepCtx(ctx, env.P.MemIdle)
	before := readAll(procs)
	w0 := time.Now()
	sleepCtx(ctx, procsIdleWindow)
	after := readAll(procs)
	win := time.Since(w0).Seconds()
	for _, pr := range procs {
		f, b, a := s.byPID[pr.pid], before[pr.pid], after[pr.pid]
		f.IdleRSSMB, f.IdleAnonMB = float64(a.RSS)/mb, float64(a.Anon)/mb
		f.IdleCPUPct = 100 * (a.CPU - b.CPU).Seconds() / win
		f.IdleWakeups = float64(a.Switches-b.Switches) / win
	}

	peak := startPeaks(procs, procsPeakEvery)
	defer func() {
		for pid, r := range peak.done() {
			f := s.byPID[pid]
			f.PeakRSSMB, f.PeakAnonMB = float64(r.RSS)/mb, float64(r.Anon)/mb
		}
		s.Reused = d.unquiet
	}()

	if env.want("latency") && ctx.Err() == nil {
		env.Logf("    latency: %d B at %.0f msg/s for %v", env.P.LatencySize, env.P.LatencyRate, env.P.LatencyFor)
		if s.Latency, err = d.latency(ctx); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		env.Logf("      p50 %.0f µs, p99 %.0f µs, delivered %.2f%%", s.Latency.P50, s.Latency.P99, s.Latency.Delivered)
	}
	if env.want("throughput") {
		for _, size := range env.P.Sizes {
			if ctx.Err() != nil {
				break
			}
			tr, err := d.throughput(ctx, size, procs)
			if err != nil {
				return fmt.Errorf("throughput %d B: %w", size, err)
			}
			env.Logf("    throughput %d B: sent %d at %.0f/s, worst subscriber %.1f%% at %.0f/s (%.1f MB/s); %.2f µs CPU and %.2f switches per delivery; drops: %v",
				size, tr.Sent, tr.PubRate, tr.Delivered, tr.MsgsPerSec, tr.MBPerSec, tr.CPUPerMsgUS, tr.SwitchesPerMsg, tr.Drops)
			s.Throughput = append(s.Throughput, tr)
		}
	}
	return ctx.Err()
}

// driver runs trials on a procsCluster.
type driver struct {
	c       *procsCluster
	p       Params
	logf    func(string, ...any)
	trial   uint32
	unquiet int // trials begun while an earlier one was still delivering
}

// subs are the subscriber processes.
func (d *driver) subs() []*proc { return d.c.parts[1:] }

// callSubs sends c to every subscriber at once.
func (d *driver) callSubs(ctx context.Context, c participant.Command) ([]participant.Reply, error) {
	subs := d.subs()
	rs := make([]participant.Reply, len(subs))
	errs := make([]error, len(subs))
	parallel(len(subs), func(i int) { rs[i], errs[i] = subs[i].call(ctx, c) })
	return rs, errors.Join(errs...)
}

// begin waits (at most quiesceMax) until no subscriber receives anything,
// then starts a new trial on all of them.
func (d *driver) begin(ctx context.Context, keep int) (uint32, error) {
	quiet, err := d.waitIdle(ctx, d.p.DrainIdle, quiesceMax, func([]participant.Reply) bool { return false })
	if err != nil {
		return 0, err
	}
	if !quiet {
		d.unquiet++
		d.logf("      still delivering an earlier trial after %v; going on", quiesceMax)
	}
	d.trial++
	_, err = d.callSubs(ctx, participant.Command{Op: "begin", Trial: d.trial, Keep: keep})
	return d.trial, err
}

// waitIdle polls the subscribers until done says so (it returns true),
// no delivery of any trial happened for idle (false) or maxWait passed
// (false). The last poll's replies go to done.
func (d *driver) waitIdle(ctx context.Context, idle, maxWait time.Duration, done func([]participant.Reply) bool) (bool, error) {
	deadline := time.Now().Add(maxWait)
	var last uint64
	lastChange := time.Now()
	for first := true; ; first = false {
		rs, err := d.callSubs(ctx, participant.Command{Op: "count"})
		if err != nil {
			return false, err
		}
		if done(rs) {
			return true, nil
		}
		var all uint64
		for _, r := range rs {
			all += r.All
		}
		n := time.Now()
		if first || all != last {
			last, lastChange = all, n
		}
		if n.Sub(lastChange) >= idle {
			return true, nil
		}
		if n.After(deadline) {
			return false, nil
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return false, err
		}
	}
}

// publish runs l on the publisher as trial id.
func (d *driver) publish(ctx context.Context, id uint32, l load) (*participant.PubReport, error) {
	r, err := d.c.parts[0].call(ctx, participant.Command{Op: "publish", Trial: id, Size: l.size, Count: l.count,
		Rate: l.rate, LimitNS: int64(l.limit)})
	if err == nil && r.Pub == nil {
		err = fmt.Errorf("%w: publish without a report", participant.ErrProtocol)
	}
	return r.Pub, err
}

// deliver waits until every subscriber has want messages of the current
// trial (or they stop coming, or DrainMax) and returns the last counts.
func (d *driver) deliver(ctx context.Context, want int64) ([]participant.Reply, error) {
	var last []participant.Reply
	_, err := d.waitIdle(ctx, d.p.DrainIdle, d.p.DrainMax, func(rs []participant.Reply) bool {
		last = rs
		for _, r := range rs {
			if r.Count < want {
				return false
			}
		}
		return true
	})
	return last, err
}

// warmup is warmup (suite.go) across processes.
func (d *driver) warmup(ctx context.Context) (float64, error) {
	if d.p.Warmup == 0 {
		return 100, nil
	}
	id, err := d.begin(ctx, 0)
	if err != nil {
		return 0, err
	}
	pr, err := d.publish(ctx, id, load{size: small, count: d.p.Warmup, rate: 1000, limit: 10 * time.Second})
	if err != nil {
		return 0, err
	}
	rs, err := d.deliver(ctx, int64(pr.Sent))
	if err != nil {
		return 0, err
	}
	return pct(minCount(rs), int64(d.p.Warmup)), nil
}

func minCount(rs []participant.Reply) int64 {
	m := int64(-1)
	for _, r := range rs {
		m = min64(m, r.Count)
	}
	return max(m, 0)
}

// latency is scenario 1 (runLatency) across processes.
func (d *driver) latency(ctx context.Context) (*LatencyResult, error) {
	p := d.p
	count := int(p.LatencyRate * p.LatencyFor.Seconds())
	id, err := d.begin(ctx, count)
	if err != nil {
		return nil, err
	}
	d0 := d.c.drops(ctx)
	pr, err := d.publish(ctx, id, load{size: p.LatencySize, count: count, rate: p.LatencyRate, limit: p.LatencyFor + 5*time.Second})
	if err != nil {
		return nil, err
	}
	if _, err := d.deliver(ctx, int64(pr.Sent)); err != nil {
		return nil, err
	}
	rs, err := d.callSubs(ctx, participant.Command{Op: "latencies"})
	if err != nil {
		return nil, err
	}
	var lat []int64
	for _, r := range rs {
		lat = append(lat, r.Lat...)
	}
	slices.Sort(lat)
	return &LatencyResult{
		Sent:      pr.Sent,
		Delivered: pct(int64(len(lat)), int64(pr.Sent)*int64(len(rs))),
		P50:       quantileUS(lat, 0.50),
		P99:       quantileUS(lat, 0.99),
		P999:      quantileUS(lat, 0.999),
		Max:       quantileUS(lat, 1),
		MaxCallUS: float64(pr.MaxCallNS) / 1e3,
		Drops:     d.c.drops(ctx).sub(d0),
	}, nil
}

// throughput is scenario 2's unpaced run across processes, with the CPU
// time and context switches of every process of the system.
func (d *driver) throughput(ctx context.Context, size int, procs []pidRole) (ProcsThroughput, error) {
	p := d.p
	tr := ProcsThroughput{Size: size}
	id, err := d.begin(ctx, 0)
	if err != nil {
		return tr, err
	}
	d0 := d.c.drops(ctx)
	before := readAll(procs)
	pr, err := d.publish(ctx, id, load{size: size, count: p.ThroughputCount[size], limit: p.ThroughputFor})
	if err != nil {
		return tr, err
	}
	rs, err := d.deliver(ctx, int64(pr.Sent))
	if err != nil {
		return tr, err
	}
	after := readAll(procs)
	tr.Drops = d.c.drops(ctx).sub(d0)
	tr.Sent = pr.Sent
	if e := pr.EndNS - pr.StartNS; e > 0 {
		tr.PubRate = float64(pr.Sent) / (float64(e) / 1e9)
	}
	tr.MsgsPerSec = -1
	for _, r := range rs {
		tr.Deliveries += r.Count
		rate := 0.0
		if span := r.Last - pr.StartNS; r.Count > 0 && span > 0 {
			rate = float64(r.Count) / (float64(span) / 1e9)
		}
		if tr.MsgsPerSec < 0 || rate < tr.MsgsPerSec {
			tr.MsgsPerSec = rate
		}
	}
	tr.MsgsPerSec = max(tr.MsgsPerSec, 0)
	tr.MBPerSec = tr.MsgsPerSec * float64(size) / mb
	mc := minCount(rs)
	tr.Delivered = pct(mc, int64(pr.Sent))
	tr.Lossless = pr.Sent > 0 && pr.Errors == 0 && mc == int64(pr.Sent)
	for _, pp := range procs {
		tr.CPUSecs += (after[pp.pid].CPU - before[pp.pid].CPU).Seconds()
		tr.Switches += after[pp.pid].Switches - before[pp.pid].Switches
	}
	if tr.Deliveries > 0 {
		tr.CPUPerMsgUS = tr.CPUSecs * 1e6 / float64(tr.Deliveries)
		tr.SwitchesPerMsg = float64(tr.Switches) / float64(tr.Deliveries)
	}
	return tr, nil
}

// readAll reads every process's /proc figures (zero for one that is gone).
func readAll(procs []pidRole) map[int]procStat {
	out := make(map[int]procStat, len(procs))
	for _, p := range procs {
		st, _ := readProcStat(p.pid)
		out[p.pid] = st
	}
	return out
}

// peaks samples the memory of processes until done and keeps each one's
// highest RSS and private memory.
type peaks struct {
	stop chan struct{}
	wg   sync.WaitGroup
	max  map[int]procStat
}

func startPeaks(procs []pidRole, every time.Duration) *peaks {
	pk := &peaks{stop: make(chan struct{}), max: map[int]procStat{}}
	pk.wg.Add(1)
	go func() {
		defer pk.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for _, p := range procs {
				rss, anon := procMem(p.pid)
				m := pk.max[p.pid]
				m.RSS, m.Anon = max(m.RSS, rss), max(m.Anon, anon)
				pk.max[p.pid] = m
			}
			select {
			case <-pk.stop:
				return
			case <-t.C:
			}
		}
	}()
	return pk
}

// done stops sampling and returns the peaks by PID.
func (pk *peaks) done() map[int]procStat {
	close(pk.stop)
	pk.wg.Wait()
	return pk.max
}

// sleepCtx sleeps for d or until ctx ends, returning ctx's error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
