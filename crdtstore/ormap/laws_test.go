package ormap

import (
	"testing"
)

// Law tests: Join must be a lattice join on reachable states, deltas must
// add up to states, and Diff must equal a full-state join for the requester.
// Each law runs on thousands of random worlds; a failure prints its seed,
// and failing seeds are kept in lawRegressions.

var lawRegressions = []uint64{} // seeds that once failed; run first, always

func lawSeeds(n int) []uint64 {
	seeds := append([]uint64(nil), lawRegressions...)
	for s := uint64(1); s <= uint64(cases(n)); s++ {
		seeds = append(seeds, s)
	}
	return seeds
}

func TestLawCommutative(t *testing.T) {
	for _, seed := range lawSeeds(2000) {
		w := newWorld(seed, 3, 4).run(t, 25)
		x, y := w.ms[0], w.ms[1]
		requireSame(t, seed, "x⊔y vs y⊔x", joinAll(t, x, y), joinAll(t, y, x))
		// Map-level join of the full states, not via a fresh observer.
		xy, yx := clone(x), clone(y)
		mustJoin(t, xy, snapshot(y))
		mustJoin(t, yx, snapshot(x))
		requireSame(t, seed, "clone(x)⊔y vs clone(y)⊔x", xy, yx)
	}
}

func TestLawAssociative(t *testing.T) {
	for _, seed := range lawSeeds(2000) {
		w := newWorld(seed, 3, 4).run(t, 25)
		x, y, z := w.ms[0], w.ms[1], w.ms[2]
		left := joinAll(t, joinAll(t, x, y), z)
		right := joinAll(t, x, joinAll(t, y, z))
		requireSame(t, seed, "(x⊔y)⊔z vs x⊔(y⊔z)", left, right)
	}
}

func TestLawIdempotent(t *testing.T) {
	for _, seed := range lawSeeds(2000) {
		w := newWorld(seed, 3, 4).run(t, 25)
		x := w.ms[0]
		xx := clone(x)
		if ch := mustJoin(t, xx, snapshot(x)); len(ch) != 0 {
			t.Fatalf("seed %d: x⊔x reported changes %v", seed, ch)
		}
		requireSame(t, seed, "x⊔x vs x", xx, x)
		// Every delta already applied is a no-op the second time.
		for _, d := range w.deltas {
			y := clone(w.ms[1])
			mustJoin(t, y, d)
			yy := clone(y)
			if ch := mustJoin(t, yy, d); len(ch) != 0 {
				t.Fatalf("seed %d: second join of a delta reported changes %v", seed, ch)
			}
			requireSame(t, seed, "y⊔d⊔d vs y⊔d", yy, y)
		}
	}
}

// TestLawDeltaEqualsState: a replica that has joined x0 and then receives
// the deltas x made since, in any order, with duplicates, or merged into one,
// ends in the same state as if it had joined x's full state.
func TestLawDeltaEqualsState(t *testing.T) {
	for _, seed := range lawSeeds(2000) {
		w := newWorld(seed, 3, 4).run(t, 20)
		x, y := w.ms[0], w.ms[1]
		base := joinAll(t, y, x) // a replica that has seen x0
		var ds []Delta
		for range 1 + w.rng.IntN(8) {
			if w.rng.IntN(4) == 0 { // x also hears from others meanwhile
				j := 1 + w.rng.IntN(2)
				mustJoin(t, x, w.ms[j].Set("k0", []byte("other"), ts(2, 0)))
				continue
			}
			if d := w.op(0); !d.IsEmpty() {
				ds = append(ds, d)
			}
		}
		// x's deltas carry only x's own writes; what x heard from others
		// reaches y through those others. Give y the others' states first.
		want := clone(base)
		mustJoin(t, want, snapshot(w.ms[1]))
		mustJoin(t, want, snapshot(w.ms[2]))
		mustJoin(t, want, snapshot(x))

		inOrder := clone(base)
		mustJoin(t, inOrder, snapshot(w.ms[1]))
		mustJoin(t, inOrder, snapshot(w.ms[2]))
		shuffled, merged := clone(inOrder), clone(inOrder)
		for _, d := range ds {
			mustJoin(t, inOrder, d)
		}
		requireSame(t, seed, "deltas in order vs state", inOrder, want)

		perm := w.rng.Perm(len(ds))
		for _, i := range perm {
			mustJoin(t, shuffled, ds[i])
			if w.rng.IntN(3) == 0 {
				mustJoin(t, shuffled, ds[i])
			}
		}
		requireSame(t, seed, "deltas shuffled+duplicated vs state", shuffled, want)

		var all Delta
		for _, d := range ds {
			all = all.Merge(d)
		}
		if err := all.verify(); err != nil {
			t.Fatalf("seed %d: merged delta: %v", seed, err)
		}
		mustJoin(t, merged, all)
		requireSame(t, seed, "merged delta vs state", merged, want)
	}
}

