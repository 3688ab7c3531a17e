package ormap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"
)

// fuzzSeeds returns valid frames of every shape, for the seed corpora.
func fuzzSeeds(t testing.TB) (deltas, contexts [][]byte) {
	w := newWorld(3, 3, 3).run(t, 40)
	for _, d := range w.deltas[:min(8, len(w.deltas))] {
		deltas = append(deltas, EncodeDelta(d))
	}
	var batch Delta
	for _, d := range w.deltas {
		batch = batch.Merge(d)
	}
	deltas = append(deltas,
		EncodeDelta(batch),
		EncodeDelta(snapshot(w.ms[0])),
		EncodeDelta(w.ms[1].Diff(w.ms[2].Context())),
		EncodeDelta(Delta{}),
		EncodeDelta(poison("a", "b")),
		EncodeDelta(poison("", "a")),
		EncodeDelta(poison("m", "ab")),
	)
	g, _ := hex.DecodeString(goldenDelta)
	gt, _ := hex.DecodeString(goldenTTLDelta)
	deltas = append(deltas, g, gt)
	for _, m := range w.ms {
		contexts = append(contexts, EncodeContext(m.Context()))
	}
	gc, _ := hex.DecodeString(goldenContext)
	contexts = append(contexts, gc, EncodeContext(Context{}))
	return deltas, contexts
}

// fuzzMap is a map with some state, for joining fuzzed deltas into.
func fuzzMap(t testing.TB) *Map {
	m := New("fzbase")
	w := newWorld(3, 3, 3).run(t, 40)
	mustJoin(t, m, snapshot(w.ms[1]))
	m.Set("k0", []byte("mine"), ts(9, 9))
	return m
}

func addAll(f *testing.F, frames [][]byte) {
	for _, b := range frames {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2, 2})
	f.Add([]byte{1, 2, 0, 0, 0, 0, 0})
}

// FuzzDecodeDelta: decoding never panics; what decodes is canonical
// (re-encodes to the same bytes); joining it keeps every invariant, and a
// refused join changes nothing.
func FuzzDecodeDelta(f *testing.F) {
	deltas, _ := fuzzSeeds(f)
	addAll(f, deltas)
	base := fuzzMap(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDelta(b, Limits{MaxFrameBytes: 1 << 16})
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrFrameKind) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if err := d.verify(); err != nil {
			t.Fatalf("decoded an invalid delta: %v", err)
		}
		if re := EncodeDelta(d); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
		if !deltaEqual(d.Merge(d), d) {
			t.Fatal("d⊔d != d")
		}
		if err := d.CheckOwn(); err == nil && (!d.Keyed() || d.Origin() == "") {
			t.Fatal("CheckOwn passed a sync reply or a delta without origin")
		} else if err != nil && !errors.Is(err, ErrNotOwn) {
			t.Fatalf("CheckOwn: %v", err)
		}
		// "a" shares its id with the seeds' writers: their dots of "a" are
		// foreign to it and must be refused without a trace. tight refuses
		// what would grow it past small bounds, and holds little.
		tight := clone(base)
		tight.SetBounds(Bounds{MaxReplicas: 6, MaxIntervals: 24, MaxPending: 2, MaxPendingBytes: 2048, MaxSourceBytes: 1024})
		for _, m := range []*Map{New("fz"), New("a"), clone(base), tight} {
			before := clone(m)
			gap := m.HasGap(d)
			_, err := m.JoinFrom(d, math.MinInt64, "fuzz")
			if errors.Is(err, ErrForeignDot) || errors.Is(err, ErrBounds) {
				if err := sameState(m, before); err != nil || m.Pending() != before.Pending() {
					t.Fatalf("a refused join changed the map: %v", err)
				}
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			if err := m.verify(); err != nil {
				t.Fatalf("join broke the map: %v", err)
			}
			if m.HasGap(d) != gap {
				t.Fatal("HasGap changed with the join")
			}
			if _, err := m.Join(d); err != nil {
				t.Fatal(err)
			}
			if err := m.verify(); err != nil {
				t.Fatalf("second join broke the map: %v", err)
			}
			_ = m.Diff(Context{})
		}
		// Expiry: joining at a time and expiring, in bounded steps, keeps
		// the invariants and leaves nothing expired.
		for _, now := range []int64{math.MinInt64, d.MaxTime().Wall, math.MaxInt64} {
			m := clone(base)
			if _, err := m.JoinAt(d, now); err != nil {
				continue
			}
			if _, more := m.Expire(now, 2); more {
				if err := m.verify(); err != nil {
					t.Fatalf("bounded Expire broke the map: %v", err)
				}
			}
			m.Expire(now, 0)
			if err := m.verify(); err != nil {
				t.Fatalf("Expire broke the map: %v", err)
			}
			for k := range m.Scan("") {
				for _, e := range m.GetAll(k) {
					if e.Expired(now) {
						t.Fatalf("key %q: entry expired at %d still stored at %d", k, e.Expires, now)
					}
				}
			}
			if exp, ok := m.NextExpiry(); ok && exp <= now {
				t.Fatal("NextExpiry is in the past after Expire")
			}
		}
	})
}

