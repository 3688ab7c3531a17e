package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// ProcsResults is everything one -procs invocation measured; it is that
// mode's JSON output (results-procs.json), and BENCHMARKS.md's headline
// tables.
type ProcsResults struct {
	Machine   Machine        `json:"machine"`
	Quick     bool           `json:"quick"`
	Ns        []int          `json:"ns"`
	Runs      int            `json:"runs"`
	Topology  string         `json:"topology"`
	Params    Params         `json:"params"`
	Systems   []SystemInfo   `json:"systems"`
	Samples   []ProcsSample  `json:"samples"`
	Summaries []ProcsSummary `json:"summaries"`
	Ratios    []ProcsRatio   `json:"ratios"`
	// Crypto is Reflect's crypto ceiling for large messages, measured at
	// the start of the invocation.
	Crypto      *CryptoCeiling `json:"crypto_ceiling,omitempty"`
	ElapsedSecs float64        `json:"elapsed_secs"`
}

// ProcsSummary is one system at one N over all runs of the -procs mode.
type ProcsSummary struct {
	System       string             `json:"system"`
	N            int                `json:"n"`
	Runs         int                `json:"runs"`
	Errors       []string           `json:"errors,omitempty"`
	P50          Stat               `json:"p50_us"`
	P99          Stat               `json:"p99_us"`
	P999         Stat               `json:"p999_us"`
	LatDelivered Stat               `json:"latency_delivered_pct"`
	Sizes        []ProcsSizeSummary `json:"sizes"`
	Roles        []ProcsRoleSummary `json:"roles"`
	// IdleRSSMB is the sum over every process of the system.
	IdleRSSMB Stat `json:"idle_rss_mb_all_processes"`
	// Join is the store scenario, if it ran.
	Join *ProcsJoinSummary `json:"join,omitempty"`
}

// ProcsJoinSummary is ProcsJoin over runs.
type ProcsJoinSummary struct {
	Keys           int  `json:"keys"`
	FillSecs       Stat `json:"fill_secs"`
	ReplicatedSecs Stat `json:"replicated_secs"`
	HolderRSSMB    Stat `json:"holder_rss_mb"`
	HolderAnonMB   Stat `json:"holder_private_mb"`
	ServerRSSMB    Stat `json:"server_rss_mb"`
	ServerAnonMB   Stat `json:"server_private_mb"`
	UpSecs         Stat `json:"up_secs"`
	JoinSecs       Stat `json:"join_secs"`
	JoinerRSSMB    Stat `json:"joiner_rss_mb"`
	JoinerAnonMB   Stat `json:"joiner_private_mb"`
	JoinerPeakMB   Stat `json:"joiner_peak_rss_mb"`
	// PeakRatio is the joiner's peak RSS ÷ its final RSS.
	PeakRatio Stat `json:"joiner_peak_to_final"`
}

// ProcsSizeSummary is the unpaced run of one message size.
type ProcsSizeSummary struct {
	Size           int  `json:"size"`
	MsgsPerSec     Stat `json:"msgs_per_sec"`
	MBPerSec       Stat `json:"mb_per_sec"`
	Delivered      Stat `json:"min_delivered_pct"`
	CPUPerMsgUS    Stat `json:"cpu_per_delivery_us"`
	SwitchesPerMsg Stat `json:"switches_per_delivery"`
}

// ProcsRoleSummary is the processes of one role (publisher, subscriber,
// server): within a run the median over its processes, then over runs.
type ProcsRoleSummary struct {
	Role        string `json:"role"`
	Processes   int    `json:"processes"`
	IdleRSSMB   Stat   `json:"idle_rss_mb"`
	IdleAnonMB  Stat   `json:"idle_private_mb"`
	PeakRSSMB   Stat   `json:"peak_rss_mb"`
	PeakAnonMB  Stat   `json:"peak_private_mb"`
	IdleCPUPct  Stat   `json:"idle_cpu_pct"`
	IdleWakeups Stat   `json:"idle_switches_per_sec"`
}

