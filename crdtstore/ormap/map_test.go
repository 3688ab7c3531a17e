package ormap

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// vals returns the values of key's siblings, in Get's order.
func vals(m *Map, key string) []string {
	var out []string
	for _, e := range m.GetAll(key) {
		out = append(out, string(e.Value))
	}
	return out
}

func TestSetGetDelete(t *testing.T) {
	m := New("a")
	if _, ok := m.Get("k"); ok || m.Len() != 0 || m.GetAll("k") != nil {
		t.Fatal("empty map has a value")
	}
	if _, ok := m.Delete("k"); ok || !m.Context().IsEmpty() {
		t.Fatal("Delete of an absent key did something")
	}
	d := m.Set("k", []byte("v1"), ts(1, 0))
	if e, ok := m.Get("k"); !ok || string(e.Value) != "v1" || e.Dot != (Dot{"a", 1}) || e.Time != ts(1, 0) {
		t.Fatalf("Get = %v, %v", e, ok)
	}
	if got := fmt.Sprintln(d.Keys(), d.Context(), d.Deps(), d.Origin(), d.MaxTime()); got != "[k] {a:1} {} a 1.0\n" {
		t.Fatalf("Set delta: %s", got)
	}
	d = m.Set("k", []byte("v2"), ts(0, 0)) // an older timestamp still overwrites
	if got := fmt.Sprint(vals(m, "k"), d.Context(), d.Deps()); got != "[v2] {a:1-2} {a:1}" {
		t.Fatalf("overwrite: %s", got)
	}
	d, ok := m.Delete("k")
	if got := fmt.Sprint(ok, m.Len(), d.Keys(), d.Entries("k"), d.Context(), d.Deps()); got != "true 0 [k] [] {a:2-3} {a:2}" {
		t.Fatalf("Delete: %s", got)
	}
	m.Set("k", []byte("v3"), ts(0, 0)) // re-Set after Delete
	if got := fmt.Sprint(vals(m, "k"), m.Context(), m.Len()); got != "[v3] {a:1-4} 1" {
		t.Fatalf("re-Set: %s", got)
	}
	// The value is copied on the way in and on the way out.
	buf := []byte("mutable")
	m.Set("b", buf, ts(0, 0))
	buf[0] = 'X'
	e, _ := m.Get("b")
	e.Value[1] = 'Y'
	if got := vals(m, "b"); got[0] != "mutable" {
		t.Fatalf("value aliased: %q", got)
	}
	if err := m.verify(); err != nil {
		t.Fatal(err)
	}
}

// TestSiblingOrder: concurrent Sets stay as siblings, ordered by timestamp,
// then replica id (byte order), then counter, the same on every replica.
func TestSiblingOrder(t *testing.T) {
	tests := []struct {
		name   string
		writes []struct {
			r  ReplicaID
			ts Timestamp
		}
		want []string
	}{
		{"latest timestamp first", []struct {
			r  ReplicaID
			ts Timestamp
		}{{"a", ts(5, 0)}, {"b", ts(7, 0)}, {"c", ts(6, 0)}}, []string{"b", "c", "a"}},
		{"logical counts", []struct {
			r  ReplicaID
			ts Timestamp
		}{{"a", ts(5, 2)}, {"b", ts(5, 1)}}, []string{"a", "b"}},
		{"tie: greater replica id, byte order", []struct {
			r  ReplicaID
			ts Timestamp
		}{{"ab", ts(5, 0)}, {"b", ts(5, 0)}, {"a", ts(5, 0)}, {"B", ts(5, 0)}}, []string{"b", "ab", "a", "B"}},
	}
	for _, tt := range tests {
		var ms []*Map
		var ds []Delta
		for _, w := range tt.writes {
			m := New(w.r)
			ds = append(ds, m.Set("k", []byte(w.r), w.ts))
			ms = append(ms, m)
		}
		for i, m := range ms {
			for j, d := range ds {
				if i != j {
					mustJoin(t, m, d)
				}
			}
			if got := vals(m, "k"); !slices.Equal(got, tt.want) {
				t.Errorf("%s: replica %s sees %v, want %v", tt.name, m.Replica(), got, tt.want)
			}
			if e, _ := m.Get("k"); string(e.Value) != tt.want[0] {
				t.Errorf("%s: Get = %s", tt.name, e.Value)
			}
		}
	}
}

