package main

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// QueueResult is the queue scenario: participant 0 publishes QueueCount
// messages of 256 B unpaced to one queue group of N−1 members (one per
// other participant). Every message must reach exactly one member, the
// members about equally.
type QueueResult struct {
	Members int `json:"members"`
	Sent    int `json:"sent"`
	// PubRate is what the publisher achieved (sent / publishing time).
	PubRate float64 `json:"publish_per_sec"`
	Errors  int     `json:"errors"`
	// Delivered counts distinct messages received by some member;
	// Duplicates, deliveries beyond the first of a message; Missing,
	// messages sent that no member got.
	Delivered  int `json:"delivered"`
	Duplicates int `json:"duplicates"`
	Missing    int `json:"missing"`
	// PerMember is each member's deliveries; SpreadPct the largest
	// deviation of one from an even share (Delivered ÷ Members), in %.
	PerMember []int   `json:"per_member"`
	SpreadPct float64 `json:"spread_pct"`
	// MsgsPerSec is Delivered ÷ (last receive − first send).
	MsgsPerSec float64 `json:"msgs_per_sec"`
	Drops      Drops   `json:"drops"`
	// WarmupSecs is how long it took until every member had received a
	// warm-up message (the publisher knows them all).
	WarmupSecs float64 `json:"warmup_secs"`
}

// queueTrial counts one publishing run's deliveries, message by message.
type queueTrial struct {
	id    uint32
	seen  []atomic.Uint32 // deliveries of each seq
	count []atomic.Int64  // deliveries per member (index 0: participant 1)
	dup   atomic.Int64
	last  atomic.Int64 // latest receive
}

// queueRecorder files the members' deliveries under the current trial.
type queueRecorder struct {
	cur     atomic.Pointer[queueTrial]
	all     atomic.Int64 // every delivery: activity
	garbled atomic.Int64
}

func (r *queueRecorder) begin(id uint32, count, members int) *queueTrial {
	t := &queueTrial{id: id, seen: make([]atomic.Uint32, count), count: make([]atomic.Int64, members)}
	r.cur.Store(t)
	return t
}

func (r *queueRecorder) deliver(member int, data []byte) {
	r.all.Add(1)
	id, seq, _, ok := readHeader(data)
	t := r.cur.Load()
	if !ok || t == nil || member < 1 || member > len(t.count) {
		r.garbled.Add(1)
		return
	}
	if id != t.id || seq >= uint64(len(t.seen)) {
		return // an earlier trial's
	}
	if t.seen[seq].Add(1) > 1 {
		t.dup.Add(1)
	}
	t.count[member-1].Add(1)
	t.last.Store(now())
}

// distinct counts the messages some member got.
func (t *queueTrial) distinct() int {
	n := 0
	for i := range t.seen {
		if t.seen[i].Load() > 0 {
			n++
		}
	}
	return n
}

func (t *queueTrial) total() int64 {
	var n int64
	for i := range t.count {
		n += t.count[i].Load()
	}
	return n
}

// waitFor polls until done, no delivery for idle, maxWait, or ctx's end.
func (r *queueRecorder) waitFor(ctx context.Context, idle, maxWait time.Duration, done func() bool) bool {
	deadline := time.Now().Add(maxWait)
	last, lastChange := r.all.Load(), time.Now()
	for !done() {
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
		n := time.Now()
		if a := r.all.Load(); a != last {
			last, lastChange = a, n
		}
		if n.Sub(lastChange) >= idle || n.After(deadline) {
			return done()
		}
	}
	return true
}

// queueWarmupMax bounds the wait for every member to get a message.
const queueWarmupMax = 15 * time.Second

func runQueue(ctx context.Context, cs CallSystem, n int, env *Env) (res *QueueResult, err error) {
	p := env.P
	members := n - 1
	rec := &queueRecorder{}
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	c, err := cs.OpenQueue(octx, n, env.Open, rec.deliver)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	res = &QueueResult{Members: members}

	// Warm-up: a message every 2 ms until every member got some (the
	// publisher then knows them all: Reflect has no call that waits for
	// queue-group members), then p.Warmup more, paced, awaited.
	const warmCount = 20_000
	w := rec.begin(1, warmCount, members)
	t0 := time.Now()
	buf := requestPayload(small)
	seq := 0
	for ; seq < warmCount && ctx.Err() == nil; seq++ {
		everyone := true
		for i := range w.count {
			everyone = everyone && w.count[i].Load() > 0
		}
		if everyone {
			break
		}
		if time.Since(t0) > queueWarmupMax {
			return res, fmt.Errorf("warm-up: after %v not every member got a message: %v", queueWarmupMax, loads(w.count))
		}
		putHeader(buf, w.id, uint64(seq), now())
		if err := c.Publish(ctx, buf); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.WarmupSecs = time.Since(t0).Seconds()
	for end := min(seq+p.Warmup, warmCount); seq < end && ctx.Err() == nil; seq++ {
		putHeader(buf, w.id, uint64(seq), now())
		if err := c.Publish(ctx, buf); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
	rec.waitFor(ctx, p.DrainIdle, p.DrainMax, func() bool { return w.total() >= int64(seq) })

	stop, err := env.startProfile()
	if err != nil {
		return res, err
	}
	defer stop()
	t := rec.begin(2, p.QueueCount, members)
	d0 := c.Drops()
	pr := publish(ctx, c, &trial{id: t.id}, load{size: small, count: p.QueueCount, limit: p.QueueFor})
	rec.waitFor(ctx, p.DrainIdle, p.DrainMax, func() bool { return t.total() >= int64(pr.Sent) })
	res.Drops = c.Drops().sub(d0)
	res.Sent, res.Errors = pr.Sent, pr.Errors
	if e := pr.elapsed(); e > 0 {
		res.PubRate = float64(pr.Sent) / e.Seconds()
	}
	res.Delivered = t.distinct()
	res.Duplicates = int(t.dup.Load())
	res.Missing = pr.Sent - res.Delivered
	res.PerMember = loads(t.count)
	if res.Delivered > 0 {
		even := float64(res.Delivered) / float64(members)
		for _, k := range res.PerMember {
			res.SpreadPct = max(res.SpreadPct, 100*math.Abs(float64(k)-even)/even)
		}
		if span := time.Duration(t.last.Load() - pr.Start); span > 0 {
			res.MsgsPerSec = float64(res.Delivered) / span.Seconds()
		}
	}
	if g := rec.garbled.Load(); g > 0 {
		return res, fmt.Errorf("%d deliveries without a benchmark header", g)
	}
	return res, nil
}

// loads returns each member's deliveries.
func loads(count []atomic.Int64) []int {
	out := make([]int, len(count))
	for i := range count {
		out[i] = int(count[i].Load())
	}
	return out
}