// FuzzDecodeContext: decoding never panics; what decodes is canonical; a
// Diff against it is a valid delta that joins cleanly.
func FuzzDecodeContext(f *testing.F) {
	_, contexts := fuzzSeeds(f)
	addAll(f, contexts)
	base := fuzzMap(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeContext(b, Limits{MaxFrameBytes: 1 << 16})
		if err != nil {
			return
		}
		if re := EncodeContext(c); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
		if !c.Union(c).Equal(c) || !c.Difference(c).IsEmpty() || !c.SubsetOf(c.Union(base.Context())) {
			t.Fatal("context algebra")
		}
		d := base.Diff(c)
		if err := d.verify(); err != nil {
			t.Fatalf("Diff: %v", err)
		}
		o := New("fz")
		if _, err := o.Join(d); err != nil {
			t.Fatal(err)
		}
		if err := o.verify(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzMerge: any two decodable deltas merge commutatively into a valid
// delta, and joining the merge keeps the invariants.
func FuzzMerge(f *testing.F) {
	deltas, _ := fuzzSeeds(f)
	for i := range deltas {
		f.Add(deltas[i], deltas[(i+1)%len(deltas)])
	}
	f.Fuzz(func(t *testing.T, x, y []byte) {
		a, err1 := DecodeDelta(x, Limits{MaxFrameBytes: 1 << 16})
		b, err2 := DecodeDelta(y, Limits{MaxFrameBytes: 1 << 16})
		if err1 != nil || err2 != nil {
			return
		}
		ab, ba := a.Merge(b), b.Merge(a)
		if !deltaEqual(ab, ba) {
			t.Fatal("a⊔b != b⊔a")
		}
		if err := ab.verify(); err != nil {
			t.Fatal(err)
		}
		m := New("fz")
		if _, err := m.Join(ab); err != nil {
			t.Fatal(err)
		}
		if err := m.verify(); err != nil {
			t.Fatal(err)
		}
		// Joined one by one, in either order, they give the same state
		// (when neither has to wait for dots from elsewhere — deps, or
		// others' dots its context claims — and both keep
		// the keyed promise towards each other).
		if fresh := New("fz"); fresh.ready(a) && fresh.ready(b) && keyedPromise(a, b) && keyedPromise(b, a) {
			m1, m2 := New("fz"), New("fz")
			for _, p := range [][3]any{{m1, a, b}, {m2, b, a}} {
				mm := p[0].(*Map)
				for _, d := range p[1:] {
					if _, err := mm.Join(d.(Delta)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := sameState(m1, m2); err != nil {
				t.Fatalf("join order matters: %v", err)
			}
			if err := sameState(m1, m); err != nil {
				t.Fatalf("joining the merge differs: %v", err)
			}
		}
	})
}

// keyedPromise reports whether keyed delta y keeps its promise towards x:
// its context covers no entry of x under a key y does not list.
func keyedPromise(x, y Delta) bool {
	if y.global {
		return true
	}
	listed := make(map[string]bool)
	for _, g := range y.groups {
		listed[g.key] = true
	}
	for _, g := range x.groups {
		for _, e := range g.ents {
			if !listed[g.key] && y.ctx.Contains(e.dot()) {
				return false
			}
		}
	}
	return true
}