// TestSiblingCounterTieBreak: two live writes of one replica with the same
// timestamp (possible while a delete is in flight): the higher counter first.
func TestSiblingCounterTieBreak(t *testing.T) {
	a, b, c := New("a"), New("b"), New("c")
	s1 := a.Set("k", []byte("a1"), ts(5, 0))
	mustJoin(t, b, s1)
	mustJoin(t, c, s1)
	del, _ := b.Delete("k") // b removes a1; c has not heard yet
	mustJoin(t, a, del)
	s2 := a.Set("k", []byte("a2"), ts(5, 0)) // overwrites nothing: deps empty
	mustJoin(t, c, s2)
	if got := vals(c, "k"); !slices.Equal(got, []string{"a2", "a1"}) {
		t.Fatalf("c sees %v", got)
	}
	mustJoin(t, c, del)
	if got := vals(c, "k"); !slices.Equal(got, []string{"a2"}) {
		t.Fatalf("after the delete c sees %v", got)
	}
}

// TestCausallyLaterSetWins: a Set that has seen another overwrites it, even
// with an older timestamp (a clock behind, or not observed).
func TestCausallyLaterSetWins(t *testing.T) {
	a, b := New("a"), New("b")
	mustJoin(t, b, a.Set("k", []byte("old"), ts(100, 0)))
	d := b.Set("k", []byte("new"), ts(1, 0))
	mustJoin(t, a, d)
	for _, m := range []*Map{a, b} {
		if got := vals(m, "k"); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("%s sees %v", m.Replica(), got)
		}
	}
}

// TestAddWins: a Delete removes only what its replica had seen; a
// concurrent Set survives it, on every replica, in any order.
func TestAddWins(t *testing.T) {
	for _, order := range []string{"delete first", "set first"} {
		a, b, c := New("a"), New("b"), New("c")
		s0 := a.Set("k", []byte("v0"), ts(1, 0))
		mustJoin(t, b, s0)
		mustJoin(t, c, s0)
		del, _ := a.Delete("k")
		set := b.Set("k", []byte("v1"), ts(0, 0)) // concurrent, older clock
		mustJoin(t, a, set)
		mustJoin(t, b, del)
		if order == "delete first" {
			mustJoin(t, c, del)
			mustJoin(t, c, set)
		} else {
			mustJoin(t, c, set)
			mustJoin(t, c, del)
		}
		for _, m := range []*Map{a, b, c} {
			if got := vals(m, "k"); !slices.Equal(got, []string{"v1"}) {
				t.Fatalf("%s: %s sees %v", order, m.Replica(), got)
			}
		}
		requireSame(t, 0, order, a, c)
	}
}

func TestJoinChanges(t *testing.T) {
	a, b := New("a"), New("b")
	ch := mustJoin(t, b, a.Set("x", []byte("1"), ts(1, 0)))
	if got := fmt.Sprint(ch); got != "[{x {{a 1} 1.0 [49] 0} false false}]" {
		t.Fatalf("new key: %s", got)
	}
	d := a.Set("x", []byte("2"), ts(2, 0))
	if got := fmt.Sprint(mustJoin(t, b, d)); got != "[{x {{a 2} 2.0 [50] 0} false false}]" {
		t.Fatalf("overwrite: %s", got)
	}
	if ch := mustJoin(t, b, d); ch != nil {
		t.Fatalf("duplicate delta reported %v", ch)
	}
	// A losing sibling changes nothing visible.
	c := New("c")
	mustJoin(t, c, snapshot(a))
	lose := c.Set("y", []byte("c"), ts(0, 0))
	mustJoin(t, b, a.Set("y", []byte("a"), ts(9, 0)))
	if ch := mustJoin(t, b, lose); ch != nil || !slices.Equal(vals(b, "y"), []string{"a", "c"}) {
		t.Fatalf("losing sibling: %v %v", ch, vals(b, "y"))
	}
	del, _ := a.Delete("x")
	if got := fmt.Sprint(mustJoin(t, b, del)); got != "[{x {{ 0} 0.0 [] 0} true false}]" {
		t.Fatalf("delete: %s", got)
	}
	// A sync reply reports every key it changed, sorted.
	fresh := New("f")
	ch = mustJoin(t, fresh, b.Diff(fresh.Context()))
	if len(ch) != 1 || ch[0].Key != "y" || string(ch[0].Entry.Value) != "a" {
		t.Fatalf("snapshot: %v", ch)
	}
}

