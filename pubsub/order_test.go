package pubsub

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/testutil"
)

type orderSink struct {
	mu  sync.Mutex
	got []uint64
}

func (s *orderSink) deliver(b *batch) {
	s.mu.Lock()
	s.got = append(s.got, b.seq)
	s.mu.Unlock()
}

func (s *orderSink) seqs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.got...)
}

func newOrderTest() (*reorderer, *orderSink) {
	var r reorderer
	s := &orderSink{}
	r.init(s.deliver)
	return &r, s
}

func bt(author string, seq uint64) *batch { return &batch{author: []byte(author), seq: seq} }

func TestReorderPutsBackInOrder(t *testing.T) {
	r, s := newOrderTest()
	for _, q := range []uint64{10, 12, 13, 11, 14, 16, 15} {
		r.add(bt("a", q))
	}
	r.add(bt("b", 5)) // another author is independent
	if got, want := s.seqs(), []uint64{10, 11, 12, 13, 14, 15, 16, 5}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestReorderSkipsAGapAfterTheWait(t *testing.T) {
	r, s := newOrderTest()
	r.add(bt("a", 1))
	r.add(bt("a", 3)) // 2 is lost
	r.add(bt("a", 4))
	if got := s.seqs(); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("delivered %v before the wait", got)
	}
	testutil.Eventually(t, 5*time.Second, "delivery after the wait", func() bool { return len(s.seqs()) >= 3 })
	if got := s.seqs(); !slices.Equal(got, []uint64{1, 3, 4}) {
		t.Fatalf("delivered %v after the wait", got)
	}
	r.add(bt("a", 2)) // late: delivered, not lost
	r.add(bt("a", 5))
	if got := s.seqs(); !slices.Equal(got, []uint64{1, 3, 4, 2, 5}) {
		t.Fatalf("delivered %v", got)
	}
	if r.stats.skipped != 1 || r.stats.late != 1 {
		t.Fatalf("stats %+v", r.stats)
	}
}

func TestReorderBoundsWhatItHolds(t *testing.T) {
	r, s := newOrderTest()
	r.add(bt("a", 1))
	for q := uint64(3); q < 3+reorderMaxHeld; q++ {
		r.add(bt("a", q))
	}
	if got := s.seqs(); len(got) != 1+reorderMaxHeld || got[1] != 3 {
		t.Fatalf("delivered %d batches, first after the gap %v", len(got), got[1:2])
	}
	r.stop()
}

func TestReorderRestartedPublisher(t *testing.T) {
	r, s := newOrderTest()
	r.add(bt("a", 100))
	r.add(bt("a", 100+reorderRestart+5)) // new incarnation: its clock moved on
	r.add(bt("a", 100+reorderRestart+6))
	if got := s.seqs(); len(got) != 3 {
		t.Fatalf("delivered %v", got)
	}
}

func switched(author string, seq uint64) *batch {
	return &batch{author: []byte(author), seq: seq, switched: true}
}

// A switched batch (its predecessor went the other way) that is the first
// of its author to arrive waits for that predecessor; batches before the
// predecessor are delivered as they come.
func TestReorderSwitchedWaitsForItsPredecessor(t *testing.T) {
	r, s := newOrderTest()
	defer r.stop()
	r.add(switched("a", 13))
	if got := s.seqs(); len(got) != 0 {
		t.Fatalf("delivered %v before 12", got)
	}
	r.add(bt("a", 11))
	r.add(bt("a", 12))
	r.add(bt("a", 14))
	if got, want := s.seqs(), []uint64{11, 12, 13, 14}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	// For a known author the flag changes nothing: 15 is next anyway.
	r.add(switched("a", 15))
	if got := s.seqs(); r.skipped() != 0 || len(got) != 5 {
		t.Fatalf("delivered %v, skipped %d", got, r.skipped())
	}
}

// A switched batch whose predecessor never comes (this receiver was not
// among the predecessor's receivers) is delivered after the wait, and
// counts one skipped batch.
func TestReorderSwitchedPredecessorNeverComes(t *testing.T) {
	r, s := newOrderTest()
	defer r.stop()
	r.add(switched("a", 40))
	r.add(bt("a", 41))
	testutil.Eventually(t, 5*time.Second, "delivery after the wait", func() bool { return len(s.seqs()) == 2 })
	if got := s.seqs(); !slices.Equal(got, []uint64{40, 41}) || r.skipped() != 1 {
		t.Fatalf("delivered %v, skipped %d", got, r.skipped())
	}
}

// An unflagged first batch starts its author's sequence at once.
func TestReorderFirstBatchStarts(t *testing.T) {
	r, s := newOrderTest()
	defer r.stop()
	r.add(bt("a", 1<<40))
	if got := s.seqs(); len(got) != 1 {
		t.Fatalf("delivered %v", got)
	}
}

// Forgetting an author drops its sequence unless batches of it are held:
// its next batch then starts a sequence afresh, as a new publisher's does.
func TestReorderForget(t *testing.T) {
	r, s := newOrderTest()
	r.add(bt("a", 1))
	r.add(bt("b", 1))
	r.add(bt("b", 3)) // held, waiting for 2
	r.forget([]string{"a", "b", "c"})
	r.mu.Lock()
	_, a := r.authors["a"]
	_, b := r.authors["b"]
	r.mu.Unlock()
	if a || !b {
		t.Fatalf("kept a %v (want false), b %v (want true: a batch held)", a, b)
	}
	r.add(bt("a", 7))
	if got := s.seqs(); !slices.Equal(got, []uint64{1, 1, 7}) {
		t.Fatalf("delivered %v, want a's 7 at once", got)
	}
	r.stop()
}
