package crdtstore

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// maxContext encodes the largest context the limits l allow: every
// replica id of the longest length, and every interval's two numbers of
// nine bytes (counters stay below 2^62).
func maxContext(l ormap.Limits) []byte {
	b := []byte{1, 1} // wire version 1, kind context
	b = binary.AppendUvarint(b, uint64(l.MaxReplicas))
	for i := range l.MaxReplicas {
		id := []byte(strings.Repeat("r", ormap.MaxReplicaIDLen-4))
		id = binary.BigEndian.AppendUint32(id, uint32(i)) // sorted, distinct
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
	}
	b = binary.AppendUvarint(b, uint64(l.MaxReplicas))
	per := l.MaxIntervals / l.MaxReplicas
	for i := range l.MaxReplicas {
		b = binary.AppendUvarint(b, uint64(i))
		b = binary.AppendUvarint(b, uint64(per))
		for range per {
			b = binary.AppendUvarint(b, 1<<56) // gap: 9 bytes
			b = binary.AppendUvarint(b, 1<<56) // span
		}
	}
	return b
}

// The context frame limit is derived from the decoder's limits: the
// largest context they accept fits it, and it is far below MaxSyncFrame.
func TestContextFrameLimit(t *testing.T) {
	for _, sync := range []ormap.Limits{{}, {MaxReplicas: 64}, {MaxReplicas: 100, MaxIntervals: 150}} {
		l := contextLimits(sync)
		b := maxContext(l)
		if len(b) > l.MaxFrameBytes {
			t.Errorf("%+v: the largest context takes %d bytes, over the limit %d", sync, len(b), l.MaxFrameBytes)
		}
		if _, err := ormap.DecodeContext(b, l); err != nil {
			t.Errorf("%+v: the largest context does not decode: %v", sync, err)
		}
	}
	l := contextLimits(ormap.Limits{MaxFrameBytes: DefaultMaxSyncFrame})
	if l.MaxReplicas != 4096 || l.MaxIntervals != 4096*contextIntervalsPerReplica || l.MaxFrameBytes > 3<<20 {
		t.Fatalf("default context limits %+v", l)
	}
	t.Logf("context frames: at most %d bytes (%d replicas, %d intervals)", l.MaxFrameBytes, l.MaxReplicas, l.MaxIntervals)
	s := &Store{opts: Options{}.withDefaults(), syncLim: ormap.Limits{MaxFrameBytes: DefaultMaxSyncFrame}}
	if got := s.contextFrameLimit(); got != l.MaxFrameBytes+1 {
		t.Fatalf("a store reads context frames of %d bytes, want %d", got, l.MaxFrameBytes+1)
	}
	s.opts.MaxSyncFrame = 4096
	if got := s.contextFrameLimit(); got != 4096 {
		t.Fatalf("with MaxSyncFrame 4096, context frames of %d bytes", got)
	}
	// One interval more than the limits allow is refused.
	small := ormap.Limits{MaxReplicas: 2, MaxIntervals: 2 * contextIntervalsPerReplica}
	b := maxContext(ormap.Limits{MaxReplicas: 2, MaxIntervals: 2 * (contextIntervalsPerReplica + 1)})
	if _, err := ormap.DecodeContext(b, contextLimits(small)); !errors.Is(err, ormap.ErrTooLarge) {
		t.Fatalf("a context over the interval limit: %v, want ErrTooLarge", err)
	}
}

// fakeStream is a Stream that records Reset.
type fakeStream struct {
	Stream
	reset bool
}

func (f *fakeStream) Reset() error { f.reset = true; return nil }

// freeze stops the refill of p's buckets (its clock is an hour ahead) and
// returns them.
func freeze(s *Store, p string) *peerLimits {
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	pl := s.peerLimitsLocked(p, time.Now())
	pl.at = time.Now().Add(time.Hour)
	return pl
}

func TestPeerServeLimits(t *testing.T) {
	s := &Store{opts: Options{MaxSyncFrame: 1000}.withDefaults()}
	s.log = s.opts.Logger
	pl := freeze(s, "p")
	for i := range serveBurst {
		if lim := s.allowServe("p"); lim != limitNone {
			t.Fatalf("request %d of the burst refused: %v", i, lim)
		}
	}
	if lim := s.allowServe("p"); lim != limitRate {
		t.Fatalf("a request beyond the burst: %v, want limitRate", lim)
	}
	s.creditJoin("p") // its sync on connect
	if lim := s.allowServe("p"); lim != limitNone {
		t.Fatalf("the sync on connect refused: %v", lim)
	}
	if lim := s.allowServe("p"); lim != limitRate {
		t.Fatalf("a request after it: %v, want limitRate", lim)
	}
	if lim := s.allowServe("q"); lim != limitNone {
		t.Fatalf("another peer refused: %v", lim)
	}

	// The reply budget: one reply may go into debt; none starts until it
	// is paid.
	s.lim.mu.Lock()
	pl.tokens = serveBurst
	s.lim.mu.Unlock()
	s.chargeServe("p", 999)
	if lim := s.allowServe("p"); lim != limitNone {
		t.Fatalf("a request within the budget: %v", lim)
	}
	s.chargeServe("p", 5000)
	if lim := s.allowServe("p"); lim != limitBudget {
		t.Fatalf("a request in debt: %v, want limitBudget", lim)
	}
	s.lim.mu.Lock()
	pl.at = time.Now().Add(-4 * serveBytesWindow) // a debt of 4,999, refilled by 1,000 per window
	s.lim.mu.Unlock()
	if lim := s.allowServe("p"); lim != limitBudget {
		t.Fatalf("a request four windows later: %v, want limitBudget", lim)
	}
	s.lim.mu.Lock()
	pl.at = time.Now().Add(-serveBytesWindow) // the last 999
	s.lim.mu.Unlock()
	if lim := s.allowServe("p"); lim != limitNone {
		t.Fatalf("a request once the debt is paid: %v", lim)
	}

	// One served stream per peer: the newer resets the older.
	a, b := &fakeStream{}, &fakeStream{}
	ga := s.admitServed("p", a)
	gb := s.admitServed("p", b)
	if !a.reset || b.reset || s.lim.refused[limitStreams].Load() != 1 {
		t.Fatalf("reset: older %v, newer %v, counted %d", a.reset, b.reset, s.lim.refused[limitStreams].Load())
	}
	s.endServed("p", ga) // the older one ending does not end the newer
	if pl.served != b {
		t.Fatal("the older stream's end cleared the newer one")
	}
	s.endServed("p", gb)

	// A peer whose buckets are full again is forgotten; one in debt is not.
	s.chargeServe("q", 5000)
	s.lim.mu.Lock()
	pl.at, pl.warned = time.Now().Add(-time.Hour), time.Time{}
	s.lim.mu.Unlock()
	s.sweepLimits()
	if _, ok := s.lim.peers["p"]; ok {
		t.Fatal("a peer with full buckets not forgotten")
	}
	if _, ok := s.lim.peers["q"]; !ok {
		t.Fatal("a peer in debt forgotten: reconnecting would refill its budget")
	}
}