// TestCausalReadiness: a delta that overwrote a dot the receiver has never
// seen waits for it; HasGap reports it; it applies as soon as the dot comes.
func TestCausalReadiness(t *testing.T) {
	a, b, c := New("a"), New("b"), New("c")
	s1 := a.Set("k", []byte("a1"), ts(1, 0))
	mustJoin(t, b, s1)
	s2 := b.Set("k", []byte("b1"), ts(2, 0)) // overwrites a:1
	if !c.HasGap(s2) {
		t.Fatal("HasGap misses a missing dependency")
	}
	if ch := mustJoin(t, c, s2); ch != nil || c.Pending() != 1 || !c.Context().IsEmpty() {
		t.Fatalf("unready delta applied: %v, pending %d, ctx %v", ch, c.Pending(), c.Context())
	}
	ch := mustJoin(t, c, s1)
	if c.Pending() != 0 || !slices.Equal(vals(c, "k"), []string{"b1"}) {
		t.Fatalf("after the dependency: pending %d, %v", c.Pending(), vals(c, "k"))
	}
	if len(ch) != 1 || string(ch[0].Entry.Value) != "b1" {
		t.Fatalf("changes %v", ch)
	}
	if c.HasGap(s2) || c.HasGap(s1) {
		t.Fatal("HasGap after catching up")
	}
	// A sync also releases held deltas.
	d := New("d")
	mustJoin(t, d, s2)
	mustJoin(t, d, b.Diff(d.Context()))
	if d.Pending() != 0 {
		t.Fatal("sync did not release the held delta")
	}
	requireSame(t, 0, "c vs d", c, d)
}

func TestMaxPending(t *testing.T) {
	a, b := New("a"), New("b")
	mustJoin(t, a, b.Set("k", []byte("x"), ts(0, 0))) // a has b:1; c will not
	c := New("c")
	var ds []Delta
	for i := range MaxPending + 5 {
		ds = append(ds, a.Set("k", []byte(fmt.Sprint(i)), ts(0, 0)))
	}
	for _, d := range ds[1:] {
		mustJoin(t, c, d) // each waits for its predecessor
	}
	if c.Pending() != MaxPending {
		t.Fatalf("pending %d", c.Pending())
	}
	mustJoin(t, c, a.Diff(c.Context()))
	if c.Pending() != 0 {
		t.Fatalf("pending %d after sync", c.Pending())
	}
	requireSame(t, 0, "after sync", a, c)
}

func TestHasGap(t *testing.T) {
	r := New("r")
	var ds []Delta
	for i := range 9 {
		ds = append(ds, r.Set(fmt.Sprint("k", i), nil, ts(0, 0))) // r:1..9
	}
	tests := []struct {
		name string
		have []int // which of r's deltas (1-based) the receiver joined
		next int
		want bool
	}{
		{"next in order", []int{1, 2, 3, 4, 5}, 6, false},
		{"one lost", []int{1, 2, 3, 4, 5}, 7, true},
		{"first ever is 1", nil, 1, false},
		{"first ever is 3", nil, 3, true},
		{"fills the hole", []int{1, 2, 3, 4, 5, 7}, 6, false},
		{"old hole below", []int{1, 2, 4}, 5, true},
		{"duplicate", []int{1, 2, 3}, 2, false},
	}
	for _, tt := range tests {
		m := New("m")
		for _, i := range tt.have {
			mustJoin(t, m, ds[i-1])
		}
		if got := m.HasGap(ds[tt.next-1]); got != tt.want {
			t.Errorf("%s: HasGap = %v", tt.name, got)
		}
		mustJoin(t, m, ds[tt.next-1])
		if got := m.HasGap(ds[tt.next-1]); got != tt.want {
			t.Errorf("%s: HasGap after Join = %v", tt.name, got)
		}
	}
	if New("m").HasGap(Delta{}) {
		t.Error("HasGap of the empty delta")
	}
}

