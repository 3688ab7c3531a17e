package participant

import (
	"encoding/binary"
	"sync/atomic"
)

// Every message starts with a header, the same as the bench's in-process
// one (bench/recorder.go):
//
//	trial  uint32  which measurement the message belongs to
//	seq    uint64  0, 1, 2, … within the trial
//	sent   int64   send time, CLOCK_MONOTONIC nanoseconds (Now)
//
// A subscriber ignores messages of a trial other than the current one.
const HeaderLen = 4 + 8 + 8

// PutHeader writes the header into b[:HeaderLen].
func PutHeader(b []byte, trial uint32, seq uint64, sent int64) {
	binary.LittleEndian.PutUint32(b, trial)
	binary.LittleEndian.PutUint64(b[4:], seq)
	binary.LittleEndian.PutUint64(b[12:], uint64(sent))
}

// ReadHeader reads it back; ok is false for a message too short.
func ReadHeader(b []byte) (trial uint32, seq uint64, sent int64, ok bool) {
	if len(b) < HeaderLen {
		return 0, 0, 0, false
	}
	return binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint64(b[4:]),
		int64(binary.LittleEndian.Uint64(b[12:])), true
}

// recorder is a subscriber's account of its deliveries.
type recorder struct {
	cur     atomic.Pointer[trial]
	all     atomic.Uint64 // every delivery, of any trial: activity
	garbled atomic.Uint64 // deliveries without a header
}

// trial is one measurement's counters.
type trial struct {
	id    uint32
	count atomic.Int64 // deliveries
	last  atomic.Int64 // receive time of the latest one
	// lat[seq] is latency+1 in ns (0: not received), when recording.
	lat []atomic.Int64
}

// begin makes trial id the current one; latencies are kept for seq < keep.
func (r *recorder) begin(id uint32, keep int) {
	t := &trial{id: id}
	if keep > 0 {
		t.lat = make([]atomic.Int64, keep)
	}
	r.cur.Store(t)
}

// deliver is the member's delivery callback.
func (r *recorder) deliver(data []byte) {
	r.all.Add(1)
	id, seq, sent, ok := ReadHeader(data)
	if !ok {
		r.garbled.Add(1)
		return
	}
	t := r.cur.Load()
	if t == nil || t.id != id {
		return
	}
	at := Now()
	if t.lat != nil && seq < uint64(len(t.lat)) {
		if !t.lat[seq].CompareAndSwap(0, at-sent+1) {
			return // a duplicate counts once
		}
	}
	t.count.Add(1)
	t.last.Store(at)
}

// latencies returns the recorded latencies in ns, by sequence number.
func (t *trial) latencies() []int64 {
	var out []int64
	for i := range t.lat {
		if v := t.lat[i].Load(); v > 0 {
			out = append(out, v-1)
		}
	}
	return out
}