// ProcsRatio is Reflect ÷ a baseline, taken within each run, then the
// median (and range) over runs. For latency and CPU lower is better, for
// rates higher.
type ProcsRatio struct {
	Baseline     string `json:"baseline"`
	N            int    `json:"n"`
	P50          Stat   `json:"p50"`
	P99          Stat   `json:"p99"`
	Msgs256      Stat   `json:"msgs_per_sec_256"`
	MB64K        Stat   `json:"mb_per_sec_64k"`
	CPU256       Stat   `json:"cpu_per_delivery_256"`
	CPU64K       Stat   `json:"cpu_per_delivery_64k"`
	IdleRSS      Stat   `json:"idle_rss_per_subscriber"`
	IdleAnon     Stat   `json:"idle_private_per_subscriber"`
	IdleRSSTotal Stat   `json:"idle_rss_all_processes"`
	// JoinSecs is the store join, from exec until every key is held.
	JoinSecs Stat `json:"join_secs"`
}

// analyzeProcs derives the summaries and ratios from res.Samples.
func analyzeProcs(res *ProcsResults) {
	res.Summaries, res.Ratios = nil, nil
	var names []string
	for _, s := range res.Systems {
		if s.Unavailable == "" {
			names = append(names, s.Name)
		}
	}
	for _, n := range res.Ns {
		for _, name := range names {
			res.Summaries = append(res.Summaries, summarizeProcs(res.Samples, name, n, res.Params.Sizes))
		}
		if slices.Contains(names, procsSystems[0]) {
			for _, b := range names {
				if b != procsSystems[0] {
					res.Ratios = append(res.Ratios, procsRatios(res.Samples, procsSystems[0], b, n))
				}
			}
		}
	}
}

func (s *ProcsSample) size(size int) *ProcsThroughput {
	for i := range s.Throughput {
		if s.Throughput[i].Size == size {
			return &s.Throughput[i]
		}
	}
	return nil
}

// role returns the median of f over the sample's processes of role (NaN
// if there are none).
func (s *ProcsSample) role(role string, f func(ProcFigures) float64) float64 {
	var v []float64
	for _, p := range s.Procs {
		if p.Role == role {
			v = append(v, f(p))
		}
	}
	return statOf(v).Median
}

// idleRSSTotal is the idle RSS of every process of the sample, summed.
func (s *ProcsSample) idleRSSTotal() float64 {
	t := 0.0
	for _, p := range s.Procs {
		t += p.IdleRSSMB
	}
	if len(s.Procs) == 0 {
		return math.NaN()
	}
	return t
}

// samplesOf returns the samples of system at n that have no error.
func samplesOf(all []ProcsSample, system string, n int) (ok []ProcsSample, errs []string) {
	for _, s := range all {
		if s.System != system || s.N != n {
			continue
		}
		if s.Error != "" {
			errs = append(errs, fmt.Sprintf("run %d: %s", s.Run, s.Error))
		}
		ok = append(ok, s)
	}
	return ok, errs
}

// over collects f of every sample (NaN where it has none).
func over(ss []ProcsSample, f func(*ProcsSample) float64) Stat {
	v := make([]float64, len(ss))
	for i := range ss {
		v[i] = f(&ss[i])
	}
	return statOf(v)
}

func latencyOf(f func(*LatencyResult) float64) func(*ProcsSample) float64 {
	return func(s *ProcsSample) float64 {
		if s.Latency == nil || s.Latency.Sent == 0 {
			return math.NaN()
		}
		return f(s.Latency)
	}
}

func sizeOf(size int, f func(*ProcsThroughput) float64) func(*ProcsSample) float64 {
	return func(s *ProcsSample) float64 {
		if t := s.size(size); t != nil && t.Sent > 0 {
			return f(t)
		}
		return math.NaN()
	}
}

func joinOf(f func(*ProcsJoin) float64) func(*ProcsSample) float64 {
	return func(s *ProcsSample) float64 {
		if s.Join == nil || s.Join.JoinSecs <= 0 {
			return math.NaN()
		}
		return f(s.Join)
	}
}

