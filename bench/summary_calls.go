package main

import (
	"bytes"
	"fmt"
	"math"
)

// CallSummary is the calls scenarios (request/reply, queue groups) and the
// headers scenario of one system at one N over all runs.
type CallSummary struct {
	System string `json:"system"`
	N      int    `json:"n"`
	Runs   int    `json:"runs"`

	ReqP50    Stat `json:"request_p50_us"`
	ReqP99    Stat `json:"request_p99_us"`
	ReqP999   Stat `json:"request_p999_us"`
	ReqFailed Stat `json:"request_failed"`

	LoadPaceRate Stat `json:"request_rate_dispatched_per_sec"`
	LoadSecs     Stat `json:"request_rate_secs"`
	LoadSent     Stat `json:"request_rate_sent"`
	LoadLost     Stat `json:"request_rate_lost"`
	LoadMaxLagMS Stat `json:"request_rate_max_lag_ms"`
	LoadP50      Stat `json:"request_rate_p50_us"`
	LoadP99      Stat `json:"request_rate_p99_us"`
	LoadDueP99   Stat `json:"request_rate_from_due_p99_us"`

	QueueMsgsPerSec Stat `json:"queue_msgs_per_sec"`
	QueueSpreadPct  Stat `json:"queue_spread_pct"`
	QueueDuplicates Stat `json:"queue_duplicates"`
	QueueMissing    Stat `json:"queue_missing"`

	// HeaderMsgsPerSec is scenario 2 at 256 B with benchHeader;
	// HeaderCost that ÷ the same run's figure without headers.
	HeaderMsgsPerSec Stat `json:"header_msgs_per_sec_256"`
	HeaderCost       Stat `json:"header_over_plain_256"`
}

// hasCalls reports whether s measured any calls or headers figure.
func (s *Sample) hasCalls() bool { return s.Calls != nil || s.HeaderThroughput != nil }

// plainSmall is the run's 256 B throughput without headers (NaN if none).
func (s *Sample) plainSmall() float64 {
	for _, t := range s.Throughput {
		if t.Size == small {
			return t.MsgsPerSec
		}
	}
	return math.NaN()
}

func summarizeCalls(samples []Sample, system string, n int) (CallSummary, bool) {
	var ss []*Sample
	for i := range samples {
		if s := &samples[i]; s.System == system && s.N == n && s.hasCalls() {
			ss = append(ss, s)
		}
	}
	sum := CallSummary{System: system, N: n, Runs: len(ss)}
	if len(ss) == 0 {
		return sum, false
	}
	get := func(f func(*Sample) float64) Stat {
		v := make([]float64, 0, len(ss))
		for _, s := range ss {
			v = append(v, f(s))
		}
		return statOf(v)
	}
	req := func(f func(*RequestResult) float64) Stat {
		return get(func(s *Sample) float64 {
			if s.Calls == nil || s.Calls.Request == nil {
				return math.NaN()
			}
			return f(s.Calls.Request)
		})
	}
	sum.ReqP50 = req(func(r *RequestResult) float64 { return r.P50 })
	sum.ReqP99 = req(func(r *RequestResult) float64 { return r.P99 })
	sum.ReqP999 = req(func(r *RequestResult) float64 { return r.P999 })
	sum.ReqFailed = req(func(r *RequestResult) float64 { return float64(r.Errors + r.Wrong) })
	ld := func(f func(*LoadResult) float64) Stat {
		return get(func(s *Sample) float64 {
			if s.Calls == nil || s.Calls.Load == nil {
				return math.NaN()
			}
			return f(s.Calls.Load)
		})
	}
	sum.LoadPaceRate = ld(func(l *LoadResult) float64 { return l.PaceRate })
	sum.LoadSecs = ld(func(l *LoadResult) float64 { return l.Secs })
	sum.LoadSent = ld(func(l *LoadResult) float64 { return float64(l.Sent) })
	sum.LoadLost = ld(func(l *LoadResult) float64 { return float64(l.Lost) })
	sum.LoadMaxLagMS = ld(func(l *LoadResult) float64 { return l.MaxLagMS })
	sum.LoadP50 = ld(func(l *LoadResult) float64 { return l.P50 })
	sum.LoadP99 = ld(func(l *LoadResult) float64 { return l.P99 })
	sum.LoadDueP99 = ld(func(l *LoadResult) float64 { return l.DueP99 })
	q := func(f func(*QueueResult) float64) Stat {
		return get(func(s *Sample) float64 {
			if s.Calls == nil || s.Calls.Queue == nil {
				return math.NaN()
			}
			return f(s.Calls.Queue)
		})
	}
	sum.QueueMsgsPerSec = q(func(r *QueueResult) float64 { return r.MsgsPerSec })
	sum.QueueSpreadPct = q(func(r *QueueResult) float64 { return r.SpreadPct })
	sum.QueueDuplicates = q(func(r *QueueResult) float64 { return float64(r.Duplicates) })
	sum.QueueMissing = q(func(r *QueueResult) float64 { return float64(r.Missing) })
	hdr := func(s *Sample) float64 {
		if s.HeaderThroughput == nil {
			return math.NaN()
		}
		return s.HeaderThroughput.MsgsPerSec
	}
	sum.HeaderMsgsPerSec = get(hdr)
	sum.HeaderCost = get(func(s *Sample) float64 { return div(hdr(s), s.plainSmall()) })
	return sum, true
}

