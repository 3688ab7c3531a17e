package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// RequestResult is the request scenario: one requester, one request at a
// time at a fixed pace, each round trip (Request call → reply) timed.
type RequestResult struct {
	Size int     `json:"size"`
	Rate float64 `json:"rate"`
	Sent int     `json:"sent"`
	OK   int     `json:"ok"`
	// Errors counts failed requests (timeouts included); Wrong, replies
	// that did not carry the request's own bytes back.
	Errors     int     `json:"errors"`
	Wrong      int     `json:"wrong"`
	FirstError string  `json:"first_error,omitempty"`
	P50        float64 `json:"p50_us"`
	P99        float64 `json:"p99_us"`
	P999       float64 `json:"p999_us"`
	Max        float64 `json:"max_us"`
}

// runPacedRequests sends count requests at p.RequestRate, one at a time:
// request seq is due at seq/rate after the start (if one took longer, the
// next goes at once).
func runPacedRequests(ctx context.Context, c RequestCluster, p Params, count int) RequestResult {
	r := RequestResult{Size: p.RequestSize, Rate: p.RequestRate}
	buf := requestPayload(p.RequestSize)
	rtt := make([]int64, 0, count)
	start := now()
	stop := start + int64(float64(count)/p.RequestRate*1e9) + int64(5*time.Second)
	for seq := 0; seq < count && ctx.Err() == nil; seq++ {
		due := start + int64(float64(seq)/p.RequestRate*1e9)
		if wait := due - now(); wait > 0 {
			time.Sleep(time.Duration(wait))
		}
		if now() > stop {
			break
		}
		sent := now()
		putHeader(buf, 0, uint64(seq), sent)
		rctx, cancel := context.WithTimeout(ctx, p.RequestTimeout)
		reply, err := c.Request(rctx, buf)
		at := now()
		cancel()
		r.Sent++
		switch {
		case err != nil:
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = err.Error()
			}
		case !echoes(reply, seq, sent):
			r.Wrong++
		default:
			r.OK++
			rtt = append(rtt, at-sent)
		}
	}
	slices.Sort(rtt)
	r.P50, r.P99, r.P999, r.Max = quantileUS(rtt, 0.5), quantileUS(rtt, 0.99), quantileUS(rtt, 0.999), quantileUS(rtt, 1)
	return r
}

// requestPayload is a request of size bytes (header written per request).
func requestPayload(size int) []byte {
	buf := make([]byte, max(size, headerLen))
	for i := headerLen; i < len(buf); i++ {
		buf[i] = byte(i)
	}
	return buf
}

// echoes reports whether reply is request seq sent at sent, back.
func echoes(reply []byte, seq int, sent int64) bool {
	_, s, at, ok := readHeader(reply)
	return ok && s == uint64(seq) && at == sent
}

// LoadResult is the request-rate scenario: one requester offering
// LoadRate requests/s for LoadFor, with up to LoadConcurrency outstanding.
// Request seq is due at seq/rate after the start on the clock; a
// dispatcher hands it to a free worker when due, or as soon as one is free
// (Lag: how late that was). The round trip (P50…) runs from the Request
// call to its return, as in the request scenario; DueP50 and DueP99 run
// from the due time instead, so time spent waiting for a free worker
// counts (no coordinated omission), and so does the dispatcher's own
// lateness (Go's timers wake it up to ~1 ms late on this kind of box,
// the same for every system).
type LoadResult struct {
	Offered     float64 `json:"offered_per_sec"`
	Concurrency int     `json:"concurrency"`
	// Secs is the dispatching time (first due → last dispatched).
	Secs     float64 `json:"secs"`
	Sent     int     `json:"sent"`
	PaceRate float64 `json:"dispatched_per_sec"`
	MaxLagMS float64 `json:"max_dispatch_lag_ms"`
	// OK + Lost = Sent; Lost = Timeouts + Errors + Wrong.
	OK         int     `json:"ok"`
	Lost       int     `json:"lost"`
	Timeouts   int     `json:"timeouts"`
	Errors     int     `json:"errors"`
	Wrong      int     `json:"wrong"`
	FirstError string  `json:"first_error,omitempty"`
	P50        float64 `json:"p50_us"`
	P99        float64 `json:"p99_us"`
	P999       float64 `json:"p999_us"`
	Max        float64 `json:"max_us"`
	DueP50     float64 `json:"from_due_p50_us"`
	DueP99     float64 `json:"from_due_p99_us"`
}

func runRequestLoad(ctx context.Context, c RequestCluster, p Params) LoadResult {
	count := int(p.LoadRate * p.LoadFor.Seconds())
	r := LoadResult{Offered: p.LoadRate, Concurrency: p.LoadConcurrency}
	type ticket struct {
		seq int
		due int64
	}
	tickets := make(chan ticket) // unbuffered: a ticket waits for a free worker
	lat := make([]int64, count)  // ns from the call to the reply; -1: lost
	late := make([]int64, count) // ns from due to the call
	var mu sync.Mutex            // the counters below
	var wg sync.WaitGroup
	for w := 0; w < p.LoadConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := requestPayload(p.RequestSize)
			for t := range tickets {
				sent := now()
				putHeader(buf, 1, uint64(t.seq), sent)
				rctx, cancel := context.WithTimeout(ctx, p.RequestTimeout)
				reply, err := c.Request(rctx, buf)
				at := now()
				timedOut := rctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)
				cancel()
				ok := err == nil && echoes(reply, t.seq, sent)
				if ok {
					lat[t.seq], late[t.seq] = at-sent, sent-t.due
					continue
				}
				lat[t.seq] = -1
				mu.Lock()
				switch {
				case err == nil:
					r.Wrong++
				case timedOut:
					r.Timeouts++
				default:
					r.Errors++
				}
				if err != nil && r.FirstError == "" {
					r.FirstError = err.Error()
				}
				mu.Unlock()
			}
		}()
	}
	start := now()
	stop := start + int64(p.LoadFor) + int64(5*time.Second)
	last := start
dispatch:
	for seq := 0; seq < count; seq++ {
		due := start + int64(float64(seq)/p.LoadRate*1e9)
		if wait := due - now(); wait > 0 {
			time.Sleep(time.Duration(wait))
		}
		if now() > stop {
			break
		}
		select {
		case tickets <- ticket{seq, due}:
		case <-ctx.Done():
			break dispatch
		}
		last = now()
		r.MaxLagMS = max(r.MaxLagMS, float64(last-due)/1e6)
		r.Sent++
	}
	close(tickets)
	wg.Wait()
	r.Secs = float64(last-start) / 1e9
	if r.Secs > 0 {
		r.PaceRate = float64(r.Sent) / r.Secs
	}
	ok := make([]int64, 0, r.Sent)
	due := make([]int64, 0, r.Sent)
	for i, v := range lat[:r.Sent] {
		if v >= 0 {
			ok = append(ok, v)
			due = append(due, v+late[i])
		}
	}
	r.OK = len(ok)
	r.Lost = r.Sent - r.OK
	slices.Sort(ok)
	slices.Sort(due)
	r.P50, r.P99, r.P999, r.Max = quantileUS(ok, 0.5), quantileUS(ok, 0.99), quantileUS(ok, 0.999), quantileUS(ok, 1)
	r.DueP50, r.DueP99 = quantileUS(due, 0.5), quantileUS(due, 0.99)
	return r
}