// summarizeJoin is nil if no run of ss joined.
func summarizeJoin(ss []ProcsSample) *ProcsJoinSummary {
	keys := 0
	for _, s := range ss {
		if s.Join != nil && s.Join.JoinSecs > 0 {
			keys = s.Join.Keys
		}
	}
	if keys == 0 {
		return nil
	}
	j := func(f func(*ProcsJoin) float64) Stat { return over(ss, joinOf(f)) }
	return &ProcsJoinSummary{Keys: keys,
		FillSecs:       j(func(j *ProcsJoin) float64 { return j.FillSecs }),
		ReplicatedSecs: j(func(j *ProcsJoin) float64 { return j.ReplicatedSecs }),
		HolderRSSMB:    j(func(j *ProcsJoin) float64 { return j.HolderRSSMB }),
		HolderAnonMB:   j(func(j *ProcsJoin) float64 { return j.HolderAnonMB }),
		ServerRSSMB:    j(func(j *ProcsJoin) float64 { return nanIfZero(j.ServerRSSMB) }),
		ServerAnonMB:   j(func(j *ProcsJoin) float64 { return nanIfZero(j.ServerAnonMB) }),
		UpSecs:         j(func(j *ProcsJoin) float64 { return j.UpSecs }),
		JoinSecs:       j(func(j *ProcsJoin) float64 { return j.JoinSecs }),
		JoinerRSSMB:    j(func(j *ProcsJoin) float64 { return j.JoinerRSSMB }),
		JoinerAnonMB:   j(func(j *ProcsJoin) float64 { return j.JoinerAnonMB }),
		JoinerPeakMB:   j(func(j *ProcsJoin) float64 { return j.JoinerPeakRSSMB }),
		PeakRatio:      j(func(j *ProcsJoin) float64 { return j.JoinerPeakRSSMB / j.JoinerRSSMB }),
	}
}

func summarizeProcs(all []ProcsSample, system string, n int, sizes []int) ProcsSummary {
	ss, errs := samplesOf(all, system, n)
	sum := ProcsSummary{System: system, N: n, Runs: len(ss), Errors: errs,
		P50:          over(ss, latencyOf(func(l *LatencyResult) float64 { return l.P50 })),
		P99:          over(ss, latencyOf(func(l *LatencyResult) float64 { return l.P99 })),
		P999:         over(ss, latencyOf(func(l *LatencyResult) float64 { return l.P999 })),
		LatDelivered: over(ss, latencyOf(func(l *LatencyResult) float64 { return l.Delivered })),
		IdleRSSMB:    over(ss, (*ProcsSample).idleRSSTotal),
		Join:         summarizeJoin(ss),
	}
	for _, size := range sizes {
		sum.Sizes = append(sum.Sizes, ProcsSizeSummary{Size: size,
			MsgsPerSec:     over(ss, sizeOf(size, func(t *ProcsThroughput) float64 { return t.MsgsPerSec })),
			MBPerSec:       over(ss, sizeOf(size, func(t *ProcsThroughput) float64 { return t.MBPerSec })),
			Delivered:      over(ss, sizeOf(size, func(t *ProcsThroughput) float64 { return t.Delivered })),
			CPUPerMsgUS:    over(ss, sizeOf(size, func(t *ProcsThroughput) float64 { return t.CPUPerMsgUS })),
			SwitchesPerMsg: over(ss, sizeOf(size, func(t *ProcsThroughput) float64 { return t.SwitchesPerMsg })),
		})
	}
	for _, role := range []string{rolePub, roleSub, roleServer} {
		count := 0
		for _, s := range ss {
			c := 0
			for _, p := range s.Procs {
				if p.Role == role {
					c++
				}
			}
			count = max(count, c)
		}
		if count == 0 {
			continue
		}
		r := func(f func(ProcFigures) float64) Stat {
			return over(ss, func(s *ProcsSample) float64 { return s.role(role, f) })
		}
		sum.Roles = append(sum.Roles, ProcsRoleSummary{Role: role, Processes: count,
			IdleRSSMB:   r(func(p ProcFigures) float64 { return p.IdleRSSMB }),
			IdleAnonMB:  r(func(p ProcFigures) float64 { return p.IdleAnonMB }),
			PeakRSSMB:   r(func(p ProcFigures) float64 { return p.PeakRSSMB }),
			PeakAnonMB:  r(func(p ProcFigures) float64 { return p.PeakAnonMB }),
			IdleCPUPct:  r(func(p ProcFigures) float64 { return p.IdleCPUPct }),
			IdleWakeups: r(func(p ProcFigures) float64 { return p.IdleWakeups }),
		})
	}
	return sum
}

