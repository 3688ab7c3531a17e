package main

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// Every benchmark message starts with a header the harness writes and reads
// back on delivery:
//
//	trial  uint32  which measurement the message belongs to
//	seq    uint64  0, 1, 2, … within the trial
//	sent   int64   send time, nanoseconds on the process's monotonic clock
//
// Late messages of an earlier trial are recognised by the trial number and
// ignored, so one cluster can serve several measurements in a row.
const headerLen = 4 + 8 + 8

// epoch is the origin of the monotonic clock carried in messages. Publisher
// and subscribers live in this process, so receive time − send time is the
// one-way latency with no clock skew.
var epoch = time.Now()

// now returns monotonic nanoseconds since epoch.
func now() int64 { return int64(time.Since(epoch)) }

func putHeader(b []byte, trial uint32, seq uint64, sent int64) {
	binary.LittleEndian.PutUint32(b, trial)
	binary.LittleEndian.PutUint64(b[4:], seq)
	binary.LittleEndian.PutUint64(b[12:], uint64(sent))
}

func readHeader(b []byte) (trial uint32, seq uint64, sent int64, ok bool) {
	if len(b) < headerLen {
		return 0, 0, 0, false
	}
	return binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint64(b[4:]),
		int64(binary.LittleEndian.Uint64(b[12:])), true
}

// recorder receives every delivery of a cluster and files it under the
// current trial.
type recorder struct {
	subs    int // subscribers: participants 1..subs
	cur     atomic.Pointer[trial]
	nextID  atomic.Uint32
	all     atomic.Uint64 // every delivery, of any trial: activity
	stale   atomic.Uint64 // deliveries of an earlier trial
	garbled atomic.Uint64 // deliveries without a header
}

// trial is one measurement's per-subscriber counters.
type trial struct {
	id  uint32
	rec *recorder
	sub []subCounters // index 0 is participant 1
}

type subCounters struct {
	count atomic.Int64 // deliveries
	last  atomic.Int64 // receive time of the latest delivery
	// lat[seq] is latency+1 in ns (0: not received), when recording.
	lat []atomic.Int64
	_   [24]byte // 64 bytes: keep subscribers' hot counters on separate cache lines
}

func newRecorder(subs int) *recorder { return &recorder{subs: subs} }

// quiesceMax bounds the wait for an earlier trial's backlog.
const quiesceMax = 5 * time.Second

// begin starts a new trial; latencies are kept for seq < keepLatency.
func (r *recorder) begin(keepLatency int) *trial {
	t := &trial{id: r.nextID.Add(1), rec: r, sub: make([]subCounters, r.subs)}
	if keepLatency > 0 {
		for i := range t.sub {
			t.sub[i].lat = make([]atomic.Int64, keepLatency)
		}
	}
	r.cur.Store(t)
	return t
}

// deliver is given to the system as its delivery callback.
func (r *recorder) deliver(sub int, data []byte) {
	r.all.Add(1)
	id, seq, sent, ok := readHeader(data)
	if !ok || sub < 1 || sub > r.subs {
		r.garbled.Add(1)
		return
	}
	t := r.cur.Load()
	if t == nil || t.id != id {
		r.stale.Add(1)
		return
	}
	at := now()
	s := &t.sub[sub-1]
	if s.lat != nil && seq < uint64(len(s.lat)) {
		if !s.lat[seq].CompareAndSwap(0, at-sent+1) {
			return // duplicate: counted once
		}
	}
	s.count.Add(1)
	s.last.Store(at)
}

// counts returns each subscriber's deliveries so far.
func (t *trial) counts() []int64 {
	out := make([]int64, len(t.sub))
	for i := range t.sub {
		out[i] = t.sub[i].count.Load()
	}
	return out
}

// minCount is the fewest deliveries any subscriber has.
func (t *trial) minCount() int64 {
	m := int64(-1)
	for i := range t.sub {
		if c := t.sub[i].count.Load(); m < 0 || c < m {
			m = c
		}
	}
	return max(m, 0)
}

func (t *trial) totalCount() int64 {
	var n int64
	for i := range t.sub {
		n += t.sub[i].count.Load()
	}
	return n
}

// lastReceive is the latest receive time over all subscribers.
func (t *trial) lastReceive() int64 {
	var m int64
	for i := range t.sub {
		m = max(m, t.sub[i].last.Load())
	}
	return m
}

// latencies returns every recorded latency in ns, over all subscribers.
func (t *trial) latencies() []int64 {
	var out []int64
	for i := range t.sub {
		for j := range t.sub[i].lat {
			if v := t.sub[i].lat[j].Load(); v > 0 {
				out = append(out, v-1)
			}
		}
	}
	return out
}

// waitDelivered waits until every subscriber has want messages, or no
// delivery at all (of any trial) happened for idle, or maxWait has passed.
// It reports whether everything arrived.
func (t *trial) waitDelivered(ctx context.Context, want int64, idle, maxWait time.Duration) bool {
	return t.rec.waitIdle(ctx, idle, maxWait, func() bool { return t.minCount() >= want })
}

// quiesce waits until no delivery happened for idle, at most maxWait, and
// reports whether that happened: deliveries of earlier trials still
// arriving would eat into the next one's measurement.
func (r *recorder) quiesce(ctx context.Context, idle, maxWait time.Duration) bool {
	last, lastChange := r.all.Load(), time.Now()
	r.waitIdle(ctx, idle, maxWait, func() bool {
		if a := r.all.Load(); a != last {
			last, lastChange = a, time.Now()
		}
		return time.Since(lastChange) >= idle
	})
	return time.Since(lastChange) >= idle
}

// waitIdle polls until done, or no delivery for idle, or maxWait, or ctx
// ends; it returns done().
func (r *recorder) waitIdle(ctx context.Context, idle, maxWait time.Duration, done func() bool) bool {
	deadline := time.Now().Add(maxWait)
	last, lastChange := r.all.Load(), time.Now()
	for {
		if done() {
			return true
		}
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
}