// div is a ÷ b, NaN when either is missing or b is 0.
func div(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// CallRatio is Reflect's calls figures divided by a baseline's, run by run
// (both measured in the same run), then summarised.
type CallRatio struct {
	Baseline   string `json:"baseline"`
	N          int    `json:"n"`
	ReqP50     Stat   `json:"request_p50"`
	ReqP99     Stat   `json:"request_p99"`
	LoadP99    Stat   `json:"request_rate_p99"`
	QueueRate  Stat   `json:"queue_msgs_per_sec"`
	HeaderRate Stat   `json:"header_msgs_per_sec_256"`
}

func callRatios(samples []Sample, subject, baseline string, n int) CallRatio {
	r := CallRatio{Baseline: baseline, N: n}
	byRun := map[int][2]*Sample{}
	for i := range samples {
		s := &samples[i]
		if s.N != n || !s.hasCalls() {
			continue
		}
		pair := byRun[s.Run]
		switch s.System {
		case subject:
			pair[0] = s
		case baseline:
			pair[1] = s
		default:
			continue
		}
		byRun[s.Run] = pair
	}
	var p50, p99, lp99, qr, hr []float64
	for _, pair := range byRun {
		a, b := pair[0], pair[1]
		if a == nil || b == nil {
			continue
		}
		if ac, bc := a.Calls, b.Calls; ac != nil && bc != nil {
			if ac.Request != nil && bc.Request != nil {
				p50 = append(p50, div(ac.Request.P50, bc.Request.P50))
				p99 = append(p99, div(ac.Request.P99, bc.Request.P99))
			}
			if ac.Load != nil && bc.Load != nil {
				lp99 = append(lp99, div(ac.Load.P99, bc.Load.P99))
			}
			if ac.Queue != nil && bc.Queue != nil {
				qr = append(qr, div(ac.Queue.MsgsPerSec, bc.Queue.MsgsPerSec))
			}
		}
		if a.HeaderThroughput != nil && b.HeaderThroughput != nil {
			hr = append(hr, div(a.HeaderThroughput.MsgsPerSec, b.HeaderThroughput.MsgsPerSec))
		}
	}
	r.ReqP50, r.ReqP99, r.LoadP99, r.QueueRate, r.HeaderRate = statOf(p50), statOf(p99), statOf(lp99), statOf(qr), statOf(hr)
	return r
}

// checkCallTargets adds issue 15's targets (the headers target compares
// two commits and is measured outside this command: bench/NOTES.md).
func checkCallTargets(res *Results) []TargetCheck {
	var out []TargetCheck
	verdict := func(st Stat, ok func(float64) bool) string {
		if !st.ok() {
			return "n/a"
		}
		return yesNo(ok(st.Median))
	}
	p := res.Params
	for _, r := range res.CallRatios {
		if r.Baseline != "nats" || !r.ReqP50.ok() {
			continue
		}
		le1 := func(x float64) bool { return x <= 1 }
		out = append(out,
			TargetCheck{Target: "request/reply p50 ≤ NATS", N: r.N, Measured: r.ReqP50.format("%.2f") + "×", Met: verdict(r.ReqP50, le1)},
			TargetCheck{Target: "request/reply p99 ≤ NATS", N: r.N, Measured: r.ReqP99.format("%.2f") + "×", Met: verdict(r.ReqP99, le1)})
	}
	for _, s := range res.CallSummaries {
		if s.System != "reflect" {
			continue
		}
		if s.LoadSent.ok() {
			// Every run: the pace held (≥ 99 % of the offered rate over
			// the whole duration) and nothing was lost.
			met := s.LoadLost.Max == 0 && s.LoadPaceRate.Min >= 0.99*p.LoadRate && s.LoadSecs.Min >= 0.99*p.LoadFor.Seconds()
			out = append(out, TargetCheck{
				Target: fmt.Sprintf("request/reply: %s/s for %v from one requester, 0 lost", count(int(p.LoadRate)), p.LoadFor),
				N:      s.N,
				Measured: fmt.Sprintf("%s/s dispatched for %s s, %s lost of %s", s.LoadPaceRate.short(), s.LoadSecs.format("%.1f"),
					s.LoadLost.short(), s.LoadSent.short()),
				Met: yesNo(met),
			})
		}
		if s.QueueMissing.ok() {
			out = append(out,
				TargetCheck{Target: "queue group: each message to exactly one member", N: s.N,
					Measured: fmt.Sprintf("%s duplicates, %s missing", s.QueueDuplicates.short(), s.QueueMissing.short()),
					Met:      yesNo(s.QueueDuplicates.Max == 0 && s.QueueMissing.Max == 0)},
				TargetCheck{Target: "queue group: members within ±10 % of an even share", N: s.N,
					Measured: s.QueueSpreadPct.format("%.1f") + " %", Met: yesNo(s.QueueSpreadPct.Max <= 10)})
		}
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// callTables are the calls and headers figures and their ratios.
func callTables(res *Results) []table {
	if len(res.CallSummaries) == 0 {
		return nil
	}
	p := res.Params
	runs := 0
	for _, s := range res.CallSummaries {
		runs = max(runs, s.Runs)
	}
	var out []table
	ct := table{
		title: fmt.Sprintf("Request/reply and queue groups, N = %d (in one process); medians of %d run(s), range in parentheses", p.CallsN, runs),
		head: []string{"system", "request p50 µs", "p99 µs", "p99.9 µs",
			fmt.Sprintf("%s req/s: dispatched/s", count(int(p.LoadRate))), "lost", "p50 µs", "p99 µs", "p99 from due µs",
			fmt.Sprintf("queue of %d: msgs/s", p.CallsN-1), "spread %", "duplicates", "missing"},
	}
	for _, s := range res.CallSummaries {
		if s.N != p.CallsN || !(s.ReqP50.ok() || s.LoadSent.ok() || s.QueueMsgsPerSec.ok()) {
			continue
		}
		ct.rows = append(ct.rows, []string{s.System, s.ReqP50.short(), s.ReqP99.short(), s.ReqP999.short(),
			s.LoadPaceRate.short(), s.LoadLost.short(), s.LoadP50.short(), s.LoadP99.short(), s.LoadDueP99.short(),
			s.QueueMsgsPerSec.short(), s.QueueSpreadPct.format("%.1f"), s.QueueDuplicates.short(), s.QueueMissing.short()})
	}
	if len(ct.rows) > 0 {
		out = append(out, ct)
	}
	ht := table{
		title: fmt.Sprintf("Headers: lossless 256 B msgs/s with %d header keys on every message, medians of %d run(s)", len(benchHeader), runs),
		head:  []string{"system", "N", "256 B msgs/s with header", "÷ without (same run)"},
	}
	for _, s := range res.CallSummaries {
		if s.HeaderMsgsPerSec.ok() {
			ht.rows = append(ht.rows, []string{s.System, fmt.Sprint(s.N), s.HeaderMsgsPerSec.short(), s.HeaderCost.format("%.2f")})
		}
	}
	if len(ht.rows) > 0 {
		out = append(out, ht)
	}
	if len(res.CallRatios) > 0 {
		rt := table{
			title: "Request/reply, queue groups, headers: Reflect ÷ baseline, per run then median (latency: < 1 is better; msgs/s: > 1 is better)",
			head:  []string{"baseline", "N", "request p50", "p99", "sustained p99", "queue msgs/s", "256 B msgs/s with header"},
		}
		for _, r := range res.CallRatios {
			rt.rows = append(rt.rows, []string{r.Baseline, fmt.Sprint(r.N), r.ReqP50.format("%.2f"), r.ReqP99.format("%.2f"),
				r.LoadP99.format("%.2f"), r.QueueRate.format("%.2f"), r.HeaderRate.format("%.2f")})
		}
		out = append(out, rt)
	}
	return out
}

// writeCallsMethod explains how the calls and headers figures are
// measured.
func writeCallsMethod(b *bytes.Buffer, res *Results) {
	if len(res.CallSummaries) == 0 {
		return
	}
	p := res.Params
	fmt.Fprintf(b, "### Request/reply, queue groups, headers\n\n")
	fmt.Fprintf(b, "In one process, like everything above (the library's view, not one process per node). Systems with request/reply and queue groups only: "+
		"Reflect and NATS (Redis has neither). N = %d participants, each with its own connection (Reflect: its own node, connected as above; NATS: a client of the one server).\n\n", p.CallsN)
	fmt.Fprintf(b, "- **Request round trip**: participant %d answers every request with its own bytes (Reflect `Handle`; NATS a subscriber calling `msg.Respond`); participant 0 asks "+
		"(Reflect `Request`; NATS `RequestWithContext`), %d B each way, one request at a time, due every 1/%.0f s on the clock, for %v, after %d unrecorded ones; "+
		"the figure is the time from the call to its return with the reply (which must carry the request's sequence number and send time back); each request has a %v deadline.\n",
		p.CallsN-1, p.RequestSize, p.RequestRate, p.RequestFor, p.RequestWarmup, p.RequestTimeout)
	fmt.Fprintf(b, "- **Sustained requests**: the same pair, %s requests/s offered for %v by one requester with up to %d outstanding: request k is due at k/rate on the clock and handed to a free worker "+
		"then (or as soon as one is free: *max lag*); *dispatched/s* is what the pace achieved. *Lost* = requests without their own reply (timeouts after %v, errors, wrong replies). "+
		"p50 and p99 are round trips as above; *p99 from due* runs from the due time to the reply, so waiting for a free worker counts, and so does the dispatcher's own lateness (Go timers wake it up to ~1 ms late here, alike for every system).\n",
		count(int(p.LoadRate)), p.LoadFor, p.LoadConcurrency, p.RequestTimeout)
	fmt.Fprintf(b, "- **Queue group**: participants 1–%d are members of one queue group (Reflect `Subscribe(…, WithQueueGroup)`; NATS `QueueSubscribe`); after a warm-up that lasts until every member got a message "+
		"(Reflect has no call that waits for queue-group members), participant 0 publishes %s × 256 B unpaced (at most %v). Each message's sequence number is checked: "+
		"*duplicates* are deliveries beyond the first, *missing* messages no member got; *spread* is the largest deviation of one member's count from an even share; "+
		"msgs/s = distinct messages ÷ (last receive − first send).\n",
		p.CallsN-1, count(p.QueueCount), p.QueueFor)
	fmt.Fprintf(b, "- **Headers**: scenario 2 at 256 B (first unpaced, then the search if lossy) with a header of %d keys (%d bytes of keys and values: a trace id and a content type), "+
		"built per message as an application would, on every message (Reflect `WithHeader`; NATS `PublishMsg` with `nats.Header`); *÷ without* divides by the same run's 256 B figure without headers.\n\n",
		len(benchHeader), headerBytes())
}

// headerBytes is the length of benchHeader's keys and values.
func headerBytes() int {
	n := 0
	for k, v := range benchHeader {
		n += len(k) + len(v)
	}
	return n
}