func (s ProcsSummary) size(size int) ProcsSizeSummary {
	for _, z := range s.Sizes {
		if z.Size == size {
			return z
		}
	}
	nan := statOf(nil)
	return ProcsSizeSummary{Size: size, MsgsPerSec: nan, MBPerSec: nan, Delivered: nan, CPUPerMsgUS: nan, SwitchesPerMsg: nan}
}

// hasPubSub reports whether the pub/sub scenarios measured anything.
func (s ProcsSummary) hasPubSub() bool {
	if s.P50.ok() {
		return true
	}
	for _, z := range s.Sizes {
		if z.MsgsPerSec.ok() {
			return true
		}
	}
	return false
}

func (s ProcsSummary) role(role string) (ProcsRoleSummary, bool) {
	for _, r := range s.Roles {
		if r.Role == role {
			return r, true
		}
	}
	return ProcsRoleSummary{}, false
}

// procsRatios pairs the runs of sys and base at n by run number.
func procsRatios(all []ProcsSample, sys, base string, n int) ProcsRatio {
	a, _ := samplesOf(all, sys, n)
	b, _ := samplesOf(all, base, n)
	ratio := func(f func(*ProcsSample) float64) Stat {
		var v []float64
		for i := range a {
			for j := range b {
				if a[i].Run == b[j].Run {
					v = append(v, f(&a[i])/f(&b[j]))
				}
			}
		}
		return statOf(v)
	}
	subRSS := func(s *ProcsSample) float64 {
		return s.role(roleSub, func(p ProcFigures) float64 { return p.IdleRSSMB })
	}
	subAnon := func(s *ProcsSample) float64 {
		return s.role(roleSub, func(p ProcFigures) float64 { return p.IdleAnonMB })
	}
	return ProcsRatio{Baseline: base, N: n,
		P50:          ratio(latencyOf(func(l *LatencyResult) float64 { return l.P50 })),
		P99:          ratio(latencyOf(func(l *LatencyResult) float64 { return l.P99 })),
		Msgs256:      ratio(sizeOf(small, func(t *ProcsThroughput) float64 { return t.MsgsPerSec })),
		MB64K:        ratio(sizeOf(large, func(t *ProcsThroughput) float64 { return t.MBPerSec })),
		CPU256:       ratio(sizeOf(small, func(t *ProcsThroughput) float64 { return t.CPUPerMsgUS })),
		CPU64K:       ratio(sizeOf(large, func(t *ProcsThroughput) float64 { return t.CPUPerMsgUS })),
		IdleRSS:      ratio(subRSS),
		IdleAnon:     ratio(subAnon),
		IdleRSSTotal: ratio((*ProcsSample).idleRSSTotal),
		JoinSecs:     ratio(joinOf(func(j *ProcsJoin) float64 { return j.JoinSecs })),
	}
}

// lossMark flags an unpaced run in which some subscriber missed messages:
// its rate is not a lossless one.
func lossMark(delivered Stat) string {
	if delivered.ok() && delivered.Min < 100 {
		return " !"
	}
	return ""
}

// ceilingPct is Reflect's 64 KiB rate as a % of its crypto ceiling at
// that N (other systems: –).
func ceilingPct(res *ProcsResults, s ProcsSummary, lg ProcsSizeSummary) string {
	c := res.Crypto.perSubscriber(s.N)
	if s.System != procsSystems[0] || c <= 0 || !lg.MBPerSec.ok() {
		return "–"
	}
	return fmt.Sprintf("%.0f%% of %.0f MB/s", 100*lg.MBPerSec.Median/c, c)
}

