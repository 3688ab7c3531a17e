package main

import (
	"context"
	"time"
)

// blockedCall is how long one Publish call must take to count as the
// publisher being held back (backpressure) rather than scheduling noise.
const blockedCall = 5 * time.Millisecond

// load is what one publishing run offers.
type load struct {
	size  int           // message size in bytes (≥ headerLen)
	count int           // messages to send at most
	rate  float64       // messages per second; 0 = unpaced
	limit time.Duration // stop publishing after this long, whatever count says
}

// pubResult is what the publisher saw.
type pubResult struct {
	Sent       int           `json:"sent"`
	Start      int64         `json:"-"` // monotonic ns of the first send
	End        int64         `json:"-"` // monotonic ns after the last send returned
	Errors     int           `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	MaxCall    time.Duration `json:"max_call_ns"`
	// BlockedCalls counts calls that took at least blockedCall.
	BlockedCalls int `json:"blocked_calls"`
	// TimeLimited is true when limit stopped the run before count.
	TimeLimited bool `json:"time_limited"`
}

// elapsed is the publishing time.
func (p pubResult) elapsed() time.Duration { return time.Duration(p.End - p.Start) }

// publish sends l on c as trial t. Pacing follows the clock, not the
// previous send: after a stall it catches up with a burst of the messages
// that are due, as a real producer with a queue would.
func publish(ctx context.Context, c PubSubCluster, t *trial, l load) pubResult {
	buf := make([]byte, max(l.size, headerLen))
	for i := headerLen; i < len(buf); i++ {
		buf[i] = byte(i)
	}
	var r pubResult
	r.Start = now()
	stop := r.Start + int64(l.limit)
	for seq := 0; seq < l.count; seq++ {
		if ctx.Err() != nil {
			break
		}
		if l.rate > 0 {
			due := r.Start + int64(float64(seq)/l.rate*1e9)
			if wait := due - now(); wait > 0 {
				time.Sleep(time.Duration(wait))
			}
		}
		before := now()
		if l.limit > 0 && before > stop {
			r.TimeLimited = true
			break
		}
		putHeader(buf, t.id, uint64(seq), before)
		err := c.Publish(ctx, buf)
		d := time.Duration(now() - before)
		r.MaxCall = max(r.MaxCall, d)
		if d >= blockedCall {
			r.BlockedCalls++
		}
		if err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = err.Error()
			}
			continue
		}
		r.Sent++
	}
	r.End = now()
	return r
}
