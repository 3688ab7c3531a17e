package main

import (
	"context"
	"fmt"
	"time"
)

// callsSuite is issue 15's figures on a CallSystem, at N = Params.CallsN:
// request/reply (one requester, the responder on another participant)
// paced and sustained, on one cluster; a queue group of N−1 members on
// another. The headers scenario is part of pubsubSuite (it is scenario 2
// with a header on every message).
type callsSuite struct{}

// Calls scenario ids, for -scenarios.
const (
	scRequest     = "request"
	scRequestRate = "request-rate"
	scQueue       = "queue"
)

func (callsSuite) Name() string             { return "calls" }
func (callsSuite) Scenarios() []string      { return []string{scRequest, scRequestRate, scQueue} }
func (callsSuite) Supports(sys System) bool { _, ok := sys.(CallSystem); return ok }
func (callsSuite) wantRequest(e *Env) bool  { return e.want(scRequest) || e.want(scRequestRate) }
func (c callsSuite) selected(e *Env, n int) bool {
	return n == e.P.CallsN && (c.wantRequest(e) || e.want(scQueue))
}

// CallsResult is one run of the calls scenarios.
type CallsResult struct {
	Request *RequestResult `json:"request,omitempty"`
	Load    *LoadResult    `json:"request_rate,omitempty"`
	Queue   *QueueResult   `json:"queue,omitempty"`
	// OpenSecs is how long the request cluster took to start.
	OpenSecs float64 `json:"open_secs"`
}

func (c callsSuite) Run(ctx context.Context, sys System, n int, env *Env, s *Sample) error {
	if !c.selected(env, n) {
		return nil
	}
	cs := sys.(CallSystem)
	res := &CallsResult{}
	s.Calls = res
	if c.wantRequest(env) {
		if err := runRequests(ctx, cs, n, env, res); err != nil {
			return err
		}
	}
	if env.want(scQueue) && ctx.Err() == nil {
		env.Logf("    queue: %d × %d B to a group of %d", env.P.QueueCount, small, n-1)
		q, err := runQueue(ctx, cs, n, env)
		res.Queue = q
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		env.Logf("      %.0f msgs/s, per member %v (spread %.1f%%), %d duplicates, %d missing; drops: %v",
			q.MsgsPerSec, q.PerMember, q.SpreadPct, q.Duplicates, q.Missing, q.Drops)
	}
	return nil
}

// runRequests opens the request cluster, warms it up and runs the request
// scenarios selected.
func runRequests(ctx context.Context, cs CallSystem, n int, env *Env, res *CallsResult) (err error) {
	p := env.P
	t0 := time.Now()
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	c, err := cs.OpenRequest(octx, n, env.Open)
	cancel()
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	warm := runPacedRequests(ctx, c, p, p.RequestWarmup)
	res.OpenSecs = time.Since(t0).Seconds()
	if warm.OK < warm.Sent || warm.Sent < p.RequestWarmup {
		return fmt.Errorf("warm-up: %d of %d requests answered (%s)", warm.OK, p.RequestWarmup, warm.FirstError)
	}
	stop, err := env.startProfile()
	if err != nil {
		return err
	}
	defer stop()
	if env.want(scRequest) && ctx.Err() == nil {
		env.Logf("    request: %d B at %.0f/s for %v, one at a time", p.RequestSize, p.RequestRate, p.RequestFor)
		r := runPacedRequests(ctx, c, p, int(p.RequestRate*p.RequestFor.Seconds()))
		res.Request = &r
		env.Logf("      p50 %.0f µs, p99 %.0f µs, p99.9 %.0f µs; %d/%d answered", r.P50, r.P99, r.P999, r.OK, r.Sent)
	}
	if env.want(scRequestRate) && ctx.Err() == nil {
		env.Logf("    request-rate: %.0f/s for %v, up to %d outstanding", p.LoadRate, p.LoadFor, p.LoadConcurrency)
		l := runRequestLoad(ctx, c, p)
		res.Load = &l
		env.Logf("      %d sent at %.0f/s (max lag %.1f ms), %d answered, %d lost (%d timeouts, %d errors, %d wrong); p50 %.0f µs, p99 %.0f µs (from due %.0f µs)",
			l.Sent, l.PaceRate, l.MaxLagMS, l.OK, l.Lost, l.Timeouts, l.Errors, l.Wrong, l.P50, l.P99, l.DueP99)
	}
	return nil
}