// ratioX prints a ratio as 0.83× (range).
func ratioX(s Stat) string {
	if !s.ok() {
		return "–"
	}
	if s.Runs < 2 {
		return fmt.Sprintf("%.2f×", s.Median)
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", s.Median, s.Min, s.Max)
}

// memPair prints RSS / private.
func memPair(rss, anon Stat) string {
	if !rss.ok() {
		return "–"
	}
	return rss.short() + " / " + anon.short()
}

// procsTables builds the -procs tables: the headline per N, Reflect's
// ratios, and every role's processes.
func procsTables(res *ProcsResults) []table {
	var out []table
	for _, n := range res.Ns {
		main := table{
			title: fmt.Sprintf("One process per participant, N = %d (1 publisher, %d subscribers); medians of %d run(s), range in parentheses", n, n-1, res.Runs),
			head: []string{"system", "p50 µs", "p99 µs", "delivered %", "256 B msgs/s per subscriber", "64 KiB MB/s per subscriber",
				"CPU µs per delivery, 256 B", "CPU µs per delivery, 64 KiB", "64 KiB: % of crypto ceiling", "idle MB per subscriber (RSS / private)", "idle MB per server (RSS / private)", "idle RSS MB, all processes"},
		}
		procs := table{
			title: fmt.Sprintf("Processes, N = %d: memory idle and at peak (MB, RSS / private), idle CPU and context switches", n),
			head:  []string{"system", "role", "processes", "idle", "peak", "idle CPU %", "idle switches/s", "switches per delivery, 256 B"},
		}
		for _, s := range res.Summaries {
			if s.N != n {
				continue
			}
			if !s.hasPubSub() {
				continue
			}
			name := s.System
			if len(s.Errors) > 0 {
				name += " (errors)"
			}
			sm, lg := s.size(small), s.size(large)
			sub, _ := s.role(roleSub)
			srv, hasSrv := s.role(roleServer)
			server := "–"
			if hasSrv {
				server = memPair(srv.IdleRSSMB, srv.IdleAnonMB)
			}
			main.rows = append(main.rows, []string{name, s.P50.short(), s.P99.short(), s.LatDelivered.format("%.2f"),
				sm.MsgsPerSec.short() + lossMark(sm.Delivered), lg.MBPerSec.short() + lossMark(lg.Delivered),
				sm.CPUPerMsgUS.short(), lg.CPUPerMsgUS.short(), ceilingPct(res, s, lg),
				memPair(sub.IdleRSSMB, sub.IdleAnonMB), server, s.IdleRSSMB.short()})
			for _, r := range s.Roles {
				sw := "–"
				if r.Role == roleSub {
					sw = sm.SwitchesPerMsg.short() + " (all processes)"
				}
				procs.rows = append(procs.rows, []string{s.System, r.Role, fmt.Sprint(r.Processes),
					memPair(r.IdleRSSMB, r.IdleAnonMB), memPair(r.PeakRSSMB, r.PeakAnonMB),
					r.IdleCPUPct.short(), r.IdleWakeups.short(), sw})
			}
		}
		if len(main.rows) > 0 {
			out = append(out, main)
		}
		rt := table{
			title: fmt.Sprintf("Reflect ÷ baseline, N = %d, one process per participant: ratios within each run, median (range); latency and CPU: lower is better, rates: higher", n),
			head: []string{"baseline", "p50", "p99", "256 B msgs/s", "64 KiB MB/s", "CPU per delivery 256 B", "CPU per delivery 64 KiB",
				"idle RSS per subscriber", "idle private per subscriber", "idle RSS, all processes", "store join from exec"},
		}
		for _, r := range res.Ratios {
			if r.N != n {
				continue
			}
			rt.rows = append(rt.rows, []string{r.Baseline, ratioX(r.P50), ratioX(r.P99), ratioX(r.Msgs256), ratioX(r.MB64K),
				ratioX(r.CPU256), ratioX(r.CPU64K), ratioX(r.IdleRSS), ratioX(r.IdleAnon), ratioX(r.IdleRSSTotal), ratioX(r.JoinSecs)})
		}
		if len(rt.rows) > 0 {
			out = append(out, rt)
		}
		if len(procs.rows) > 0 {
			out = append(out, procs)
		}
		if jt := joinTable(res, n); len(jt.rows) > 0 {
			out = append(out, jt)
		}
	}
	return out
}

// joinTable is the store scenario at n, if it ran.
func joinTable(res *ProcsResults, n int) table {
	t := table{
		title: fmt.Sprintf("Store, N = %d, one process per participant: %s keys × %d B written on one, then a new process joins (times from its exec)",
			n, count(res.Params.StoreKeys), res.Params.ValueSize),
		head: []string{"system", "write s", "replicated on all s", "holder MB (RSS / private)", "server MB (RSS / private)",
			"joiner up s", "join s (exec → every key)", "joiner MB after (RSS / private)", "joiner peak RSS MB", "peak ÷ final"},
	}
	for _, s := range res.Summaries {
		j := s.Join
		if s.N != n || j == nil {
			continue
		}
		server := "–"
		if j.ServerRSSMB.ok() {
			server = memPair(j.ServerRSSMB, j.ServerAnonMB)
		}
		t.rows = append(t.rows, []string{s.System, j.FillSecs.format("%.2f"), j.ReplicatedSecs.format("%.2f"),
			memPair(j.HolderRSSMB, j.HolderAnonMB), server, j.UpSecs.format("%.2f"), j.JoinSecs.format("%.2f"),
			memPair(j.JoinerRSSMB, j.JoinerAnonMB), j.JoinerPeakMB.short(), j.PeakRatio.format("%.2f")})
	}
	return t
}

// printProcsText prints the -procs tables and each sample's load average.
func printProcsText(w io.Writer, res *ProcsResults) {
	for _, t := range procsTables(res) {
		t.text(w)
	}
	if c := res.Crypto; c != nil {
		fmt.Fprintf(w, "\nCrypto ceiling: %s\n", cryptoLine(c))
	}
	fmt.Fprintf(w, "\nLoad average (1, 5, 15 min) at each sample's start: %s\n", loadAvgs(res))
	for _, s := range res.Samples {
		if s.Error != "" {
			fmt.Fprintf(w, "error: run %d, N=%d, %s: %s\n", s.Run, s.N, s.System, s.Error)
		}
	}
}

// cryptoLine says how the crypto ceiling was found.
func cryptoLine(c *CryptoCeiling) string {
	return fmt.Sprintf("XSalsa20 %.0f MB/s and ChaCha20-Poly1305 %.0f MB/s on one core (x/crypto, 64 KiB buffers): "+
		"%.2f ms of CPU per MB delivered (encrypt + decrypt, both layers); with %d cores shared by N−1 subscribers the ceiling per subscriber is %d × 1000 ÷ %.2f ÷ (N−1) MB/s",
		c.XSalsa20MBps, c.ChaChaPolyMBps, c.MSPerMB, c.Cores, c.Cores, c.MSPerMB)
}

// loadAvgs lists the samples' load averages, in order.
// formationDrops lists, per sample with any, the drop counters read once
// the cluster had formed and warmed up.
func formationDrops(res *ProcsResults) string {
	var parts []string
	recorded := 0
	for _, s := range res.Samples {
		if s.Error != "" || s.FormationDrops == nil {
			continue
		}
		recorded++
		if s.FormationDrops.Events > 0 {
			parts = append(parts, fmt.Sprintf("run %d N=%d %s: %v", s.Run, s.N, s.System, *s.FormationDrops))
		}
	}
	switch {
	case recorded == 0:
		return "not recorded in these results"
	case len(parts) == 0:
		return fmt.Sprintf("none, in any of the %d samples", recorded)
	}
	return strings.Join(parts, "; ")
}

func loadAvgs(res *ProcsResults) string {
	var parts []string
	for _, s := range res.Samples {
		parts = append(parts, fmt.Sprintf("run %d N=%d %s: %s", s.Run, s.N, s.System, s.LoadAvg))
	}
	return strings.Join(parts, "; ")
}

// writeProcsMarkdown writes the -procs section of BENCHMARKS.md: the
// headline tables and how they are measured.
func writeProcsMarkdown(b io.Writer, res *ProcsResults) {
	p := res.Params
	fmt.Fprintf(b, "\n## Results: one process per participant\n\n")
	fmt.Fprintf(b, "As users run it: every participant is its own OS process, a small program per system (`bench/participant/cmd`: reflect-node, reflect-store for the store, nats-client, redis-client), "+
		"NATS's server another (nats-server: the library, defaults), Redis's redis-server. Command: `%s`; %s; commit `%s`%s; %d run(s) per system and N, systems in rotating order.\n\n",
		res.Machine.Command, res.Machine.Date, res.Machine.Commit, dirtyMark(res.Machine.Dirty), res.Runs)
	fmt.Fprintf(b, "Systems:\n\n")
	for _, s := range res.Systems {
		if s.Unavailable != "" {
			fmt.Fprintf(b, "- **%s**: not run: %s\n", s.Name, s.Unavailable)
			continue
		}
		fmt.Fprintf(b, "- **%s**: %s\n", s.Name, s.Describe)
	}
	for _, t := range procsTables(res) {
		t.markdown(b)
	}
	fmt.Fprintf(b, "\n`!`: some subscriber missed messages in the unpaced run (the rate is not a lossless one; results-procs.json has the delivered %%).\n\n")
	fmt.Fprintf(b, "How it is measured: participant 0 publishes, the others subscribe, each driven by the parent over its stdin and stdout (one JSON line per command and reply). "+
		"Each message carries its send time on CLOCK_MONOTONIC, one clock for every process of the machine; each subscriber computes receive − send and hands its samples to the parent at the end. "+
		"After a warm-up of %d paced messages and %v without traffic, every process's VmRSS and RssAnon (private memory) are read from /proc/PID/status (*idle*), "+
		"then CPU (utime + stime of /proc/PID/stat) and context switches (/proc/PID/task/*/status) over %v more (*idle CPU*, *idle switches/s*). "+
		"*Peak* memory is sampled every %v during the latency and throughput scenarios. "+
		"**Latency**: %d B at %.0f msg/s for %v. **Throughput**: one unpaced run per size (up to %d × 256 B or %d × 64 KiB, at most %v); the figure is the slowest subscriber's "+
		"messages ÷ (its last receive − the first send); MB = 10⁶ bytes. **CPU per delivery**: the CPU time of every process of the system, servers included, from the first send until "+
		"the deliveries ended, ÷ all subscribers' deliveries. The parent and its polling (every 20 ms) are not counted.\n\n",
		p.Warmup, p.MemIdle, procsIdleWindow, procsPeakEvery, p.LatencySize, p.LatencyRate, p.LatencyFor,
		p.ThroughputCount[small], p.ThroughputCount[large], p.ThroughputFor)
	if c := res.Crypto; c != nil {
		fmt.Fprintf(b, "*%% of crypto ceiling*: Reflect's 64 KiB rate per subscriber against the most encryption alone would allow: %s.\n\n", cryptoLine(c))
	}
	fmt.Fprintf(b, "**Store** (at N = %d, systems with a store; a cluster of its own): Reflect: every participant a node with the default crdtstore, every pair connected; "+
		"NATS: JetStream KV (memory storage, History 1) in the nats-server process, one client process per participant. Participant 0 writes %s keys of %d B unpaced "+
		"(Reflect: Set, then Flush; NATS: asynchronous publishes to the bucket's subject, ≤ 4,096 acks pending, until all are acknowledged); *replicated* is until every "+
		"Reflect node held every key. After %v, *holder* is the median over participants 1–%d (NATS clients hold nothing: the server does). Then a new process is executed: "+
		"Reflect's connects to every node at once, `WaitSynced`, and waits for every key; NATS's binds the bucket and `WatchAll`s until every key's value is in, kept in a map. "+
		"*Up*: from exec until the node and store (NATS: the connection) were open; *join*: until every key was held. Its memory is read at once, and after %v more (*after*); "+
		"the peak is sampled every 10 ms from exec until then.\n\n",
		p.StoreN, count(p.StoreKeys), p.ValueSize, p.MemIdle, p.StoreN-1, p.MemIdle)
	fmt.Fprintf(b, "Drops counted while a cluster connected, formed and warmed up (every process's own counters: Reflect's `Stats`, NATS's slow-consumer counts): %s.\n\n", formationDrops(res))
	fmt.Fprintf(b, "Load average (1, 5, 15 min) at each sample's start: %s.\n", loadAvgs(res))
}

// writeProcsJSON writes res to path.
func writeProcsJSON(path string, res *ProcsResults) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// loadProcsResults reads a results-procs.json and analyzes it again.
func loadProcsResults(path string) (*ProcsResults, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res ProcsResults
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	analyzeProcs(&res)
	return &res, nil
}
