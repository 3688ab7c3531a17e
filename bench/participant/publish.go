package participant

import (
	"context"
	"time"
)

// blockedCall is how long one Publish call must take to count as the
// publisher being held back (as in the bench's publish.go).
const blockedCall = 5 * time.Millisecond

// PubReport is what the publisher did (the bench's pubResult, with the
// times).
type PubReport struct {
	Sent       int    `json:"sent"`
	StartNS    int64  `json:"start_ns"` // CLOCK_MONOTONIC of the first send
	EndNS      int64  `json:"end_ns"`   // after the last send returned
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	MaxCallNS  int64  `json:"max_call_ns"`
	// BlockedCalls counts calls that took at least blockedCall.
	BlockedCalls int `json:"blocked_calls"`
	// TimeLimited is true when limit stopped the run before count.
	TimeLimited bool `json:"time_limited"`
}

// publish sends count messages of size bytes as trial id, rate per second
// (0: unpaced), stopping after limit (0: none). Pacing follows the clock,
// not the previous send, as the bench's publish does.
func publish(ctx context.Context, m Member, id uint32, size, count int, rate float64, limit time.Duration) PubReport {
	buf := make([]byte, max(size, HeaderLen))
	for i := HeaderLen; i < len(buf); i++ {
		buf[i] = byte(i)
	}
	var r PubReport
	r.StartNS = Now()
	stop := r.StartNS + int64(limit)
	for seq := 0; seq < count; seq++ {
		if ctx.Err() != nil {
			break
		}
		if rate > 0 {
			due := r.StartNS + int64(float64(seq)/rate*1e9)
			if wait := due - Now(); wait > 0 {
				time.Sleep(time.Duration(wait))
			}
		}
		before := Now()
		if limit > 0 && before > stop {
			r.TimeLimited = true
			break
		}
		PutHeader(buf, id, uint64(seq), before)
		err := m.Publish(ctx, buf)
		d := Now() - before
		r.MaxCallNS = max(r.MaxCallNS, d)
		if d >= int64(blockedCall) {
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
	r.EndNS = Now()
	return r
}
