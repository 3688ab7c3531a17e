package ormap

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// poison is the delta of issue 11, attack 1: no entries, a context claiming
// dots 1…2^62 of victim, from origin (none if empty).
func poison(origin, victim ReplicaID) Delta {
	d := Delta{origin: origin, ctx: Context{rows: []ctxRow{{victim, ivs{{1, maxCounter}}}}}}
	if origin != "" && origin != victim {
		d.ctx = d.ctx.Union(Context{rows: []ctxRow{{origin, ivs{{1, 1}}}}})
	}
	return d
}

// TestPoisonContextWaits: a keyed delta claiming dots of another replica
// that the receiver has not seen waits, removes nothing, and does not hide
// the victim's later writes; it never becomes ready.
func TestPoisonContextWaits(t *testing.T) {
	a, b := New("a"), New("b")
	mustJoin(t, b, a.Set("k", []byte("a1"), ts(1, 0)))
	frame := EncodeDelta(poison("m", "a"))
	d, err := DecodeDelta(frame, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CheckOwn(); err != nil {
		t.Fatalf("CheckOwn: %v", err)
	}
	if !b.HasGap(d) {
		t.Fatal("HasGap misses the unready poison")
	}
	if ch := mustJoin(t, b, d); ch != nil || b.Pending() != 1 {
		t.Fatalf("poison applied: %v, pending %d", ch, b.Pending())
	}
	mustGet(t, b, "k", "a1")
	// a's later writes are applied, the poison still waits.
	for i := 2; i <= 5; i++ {
		mustJoin(t, b, a.Set("k", []byte(fmt.Sprint("a", i)), ts(int64(i), 0)))
	}
	mustGet(t, b, "k", "a5")
	if b.Pending() != 1 || b.Context().Max("a") != 5 {
		t.Fatalf("pending %d, context %v", b.Pending(), b.Context())
	}
	// A delta of a's own may claim anything of a: it hides only a's writes.
	own := poison("a", "a")
	if err := own.CheckOwn(); err != nil {
		t.Fatal(err)
	}
	if !b.ready(own) {
		t.Fatal("the origin's own row must not delay its delta")
	}
}

// TestHonestContextWithinDeps: the context of every delta of Set, Delete and
// of their Merge on one replica, outside the origin's row, is within its
// deps — so the readiness rule delays no honest delta more than deps did.
func TestHonestContextWithinDeps(t *testing.T) {
	for _, seed := range lawSeeds(500) {
		w := newWorld(seed, 3, 4).run(t, 40)
		batches := make(map[ReplicaID]Delta)
		for _, d := range w.deltas {
			if err := d.CheckOwn(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			checkWithinDeps(t, seed, d)
			batches[d.origin] = batches[d.origin].Merge(d)
			checkWithinDeps(t, seed, batches[d.origin])
		}
	}
}

func checkWithinDeps(t *testing.T, seed uint64, d Delta) {
	t.Helper()
	if err := d.CheckOwn(); err != nil {
		t.Fatalf("seed %d: merged batch: %v", seed, err)
	}
	for _, r := range d.ctx.rows {
		if r.r != d.origin && !subsetIvs(r.iv, d.deps.row(r.r)) {
			t.Fatalf("seed %d: delta of %s claims %s:%v beyond its deps %v", seed, d.origin, r.r, r.iv, d.deps)
		}
	}
}

func TestCheckOwn(t *testing.T) {
	a, b := New("a"), New("b")
	mustJoin(t, b, a.Set("x", []byte("1"), ts(1, 0)))
	set := b.Set("y", []byte("2"), ts(2, 0))
	for name, d := range map[string]Delta{
		"sync reply":       a.Diff(Context{}),
		"no origin":        poison("", "a"),
		"merge of two":     set.Merge(a.Set("z", nil, ts(3, 0))),
		"others' entries":  {origin: "m", ctx: set.ctx.Union(contextOf([]Dot{{"m", 1}})), groups: set.groups},
		"a global delta":   {origin: "b", global: true, ctx: set.ctx, groups: set.groups},
		"empty, no origin": {},
	} {
		if err := d.CheckOwn(); !errors.Is(err, ErrNotOwn) {
			t.Errorf("%s: CheckOwn = %v, want ErrNotOwn", name, err)
		}
	}
	if err := set.CheckOwn(); err != nil {
		t.Fatal(err)
	}
}

// TestPendingBoundedPerSource: a source flooding never-ready deltas evicts
// only its own, the total stays within the bounds, and an honest source's
// held delta is applied when its dependency comes.
func TestPendingBoundedPerSource(t *testing.T) {
	c := New("c")
	c.SetBounds(Bounds{MaxPendingBytes: 4 << 20, MaxSourceBytes: 1 << 20, MaxPending: 64})
	// Honest: b's delta depends on a:1, which c has not seen yet.
	a, b := New("a"), New("b")
	s1 := a.Set("k", []byte("a1"), ts(1, 0))
	mustJoin(t, b, s1)
	s2 := b.Set("k", []byte("b1"), ts(2, 0))
	if _, err := c.JoinFrom(s2, 0, "peer-b"); err != nil || c.Pending() != 1 {
		t.Fatalf("join: %v, pending %d", err, c.Pending())
	}
	// Attackers: many sources, each flooding large never-ready deltas.
	big := strings.Repeat("x", 100<<10)
	for src := range 8 {
		m := New(ReplicaID(fmt.Sprint("m", src)))
		for i := range 40 {
			d := m.Set(fmt.Sprint("p", i), []byte(big), ts(1, 0))
			d.ctx = d.ctx.Union(Context{rows: []ctxRow{{"a", ivs{{1, maxCounter}}}}})
			if _, err := c.JoinFrom(d, 0, fmt.Sprint("peer-m", src)); err != nil {
				t.Fatal(err)
			}
			st := c.PendingStats()
			if st.Bytes > 4<<20 || st.Deltas > 64 {
				t.Fatalf("pending %+v over the bounds", st)
			}
		}
	}
	if err := c.verify(); err != nil {
		t.Fatal(err)
	}
	st := c.PendingStats()
	if st.Dropped == 0 {
		t.Fatalf("nothing dropped: %+v", st)
	}
	// b's delta survived the flood: a:1 releases it.
	mustJoin(t, c, s1)
	mustGet(t, c, "k", "b1")
	// A delta larger than a source's share is not held at all.
	m := New("huge")
	d := m.Set("h", []byte(strings.Repeat("y", 2<<20)), ts(1, 0))
	d.ctx = d.ctx.Union(Context{rows: []ctxRow{{"zz", ivs{{1, 1}}}}})
	before := c.PendingStats()
	if _, err := c.JoinFrom(d, 0, "peer-h"); err != nil {
		t.Fatal(err)
	}
	if after := c.PendingStats(); after.Deltas != before.Deltas || after.Dropped != before.Dropped+1 {
		t.Fatalf("huge delta: %+v, then %+v", before, after)
	}
}

// TestBoundsReplicas: a join that would make a map know more replicas than
// MaxReplicas is refused, keyed or global, and changes nothing; a held
// delta found beyond the bound once ready is dropped.
func TestBoundsReplicas(t *testing.T) {
	c := New("c")
	c.SetBounds(Bounds{MaxReplicas: 4})
	w := New("w")
	mustJoin(t, c, w.Set("k", []byte("v"), ts(1, 0)))
	var dots []Dot
	for i := range 3 {
		dots = append(dots, Dot{ReplicaID(fmt.Sprint("r", i)), 1})
	}
	flood := Delta{origin: "w", global: true, ctx: contextOf(dots)}
	before := clone(c)
	if _, err := c.Join(flood); !errors.Is(err, ErrBounds) {
		t.Fatalf("Join = %v, want ErrBounds", err)
	}
	if err := sameState(c, before); err != nil {
		t.Fatal(err)
	}
	// Two new replicas fit (c, w, r0, r1).
	if _, err := c.Join(Delta{origin: "w", global: true, ctx: contextOf(dots[:2])}); err != nil {
		t.Fatal(err)
	}
	// A held delta of a fifth replica: dropped once ready.
	x := New("x")
	mustJoin(t, x, w.Set("k2", []byte("v"), ts(2, 0)))
	held := x.Set("k2", []byte("x"), ts(3, 0))
	held.ctx = held.ctx.Union(contextOf([]Dot{{"r0", 1}, {"w", 3}}))
	held.deps = held.deps.Union(contextOf([]Dot{{"w", 3}}))
	if _, err := c.Join(held); err != nil || c.Pending() != 1 {
		t.Fatalf("join: %v, pending %d", err, c.Pending())
	}
	w.Set("k3", nil, ts(3, 0))
	if _, err := c.Join(w.Diff(c.Context())); err != nil {
		t.Fatal(err)
	}
	if st := c.PendingStats(); st.Deltas != 0 || st.Dropped != 1 || c.Knows("x") || c.Replicas() != 4 {
		t.Fatalf("pending %+v, knows x %v, %d replicas", st, c.Knows("x"), c.Replicas())
	}
	if err := c.verify(); err != nil {
		t.Fatal(err)
	}
}

// TestBoundsIntervals: a join that would grow the context past
// MaxIntervals is refused; one that adds no interval passes at the bound.
func TestBoundsIntervals(t *testing.T) {
	c := New("c")
	c.SetBounds(Bounds{MaxIntervals: 10})
	frag := func(r ReplicaID, from, n int) Delta {
		var dots []Dot
		for i := range n {
			dots = append(dots, Dot{r, uint64(from + 2*i)})
		}
		return Delta{origin: r, ctx: contextOf(dots)}
	}
	if _, err := c.Join(frag("a", 1, 8)); err != nil {
		t.Fatal(err)
	}
	before := clone(c)
	if _, err := c.Join(frag("b", 1, 3)); !errors.Is(err, ErrBounds) {
		t.Fatalf("Join = %v, want ErrBounds", err)
	}
	if err := sameState(c, before); err != nil {
		t.Fatal(err)
	}
	// Filling a's holes merges intervals: always allowed.
	if _, err := c.Join(frag("a", 2, 7)); err != nil {
		t.Fatal(err)
	}
	if c.Intervals() != 1 || !slices.Equal(c.Context().Ranges("a"), []Interval{{1, 15}}) {
		t.Fatalf("context %v, %d intervals", c.Context(), c.Intervals())
	}
	c.Set("own", nil, ts(0, 0))
	if c.Intervals() != 2 {
		t.Fatalf("%d intervals after a Set", c.Intervals())
	}
	if err := c.verify(); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, m *Map, key, want string) {
	t.Helper()
	if got := vals(m, key); !slices.Equal(got, []string{want}) {
		t.Fatalf("%s: %q = %v, want [%s]", m.Replica(), key, got, want)
	}
}
