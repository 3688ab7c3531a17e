package main

import (
	"context"
	"time"
)

// BurstResult is scenario 3: BurstCount messages published as fast as
// Publish returns, then everything that arrives.
type BurstResult struct {
	Size  int `json:"size"`
	Count int `json:"count"`
	Sent  int `json:"sent"`
	// Delivered is deliveries / (sent × subscribers), %; MinDelivered the
	// worst subscriber's share.
	Delivered    float64 `json:"delivered_pct"`
	MinDelivered float64 `json:"min_delivered_pct"`
	// Lost is sent × subscribers − deliveries.
	Lost int64 `json:"lost"`
	// Drops are the drop events the system surfaced during the burst.
	Drops Drops `json:"drops"`
	// StillArriving is true when deliveries were still coming in when the
	// wait for them ended (DrainMax): the missing messages may be late
	// rather than lost.
	StillArriving bool `json:"still_arriving"`
	// Silent is true when messages were lost and the system surfaced
	// nothing: no error to the publisher, no drop event, and no deliveries
	// still arriving.
	Silent bool `json:"silent_loss"`
	// Blocked is true when the publisher was held back: at least one
	// Publish call took ≥ 5 ms (backpressure).
	Blocked      bool    `json:"publisher_blocked"`
	BlockedCalls int     `json:"blocked_calls"`
	MaxCallMS    float64 `json:"max_publish_call_ms"`
	Errors       int     `json:"publish_errors"`
	FirstError   string  `json:"first_error,omitempty"`
	TimeLimited  bool    `json:"time_limited"`
	PublishSecs  float64 `json:"publish_secs"`
	// CompleteSecs is first send to last delivery.
	CompleteSecs float64 `json:"complete_secs"`
}

func runBurst(ctx context.Context, h *handle, size int, onStart func(PubSubCluster)) (BurstResult, error) {
	p := h.env.P
	t, c, err := h.begin(ctx, 0)
	if err != nil {
		return BurstResult{Size: size}, err
	}
	onStart(c)
	d0 := c.Drops()
	pr := publish(ctx, c, t, load{size: size, count: p.BurstCount[size], limit: p.BurstFor})
	t.waitDelivered(ctx, int64(pr.Sent), p.DrainIdle, p.DrainMax)
	got := t.totalCount()
	want := int64(pr.Sent) * int64(h.rec.subs)
	b := BurstResult{
		Size:         size,
		Count:        p.BurstCount[size],
		Sent:         pr.Sent,
		Delivered:    pct(got, want),
		MinDelivered: pct(t.minCount(), int64(pr.Sent)),
		Lost:         max(want-got, 0),
		Drops:        c.Drops().sub(d0),
		Blocked:      pr.BlockedCalls > 0,
		BlockedCalls: pr.BlockedCalls,
		MaxCallMS:    float64(pr.MaxCall) / float64(time.Millisecond),
		Errors:       pr.Errors,
		FirstError:   pr.FirstError,
		TimeLimited:  pr.TimeLimited,
		PublishSecs:  pr.elapsed().Seconds(),
	}
	if last := t.lastReceive(); last > pr.Start {
		b.CompleteSecs = time.Duration(last - pr.Start).Seconds()
	}
	b.classify(p)
	return b, nil
}

// classify sets StillArriving and Silent from the raw figures: the wait
// ended while deliveries were still coming in if the last one came less
// than DrainIdle before the wait's end (publishing end + DrainMax).
func (b *BurstResult) classify(p Params) {
	if b.Lost > 0 && b.CompleteSecs-b.PublishSecs > (p.DrainMax-p.DrainIdle).Seconds() {
		b.StillArriving = true
	}
	b.Silent = b.Lost > 0 && b.Errors == 0 && b.Drops.Events == 0 && !b.StillArriving
}
