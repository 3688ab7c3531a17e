package ormap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func iv(pairs ...uint64) ivs {
	var s ivs
	for i := 0; i < len(pairs); i += 2 {
		s = append(s, Interval{pairs[i], pairs[i+1]})
	}
	return s
}

func TestIvsAdd(t *testing.T) {
	tests := []struct {
		in     ivs
		lo, hi uint64
		want   ivs
	}{
		{nil, 1, 1, iv(1, 1)},
		{iv(1, 5), 6, 6, iv(1, 6)},       // extend: the usual case
		{iv(1, 5), 7, 7, iv(1, 5, 7, 7)}, // out of order: a cloud dot
		{iv(1, 5, 7, 7), 6, 6, iv(1, 7)}, // fills the hole
		{iv(3, 5), 1, 1, iv(1, 1, 3, 5)}, // before
		{iv(3, 5), 2, 2, iv(2, 5)},       // touches from below
		{iv(3, 5), 4, 4, iv(3, 5)},       // already in
		{iv(1, 2, 5, 6, 9, 9), 3, 8, iv(1, 9)},
		{iv(1, 2, 5, 6, 9, 9), 4, 4, iv(1, 2, 4, 6, 9, 9)},
		{iv(1, 2, 10, 12), 5, 6, iv(1, 2, 5, 6, 10, 12)},
		{iv(2, 2), 1, 3, iv(1, 3)},
	}
	for _, tt := range tests {
		got := append(ivs(nil), tt.in...)
		got.add(tt.lo, tt.hi)
		if !slices.Equal(got, tt.want) || !got.valid() {
			t.Errorf("%v + [%d,%d] = %v, want %v", tt.in, tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestIvsSetOps(t *testing.T) {
	tests := []struct {
		a, b, union, diff ivs
		subset, overlap   bool
	}{
		{nil, nil, nil, nil, true, false},
		{iv(1, 5), nil, iv(1, 5), iv(1, 5), false, false},
		{nil, iv(1, 5), iv(1, 5), nil, true, false},
		{iv(1, 5), iv(1, 5), iv(1, 5), nil, true, true},
		{iv(1, 5), iv(6, 9), iv(1, 9), iv(1, 5), false, false},
		{iv(1, 5), iv(3, 3), iv(1, 5), iv(1, 2, 4, 5), false, true},
		{iv(3, 3), iv(1, 5), iv(1, 5), nil, true, true},
		{iv(1, 10), iv(2, 3, 5, 5, 9, 12), iv(1, 12), iv(1, 1, 4, 4, 6, 8), false, true},
		{iv(1, 2, 8, 9), iv(4, 5), iv(1, 2, 4, 5, 8, 9), iv(1, 2, 8, 9), false, false},
		{iv(5, 9), iv(1, 5, 9, 20), iv(1, 20), iv(6, 8), false, true},
	}
	for _, tt := range tests {
		if got := unionIvs(tt.a, tt.b); !slices.Equal(got, tt.union) {
			t.Errorf("%v ∪ %v = %v, want %v", tt.a, tt.b, got, tt.union)
		}
		if got := diffIvs(tt.a, tt.b); !slices.Equal(got, tt.diff) {
			t.Errorf("%v \\ %v = %v, want %v", tt.a, tt.b, got, tt.diff)
		}
		if got := subsetIvs(tt.a, tt.b); got != tt.subset {
			t.Errorf("%v ⊆ %v = %v", tt.a, tt.b, got)
		}
		if got := overlapIvs(tt.a, tt.b); got != tt.overlap {
			t.Errorf("%v ∩ %v ≠ ∅: %v", tt.a, tt.b, got)
		}
	}
}

// TestIvsRandom checks every interval operation against plain bit sets.
func TestIvsRandom(t *testing.T) {
	const span = 40
	gen := func(rng *rand.Rand) (ivs, uint64) {
		var s ivs
		var bits uint64
		for range rng.IntN(12) {
			lo := 1 + uint64(rng.IntN(span))
			hi := min(lo+uint64(rng.IntN(4)), span)
			s.add(lo, hi)
			for c := lo; c <= hi; c++ {
				bits |= 1 << c
			}
		}
		return s, bits
	}
	toBits := func(s ivs) uint64 {
		var b uint64
		for _, x := range s {
			for c := x.Lo; c <= x.Hi; c++ {
				b |= 1 << c
			}
		}
		return b
	}
	for seed := uint64(1); seed <= uint64(cases(5000)); seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		a, ab := gen(rng)
		b, bb := gen(rng)
		if !a.valid() || toBits(a) != ab {
			t.Fatalf("seed %d: add built %v", seed, a)
		}
		check := func(what string, got ivs, want uint64) {
			if !got.valid() || toBits(got) != want {
				t.Fatalf("seed %d: %s(%v, %v) = %v", seed, what, a, b, got)
			}
		}
		check("union", unionIvs(a, b), ab|bb)
		check("diff", diffIvs(a, b), ab&^bb)
		if subsetIvs(a, b) != (ab&^bb == 0) || overlapIvs(a, b) != (ab&bb != 0) {
			t.Fatalf("seed %d: subset/overlap of %v, %v", seed, a, b)
		}
		for c := uint64(0); c <= span+1; c++ {
			if a.contains(c) != (ab&(1<<c) != 0) {
				t.Fatalf("seed %d: %v contains %d", seed, a, c)
			}
		}
		var cs []uint64
		for c := uint64(1); c <= span; c++ {
			if ab&(1<<c) != 0 {
				cs = append(cs, c)
			}
		}
		check("runs", runs(cs), ab)
		if a.size() != uint64(len(cs)) {
			t.Fatalf("seed %d: size %d, want %d", seed, a.size(), len(cs))
		}
	}
}

func TestContext(t *testing.T) {
	a := contextOf([]Dot{{"a", 1}, {"a", 2}, {"a", 3}, {"a", 7}, {"b", 2}})
	b := contextOf([]Dot{{"a", 3}, {"a", 4}, {"c", 1}})
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"a", a.String(), "{a:1-3,7 b:2}"},
		{"union", a.Union(b).String(), "{a:1-4,7 b:2 c:1}"},
		{"difference", a.Difference(b).String(), "{a:1-2,7 b:2}"},
		{"difference to empty", b.Difference(a.Union(b)).String(), "{}"},
		{"size", fmt.Sprint(a.Size()), "5"},
		{"intervals", fmt.Sprint(a.Intervals()), "3"},
		{"replicas", fmt.Sprint(a.Union(b).Replicas()), "[a b c]"},
		{"ranges", fmt.Sprint(a.Ranges("a")), "[{1 3} {7 7}]"},
		{"max", fmt.Sprint(a.Max("a"), a.Max("z")), "7 0"},
		{"contains", fmt.Sprint(a.Contains(Dot{"a", 7}), a.Contains(Dot{"a", 6}), a.Contains(Dot{"z", 1})), "true false false"},
		{"subset", fmt.Sprint(a.SubsetOf(a.Union(b)), a.SubsetOf(b), Context{}.SubsetOf(b)), "true false true"},
		{"equal", fmt.Sprint(a.Equal(a.Union(a)), a.Equal(b), Context{}.Equal(Context{})), "true false true"},
		{"empty", fmt.Sprint(Context{}.IsEmpty(), a.IsEmpty()), "true false"},
		{"odd id", contextOf([]Dot{{"x y", 1}}).String(), `{"x y":1}`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	// Immutability: operations never change their operands.
	before := a.String()
	_ = a.Union(b)
	_ = a.Difference(b)
	if a.String() != before {
		t.Fatalf("Union/Difference changed the receiver: %v", a)
	}
}

// TestLiveSetPaths: Diff's bitmap and list paths subtract alike.
func TestLiveSetPaths(t *testing.T) {
	for seed := uint64(1); seed <= uint64(cases(2000)); seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		var iv ivs
		for range 1 + rng.IntN(6) {
			lo := 1 + uint64(rng.IntN(300))
			iv.add(lo, lo+uint64(rng.IntN(80)))
		}
		bitmap := liveSet{base: iv[0].Lo, bits: make([]uint64, (iv.max()-iv[0].Lo)/64+1)}
		var list liveSet
		var cs []uint64
		for _, x := range iv {
			for c := x.Lo; c <= x.Hi; c++ {
				if rng.IntN(3) > 0 {
					bitmap.add(c)
					list.add(c)
					cs = append(cs, c)
				}
			}
		}
		want := diffIvs(iv, runs(cs))
		if a, b := bitmap.subtractFrom(iv), list.subtractFrom(iv); !slices.Equal(a, want) || !slices.Equal(b, want) {
			t.Fatalf("seed %d: %v minus %d counters: bitmap %v, list %v, want %v", seed, iv, len(cs), a, b, want)
		}
	}
}

// TestDiffSparseCounters drives Diff down its list path: counters far apart.
func TestDiffSparseCounters(t *testing.T) {
	frame := fb{1, 2}.u(1).s("x").raw(1).u(0).u(1, 0, 2, 0, 0, 1e9-1, 0).u(0).
		u(2).u(0).s("a").u(1).u(0, 1, 0, 0).s("1").u(0).s("b").u(1).u(0, 1e9+2, 0, 0).s("2")
	d, err := DecodeDelta(frame, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := New("m")
	mustJoin(t, m, d)
	if got := m.Context().String(); got != "{x:1,1000000002}" {
		t.Fatalf("context %s", got)
	}
	m.Set("a", []byte("3"), ts(1, 0)) // x:1 is dead now
	peer := New("p")
	mustJoin(t, peer, d)
	reply := m.Diff(peer.Context())
	if got := reply.Context().String(); got != "{m:1 x:1}" {
		t.Fatalf("reply context %s", got)
	}
	mustJoin(t, peer, reply)
	requireSame(t, 0, "after sync", m, peer)
}
