package main

import (
	"context"
	"math"
	"time"
)

// ThroughputResult is scenario 2: the highest rate at which every
// subscriber gets every message.
//
// Definition: first one unpaced run (the publisher sends as fast as Publish
// returns, up to ThroughputCount messages or ThroughputFor). If every
// subscriber got every message, the system's own flow control has found the
// rate, and the result is that run's delivery rate (Method "unpaced").
// Otherwise a bounded search over paced offered rates (Method "search"),
// starting just below the rate the worst subscriber achieved unpaced and
// bisecting geometrically between the best lossless and the lowest lossy
// rate; the result is the delivery rate of the best lossless trial, or 0 if
// none was (Method "none"). A delivery rate is messages / (last receive −
// first send) for the slowest subscriber. MB = 10^6 bytes.
type ThroughputResult struct {
	Size       int     `json:"size"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
	Method     string  `json:"method"`
	// Unpaced is the first, unpaced run; Trials the search's paced runs.
	Unpaced TrialResult   `json:"unpaced"`
	Trials  []TrialResult `json:"trials,omitempty"`
}

// TrialResult is one publishing run and what arrived.
type TrialResult struct {
	Offered float64 `json:"offered_per_sec"` // 0 = unpaced
	Sent    int     `json:"sent"`
	// PubRate is what the publisher achieved (sent / publishing time).
	PubRate float64 `json:"publish_per_sec"`
	// Delivered is the worst subscriber's share of the sent messages, %.
	Delivered float64 `json:"min_delivered_pct"`
	// Rate is the worst subscriber's delivery rate, messages per second.
	Rate     float64 `json:"delivery_per_sec"`
	Lossless bool    `json:"lossless"`
	Errors   int     `json:"errors"`
	Drops    Drops   `json:"drops"`
}

func runThroughput(ctx context.Context, h *handle, size int) (ThroughputResult, error) {
	p, logf := h.env.P, h.env.Logf
	res := ThroughputResult{Size: size}
	var err error
	res.Unpaced, err = runTrial(ctx, h, load{size: size, count: p.ThroughputCount[size], limit: p.ThroughputFor})
	if err != nil {
		return res, err
	}
	logf("      unpaced: sent %d at %.0f/s, worst subscriber %.1f%% at %.0f/s; drops: %v",
		res.Unpaced.Sent, res.Unpaced.PubRate, res.Unpaced.Delivered, res.Unpaced.Rate, res.Unpaced.Drops)
	if res.Unpaced.Lossless {
		res.Method = "unpaced"
		res.MsgsPerSec = res.Unpaced.Rate
		res.MBPerSec = res.MsgsPerSec * float64(size) / mb
		return res, nil
	}

	// Search: hi is lossy; lo (if > 0) lossless.
	hi := res.Unpaced.PubRate
	lo := 0.0
	floor := 20.0
	rate := 0.9 * res.Unpaced.Rate
	if rate < floor || rate >= hi {
		rate = max(hi/4, floor)
	}
	var best *TrialResult
	for i := 0; i < p.SearchTrials && ctx.Err() == nil; i++ {
		count := int(math.Ceil(rate * p.SearchFor.Seconds()))
		tr, err := runTrial(ctx, h, load{size: size, count: count, rate: rate, limit: 2 * p.SearchFor})
		if err != nil {
			return res, err
		}
		tr.Offered = rate
		logf("      offered %.0f/s: worst subscriber %.1f%% at %.0f/s; drops: %v", rate, tr.Delivered, tr.Rate, tr.Drops)
		res.Trials = append(res.Trials, tr)
		if tr.Lossless {
			lo = rate
			if best == nil || tr.Rate > best.Rate {
				best = &res.Trials[len(res.Trials)-1]
			}
		} else {
			hi = rate
		}
		switch {
		case lo == 0:
			rate = max(rate/4, floor)
			if rate == floor && hi == floor {
				i = p.SearchTrials // lossy even at the floor
			}
		case hi/lo < 1.1:
			i = p.SearchTrials
		default:
			rate = math.Sqrt(lo * hi)
		}
	}
	if best == nil {
		res.Method = "none"
		return res, nil
	}
	res.Method = "search"
	res.MsgsPerSec = best.Rate
	res.MBPerSec = best.Rate * float64(size) / mb
	return res, nil
}

// runTrial publishes l as a new trial, waits for the deliveries and
// summarises them.
func runTrial(ctx context.Context, h *handle, l load) (TrialResult, error) {
	p := h.env.P
	t, c, err := h.begin(ctx, 0)
	if err != nil {
		return TrialResult{}, err
	}
	d0 := c.Drops()
	pr := publish(ctx, c, t, l)
	t.waitDelivered(ctx, int64(pr.Sent), p.DrainIdle, p.DrainMax)
	tr := TrialResult{Offered: l.rate, Sent: pr.Sent, Errors: pr.Errors, Drops: c.Drops().sub(d0)}
	if e := pr.elapsed(); e > 0 {
		tr.PubRate = float64(pr.Sent) / e.Seconds()
	}
	minCount := int64(-1)
	tr.Rate = -1
	for i := range t.sub {
		n := t.sub[i].count.Load()
		minCount = min64(minCount, n)
		span := time.Duration(t.sub[i].last.Load() - pr.Start)
		r := 0.0
		if n > 0 && span > 0 {
			r = float64(n) / span.Seconds()
		}
		if tr.Rate < 0 || r < tr.Rate {
			tr.Rate = r
		}
	}
	tr.Rate = max(tr.Rate, 0)
	tr.Delivered = pct(max(minCount, 0), int64(pr.Sent))
	tr.Lossless = pr.Sent > 0 && pr.Errors == 0 && minCount == int64(pr.Sent)
	return tr, nil
}

// min64 is min where a negative a means "unset".
func min64(a, b int64) int64 {
	if a < 0 || b < a {
		return b
	}
	return a
}