func TestForeignDot(t *testing.T) {
	a := New("a")
	a.Set("k", []byte("1"), ts(0, 0))
	a.Set("k", []byte("2"), ts(0, 0))
	reborn := New("a") // the same id reused after losing state: a misuse
	if _, err := reborn.Join(snapshot(a)); !errors.Is(err, ErrForeignDot) {
		t.Fatalf("Join = %v", err)
	}
	if reborn.Len() != 0 || !reborn.Context().IsEmpty() || reborn.Pending() != 0 {
		t.Fatal("a refused delta changed the map")
	}
}

// TestSyncTrapSharedEntriesSurvive is the regression test for the sync
// trap. A and B share most entries; B has changes of its own, among them
// removals of entries A still holds. The sync reply must bring B's news and
// removals and must not delete the entries that B skipped because A already
// had them. The naive reply — missing entries plus B's full context — does
// delete them; the test shows that too, so it cannot pass vacuously.
func TestSyncTrapSharedEntriesSurvive(t *testing.T) {
	a, b := New("a"), New("b")
	for i := range 1000 {
		a.Set(fmt.Sprintf("shared/%04d", i), []byte("v"), ts(int64(i), 0))
	}
	mustJoin(t, b, snapshot(a))
	for i := range 10 { // B, disconnected: 10 new keys, 5 removals of shared ones
		b.Set(fmt.Sprintf("new/%d", i), []byte("n"), ts(2000, 0))
	}
	for i := range 5 {
		b.Delete(fmt.Sprintf("shared/%04d", i*100))
	}
	a.Set("mine", []byte("a"), ts(3000, 0)) // and A one of its own

	cA := a.Context()
	reply := b.Diff(cA)
	if reply.Len() != 10 {
		t.Fatalf("reply carries %d keys, want the 10 new ones", reply.Len())
	}
	got := clone(a)
	mustJoin(t, got, reply)
	if got.Len() != 1000-5+10+1 {
		t.Fatalf("after the reply A has %d keys, want %d", got.Len(), 1000-5+10+1)
	}
	for i := range 1000 {
		k := fmt.Sprintf("shared/%04d", i)
		if _, ok := got.Get(k); ok != (i%100 != 0 || i >= 500) {
			t.Fatalf("%s: present=%v", k, ok)
		}
	}
	// The symmetric answer completes the sync.
	mustJoin(t, b, got.Diff(b.Context()))
	requireSame(t, 0, "after the sync", got, b)

	// The trap: B's full context instead of D.
	naive := reply
	naive.ctx = b.Context()
	trapped := clone(a)
	mustJoin(t, trapped, naive)
	if trapped.Len() >= 100 {
		t.Fatalf("the naive reply kept %d keys: the test no longer shows the trap", trapped.Len())
	}
}

// TestSyncExchange walks through the protocol's cases and its cost.
func TestSyncExchange(t *testing.T) {
	a, b := New("a"), New("b")
	const n = 10000
	for i := range n {
		if _, err := b.Join(a.Set(fmt.Sprintf("key/%05d", i), make([]byte, 100), ts(int64(i), 0))); err != nil {
			t.Fatal(err)
		}
	}
	// In sync: one comparison of contexts settles it.
	if !a.Context().Equal(b.Context()) {
		t.Fatal("contexts differ")
	}
	snap := len(EncodeDelta(snapshot(a)))
	// B changes 10 keys: the reply is proportional to the change.
	for i := range 10 {
		b.Set(fmt.Sprintf("key/%05d", i*997), make([]byte, 100), ts(n+int64(i), 0))
	}
	req := EncodeContext(a.Context())
	reply := EncodeDelta(b.Diff(a.Context()))
	if len(reply) > 2000 || len(req) > 100 {
		t.Fatalf("request %d B, reply %d B for 10 changed keys", len(req), len(reply))
	}
	// A has nothing B lacks: C_A ⊆ C_B, so A's answer is empty.
	answer := a.Diff(b.Context())
	if !answer.IsEmpty() {
		t.Fatalf("answer carries %d keys", answer.Len())
	}
	t.Logf("snapshot %d B; request %d B, reply %d B, answer %d B", snap, len(req), len(reply), len(EncodeDelta(answer)))
}

