package main

import (
	"context"
	"slices"
	"time"
)

// LatencyResult is scenario 1: one publisher at a modest fixed pace, every
// (subscriber, message) delivery's one-way latency.
type LatencyResult struct {
	Sent int `json:"sent"`
	// Delivered is deliveries / (sent × subscribers), in %.
	Delivered float64 `json:"delivered_pct"`
	P50       float64 `json:"p50_us"`
	P99       float64 `json:"p99_us"`
	P999      float64 `json:"p999_us"`
	Max       float64 `json:"max_us"`
	// MaxCallUS is the longest Publish call.
	MaxCallUS float64 `json:"max_publish_call_us"`
	Drops     Drops   `json:"drops"`
}

func runLatency(ctx context.Context, h *handle) (*LatencyResult, error) {
	p := h.env.P
	count := int(p.LatencyRate * p.LatencyFor.Seconds())
	t, c, err := h.begin(ctx, count)
	if err != nil {
		return nil, err
	}
	d0 := c.Drops()
	pr := publish(ctx, c, t, load{size: p.LatencySize, count: count, rate: p.LatencyRate, limit: p.LatencyFor + 5*time.Second})
	t.waitDelivered(ctx, int64(pr.Sent), p.DrainIdle, p.DrainMax)
	lat := t.latencies()
	slices.Sort(lat)
	return &LatencyResult{
		Sent:      pr.Sent,
		Delivered: pct(int64(len(lat)), int64(pr.Sent)*int64(h.rec.subs)),
		P50:       quantileUS(lat, 0.50),
		P99:       quantileUS(lat, 0.99),
		P999:      quantileUS(lat, 0.999),
		Max:       quantileUS(lat, 1),
		MaxCallUS: float64(pr.MaxCall) / 1e3,
		Drops:     c.Drops().sub(d0),
	}, nil
}

// quantileUS returns the q-quantile (nearest rank) of sorted ns values, in µs.
func quantileUS(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / 1e3
}