// TestLawDiffEqualsStateJoin: y ⊔ x.Diff(C_y) = y ⊔ x, also when y moved on
// after sending C_y, and the symmetric answer completes the sync.
func TestLawDiffEqualsStateJoin(t *testing.T) {
	for _, seed := range lawSeeds(2000) {
		w := newWorld(seed, 3, 4).run(t, 30)
		x, y := w.ms[0], w.ms[1]
		cy := y.Context()
		d := x.Diff(cy)
		if err := d.verify(); err != nil {
			t.Fatalf("seed %d: diff: %v", seed, err)
		}
		got := clone(y)
		mustJoin(t, got, d)
		requireSame(t, seed, "y⊔x.Diff(C_y) vs y⊔x", got, joinAll(t, y, x))

		// y moves on (writes, hears from z) before the reply arrives.
		later := clone(y)
		mustJoin(t, later, snapshot(w.ms[2]))
		later.Set("k1", []byte("late"), ts(3, 0))
		want := joinAll(t, later, x)
		mustJoin(t, later, d)
		if err := sameState(later, want); err != nil {
			// later keeps its own replica id; compare states only.
			t.Fatalf("seed %d: later-y⊔x.Diff(C_y) vs later-y⊔x: %v", seed, err)
		}

		// Symmetric answer: x ⊔ y'.Diff(C_x) with y' = y ⊔ reply.
		xx := clone(x)
		mustJoin(t, xx, got.Diff(x.Context()))
		requireSame(t, seed, "after the sync", xx, got)

		// Shortcut: C_x ⊆ c gives an empty delta.
		if e := x.Diff(x.Context().Union(cy)); !e.IsEmpty() {
			t.Fatalf("seed %d: Diff of a covering context not empty: %v keys", seed, e.Len())
		}
	}
}

func TestLawMerge(t *testing.T) {
	compared := 0
	for _, seed := range lawSeeds(2000) {
		w := newWorld(seed, 3, 4).run(t, 25)
		pick := func() Delta {
			if w.rng.IntN(4) == 0 {
				return w.ms[w.rng.IntN(3)].Diff(w.ms[w.rng.IntN(3)].Context())
			}
			return w.deltas[w.rng.IntN(len(w.deltas))]
		}
		a, b, c := pick(), pick(), pick()
		if !deltaEqual(a.Merge(b), b.Merge(a)) {
			t.Fatalf("seed %d: a⊔b != b⊔a", seed)
		}
		if !deltaEqual(a.Merge(b).Merge(c), a.Merge(b.Merge(c))) {
			t.Fatalf("seed %d: (a⊔b)⊔c != a⊔(b⊔c)", seed)
		}
		if !deltaEqual(a.Merge(a), a) {
			t.Fatalf("seed %d: a⊔a != a", seed)
		}
		if err := a.Merge(b).Merge(c).verify(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		// Joining the merge equals joining the parts (when both are ready;
		// otherwise they wait, in different pieces).
		y1, y2 := clone(w.ms[2]), clone(w.ms[2])
		if !y1.ready(a) || !y1.ready(b) {
			continue
		}
		compared++
		mustJoin(t, y1, a.Merge(b))
		mustJoin(t, y2, a)
		mustJoin(t, y2, b)
		requireSame(t, seed, "y⊔(a⊔b) vs y⊔a⊔b", y1, y2)
	}
	if compared < cases(2000)/4 {
		t.Fatalf("only %d joins compared", compared)
	}
	t.Logf("%d joins of merged deltas compared", compared)
}

// TestLawCodecRoundTrip: every delta and context survives the codec.
func TestLawCodecRoundTrip(t *testing.T) {
	for _, seed := range lawSeeds(2000) {
		w := newWorld(seed, 3, 4).run(t, 25)
		ds := append([]Delta{snapshot(w.ms[0]), w.ms[1].Diff(w.ms[2].Context())}, w.deltas...)
		for _, d := range ds {
			b := EncodeDelta(d)
			got, err := DecodeDelta(b, Limits{})
			if err != nil {
				t.Fatalf("seed %d: decode: %v", seed, err)
			}
			if !deltaEqual(got, d) || got.origin != d.origin || got.global != d.global || !got.ctx.Equal(d.ctx) {
				t.Fatalf("seed %d: round trip changed the delta", seed)
			}
		}
		c := w.ms[0].Context()
		got, err := DecodeContext(EncodeContext(c), Limits{})
		if err != nil || !got.Equal(c) {
			t.Fatalf("seed %d: context round trip: %v", seed, err)
		}
	}
}