// TestDiffWorstCase documents the worst case of a sync reply's context: when
// live dots are scattered among dead ones, D needs an interval per live key.
func TestDiffWorstCase(t *testing.T) {
	a := New("a")
	const keys = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 * keys { // random overwrites: the live dots end up scattered
		a.Set(fmt.Sprint(rng.IntN(keys)), nil, ts(0, 0))
	}
	b := New("b")
	mustJoin(t, b, snapshot(a))
	a.Set("0", []byte("x"), ts(9, 0)) // one change
	d := a.Diff(b.Context())
	if d.Len() != 1 || d.Context().Intervals() < a.Len()/4 { // ~ live keys, not ~ changes
		t.Fatalf("reply: %d keys, %d intervals", d.Len(), d.Context().Intervals())
	}
	t.Logf("1 change after %d random writes to %d keys: reply context has %d intervals, %d bytes",
		5*keys, a.Len(), d.Context().Intervals(), len(EncodeDelta(d)))
}

func TestDeltaMergeCoalesces(t *testing.T) {
	a, b := New("a"), New("b")
	var batch Delta
	batch = batch.Merge(a.Set("x", []byte("1"), ts(1, 0)))
	batch = batch.Merge(a.Set("x", []byte("2"), ts(2, 0)))
	batch = batch.Merge(a.Set("y", []byte("3"), ts(3, 0)))
	d, _ := a.Delete("y")
	batch = batch.Merge(d)
	if got := fmt.Sprintln(batch.Origin(), batch.Keys(), batch.Context(), batch.Deps(), batch.MaxTime()); got != "a [x y] {a:1-4} {} 2.0\n" {
		t.Fatalf("batch: %s", got)
	}
	ch := mustJoin(t, b, batch)
	if len(ch) != 1 || ch[0].Key != "x" || string(ch[0].Entry.Value) != "2" {
		t.Fatalf("changes %v", ch)
	}
	requireSame(t, 0, "after the batch", a, b)
	if got := batch.Merge(New("c").Set("z", nil, ts(0, 0))).Origin(); got != "" {
		t.Fatalf("mixed origin %q", got)
	}
}

func TestKeysAndScan(t *testing.T) {
	m := New("a")
	for _, k := range []string{"b/2", "a/1", "b/1", "c", "b/10", "b", "ba"} {
		m.Set(k, []byte(k), ts(0, 0))
	}
	m.Delete("b/10")
	if got := m.Keys("b/"); !slices.Equal(got, []string{"b/1", "b/2"}) {
		t.Fatalf("Keys(b/) = %v", got)
	}
	if got := m.Keys(""); len(got) != 6 || !slices.IsSorted(got) {
		t.Fatalf("Keys() = %v", got)
	}
	if got := m.Keys("zz"); got != nil {
		t.Fatalf("Keys(zz) = %v", got)
	}
	var seen []string
	for k, e := range m.Scan("b") {
		if string(e.Value) != k {
			t.Fatalf("Scan: %s = %s", k, e.Value)
		}
		seen = append(seen, k)
		if len(seen) == 3 {
			break
		}
	}
	if !slices.Equal(seen, []string{"b", "b/1", "b/2"}) {
		t.Fatalf("Scan(b) = %v", seen)
	}
}

func TestNewRejectsBadIDs(t *testing.T) {
	for _, id := range []ReplicaID{"", ReplicaID(make([]byte, MaxReplicaIDLen+1))} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d-byte id) did not panic", len(id))
				}
			}()
			New(id)
		}()
	}
	if New("x").Replica() != "x" {
		t.Error("Replica")
	}
}

// TestValuesShareAcrossGoroutines: Deltas and Contexts are immutable, so one
// may be encoded, merged and joined from several goroutines at once (run it
// with -race).
func TestValuesShareAcrossGoroutines(t *testing.T) {
	a := New("a")
	var d Delta
	for i := range 50 {
		d = d.Merge(a.Set(fmt.Sprint(i%7), []byte("v"), ts(int64(i), 0)))
	}
	c := a.Context()
	want := EncodeDelta(d)
	done := make(chan error)
	for g := range 4 {
		go func() {
			m := New(ReplicaID(fmt.Sprint("g", g)))
			var err error
			for range 20 {
				if _, err = m.Join(d); err == nil && string(EncodeDelta(d.Merge(d))) != string(want) {
					err = fmt.Errorf("goroutine %d: delta changed", g)
				}
				_ = c.Union(m.Context()).Difference(c)
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
