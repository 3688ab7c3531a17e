package ormap

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

func mustVerify(t *testing.T, m *Map) {
	t.Helper()
	if err := m.verify(); err != nil {
		t.Fatal(err)
	}
}

func TestSetTTLExpires(t *testing.T) {
	m := New("a")
	d := m.SetTTL("k", []byte("v"), ts(100, 0), 50)
	mustVerify(t, m)
	if e := d.Entries("k")[0]; e.Expires != 150 {
		t.Fatalf("delta entry expires at %d, want 150", e.Expires)
	}
	if exp, ok := m.NextExpiry(); !ok || exp != 150 {
		t.Fatalf("NextExpiry = %d, %v", exp, ok)
	}
	for now, want := range map[int64]bool{math.MinInt64: true, 100: true, 149: true, 150: false, 1 << 40: false} {
		v := m.At(now)
		_, ok := v.Get("k")
		if ok != want || (v.Len() == 1) != want || (len(v.Keys("")) == 1) != want || (v.Siblings("k") == 1) != want || (len(v.GetAll("k")) == 1) != want {
			t.Errorf("at %d: visible %v, Len %d, Keys %v; want visible %v", now, ok, v.Len(), v.Keys(""), want)
		}
	}
	if ch, more := m.Expire(149, 0); ch != nil || more {
		t.Fatalf("Expire before the expiry: %v %v", ch, more)
	}
	ctx := m.Context()
	ch, more := m.Expire(150, 0)
	if more || len(ch) != 1 || ch[0].Key != "k" || !ch[0].Deleted || !ch[0].Expired {
		t.Fatalf("Expire = %+v, %v", ch, more)
	}
	mustVerify(t, m)
	if m.Len() != 0 || !m.Context().Equal(ctx) {
		t.Fatalf("after Expire: %d keys, context %v (was %v)", m.Len(), m.Context(), ctx)
	}
	if _, ok := m.NextExpiry(); ok || m.ttl.heap != nil || m.ttl.pos != nil {
		t.Fatal("the expiry index still holds something")
	}
}

// TestSetClearsTTL: a later Set without a TTL replaces the expiring value,
// and its expiry with it; Delete and overwrites unindex too.
func TestSetClearsTTL(t *testing.T) {
	m := New("a")
	m.SetTTL("k", []byte("1"), ts(1, 0), 10)
	m.Set("k", []byte("2"), ts(2, 0))
	mustVerify(t, m)
	if _, ok := m.NextExpiry(); ok {
		t.Fatal("the overwritten expiry is still indexed")
	}
	if e, ok := m.At(1 << 40).Get("k"); !ok || string(e.Value) != "2" || e.Expires != 0 {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	m.SetTTL("k", []byte("3"), ts(3, 0), 10)
	m.SetTTL("k", []byte("4"), ts(4, 0), 100)
	if exp, _ := m.NextExpiry(); exp != 104 || m.ttl.len() != 1 {
		t.Fatalf("NextExpiry %d with %d indexed", exp, m.ttl.len())
	}
	m.Delete("k")
	mustVerify(t, m)
	if m.ttl.len() != 0 {
		t.Fatal("Delete left the expiry indexed")
	}
	// ttl <= 0 is no expiry; an expiry past the end of time saturates.
	m.SetTTL("z", []byte("0"), ts(5, 0), 0)
	m.SetTTL("y", []byte("y"), ts(math.MaxInt64-1, 0), math.MaxInt64)
	if e, _ := m.Get("z"); e.Expires != 0 {
		t.Fatal("ttl 0 expires")
	}
	if e, _ := m.Get("y"); e.Expires != math.MaxInt64 {
		t.Fatalf("saturated expiry %d", e.Expires)
	}
	m.SetTTL("x", []byte("x"), ts(-5, 0), 5) // expiry 0 would mean none
	if e, _ := m.Get("x"); e.Expires != 1 {
		t.Fatalf("expiry %d, want 1", e.Expires)
	}
	mustVerify(t, m)
}

// TestTTLSiblings: each sibling expires on its own; when the visible one
// does, the next becomes visible and Expire reports it.
func TestTTLSiblings(t *testing.T) {
	a, b, obs := New("a"), New("b"), New("obs")
	mustJoin(t, obs, a.SetTTL("k", []byte("short"), ts(20, 0), 10)) // visible (later), expires at 30
	mustJoin(t, obs, b.SetTTL("k", []byte("long"), ts(10, 0), 100)) // expires at 110
	mustJoin(t, obs, b.Set("j", []byte("plain"), ts(10, 0)))
	mustJoin(t, obs, a.SetTTL("j", []byte("gone"), ts(5, 0), 1)) // a losing sibling, expires at 6
	if got := vals(obs, "k"); !slices.Equal(got, []string{"short", "long"}) {
		t.Fatalf("siblings %v", got)
	}
	if e, _ := obs.At(29).Get("k"); string(e.Value) != "short" {
		t.Fatalf("at 29: %s", e.Value)
	}
	v := obs.At(30)
	if e, _ := v.Get("k"); string(e.Value) != "long" || v.Siblings("k") != 1 || v.Siblings("j") != 1 || len(v.GetAll("j")) != 1 {
		t.Fatalf("at 30: %s, siblings %d %d", e.Value, v.Siblings("k"), v.Siblings("j"))
	}
	ch, _ := obs.Expire(30, 0)
	// j's loser expired without changing j's visible value: not reported.
	if len(ch) != 1 || ch[0].Key != "k" || ch[0].Deleted || !ch[0].Expired || string(ch[0].Entry.Value) != "long" || ch[0].Entry.Expires != 110 {
		t.Fatalf("Expire = %+v", ch)
	}
	mustVerify(t, obs)
	if len(obs.GetAll("j")) != 1 || len(obs.GetAll("k")) != 1 {
		t.Fatal("expired siblings still stored")
	}
}

// TestExpiredNeverComesBack: a replica that expired an entry does not get
// it back from a replica whose clock is behind. Expiring changes no
// context, so replicas that differ only by it are in sync; a sync reply
// sent for other changes carries the removal (the receiver drops the entry
// early, by at most the clocks' skew).
func TestExpiredNeverComesBack(t *testing.T) {
	a, b := New("a"), New("b")
	mustJoin(t, b, a.SetTTL("k", []byte("v"), ts(100, 0), 10))
	a.Expire(110, 0) // a's clock passed 110; b's is behind
	if _, err := a.JoinAt(b.Diff(a.Context()), 110); err != nil {
		t.Fatal(err)
	}
	if _, err := a.JoinAt(snapshot(b), 110); err != nil { // even a full state
		t.Fatal(err)
	}
	if _, err := a.Join(snapshot(b)); err != nil { // even at no time
		t.Fatal(err)
	}
	if a.Len() != 0 {
		t.Fatal("an expired entry came back")
	}
	if d := a.Diff(b.Context()); !d.IsEmpty() {
		t.Fatal("equal contexts, yet a sync reply")
	}
	a.Set("other", []byte("x"), ts(111, 0))
	ch := mustJoin(t, b, a.Diff(b.Context()))
	if _, ok := b.Get("k"); ok || len(ch) != 2 || !ch[0].Deleted {
		t.Fatalf("b keeps the entry a expired: %v", ch)
	}
	mustVerify(t, a)
}

// TestJoinAtSkipsExpired: an entry that arrives already expired is not
// stored and not reported, but its dot is known (later deltas that
// overwrote it are ready).
func TestJoinAtSkipsExpired(t *testing.T) {
	a, b := New("a"), New("b")
	d1 := a.SetTTL("k", []byte("old"), ts(100, 0), 10)
	d2 := a.Set("k", []byte("new"), ts(200, 0))
	ch, err := b.JoinAt(d1, 500)
	if err != nil || ch != nil || b.Len() != 0 || !b.Context().Equal(d1.Context()) {
		t.Fatalf("late expired entry: %v %v, %d keys", ch, err, b.Len())
	}
	if b.HasGap(d2) {
		t.Fatal("the overwrite waits for a dot the map knows")
	}
	ch, _ = b.JoinAt(d2, 500)
	if len(ch) != 1 || string(ch[0].Entry.Value) != "new" {
		t.Fatalf("overwrite: %v", ch)
	}
	// Not yet expired: stored as usual.
	c := New("c")
	if ch, _ := c.JoinAt(d1, 109); len(ch) != 1 || c.Len() != 1 {
		t.Fatalf("live entry: %v", ch)
	}
	mustVerify(t, b)
	mustVerify(t, c)
}

// TestExpireBounded: Expire stops after max entries and says more remain.
func TestExpireBounded(t *testing.T) {
	m := New("a")
	for i := range 100 {
		m.SetTTL(fmt.Sprintf("k%03d", i), []byte("v"), ts(int64(i), 0), 1000)
	}
	m.Set("keep", []byte("v"), ts(1, 0))
	calls, total := 0, 0
	for more := true; more; {
		var ch []Change
		ch, more = m.Expire(2000, 16)
		if len(ch) < 16 && more || len(ch) > 16 {
			t.Fatalf("call %d: %d changes, more %v", calls, len(ch), more)
		}
		for i, c := range ch {
			if !c.Deleted || !c.Expired || i > 0 && c.Key < ch[i-1].Key {
				t.Fatalf("change %+v (earliest first)", c)
			}
		}
		total += len(ch)
		calls++
		mustVerify(t, m)
	}
	if total != 100 || calls != 7 || m.Len() != 1 {
		t.Fatalf("%d expired in %d calls, %d keys left", total, calls, m.Len())
	}
}

// TestViewScan: Scan, ScanFrom, Keys and Len skip expired keys and resume.
func TestViewScan(t *testing.T) {
	m := New("a")
	for i, k := range []string{"p/a", "p/b", "p/c", "p/d", "q/a"} {
		ttl := int64(0)
		if i%2 == 1 {
			ttl = 10 // p/b and p/d expire at 11
		}
		m.SetTTL(k, []byte(k), ts(1, 0), ttl)
	}
	v := m.At(11)
	var got []string
	for k, e := range v.Scan("p/") {
		if k != string(e.Value) {
			t.Fatalf("%s = %s", k, e.Value)
		}
		got = append(got, k)
	}
	if !slices.Equal(got, []string{"p/a", "p/c"}) || !slices.Equal(v.Keys("p/"), got) || v.Len() != 3 || m.At(10).Len() != 5 {
		t.Fatalf("Scan %v, Keys %v, Len %d", got, v.Keys("p/"), v.Len())
	}
	got = nil
	for k := range v.ScanFrom("p/", "p/b\x00") {
		got = append(got, k)
	}
	if !slices.Equal(got, []string{"p/c"}) {
		t.Fatalf("ScanFrom %v", got)
	}
	for k := range v.ScanFrom("p/", "") { // from before the prefix: from the prefix
		if k != "p/a" {
			t.Fatalf("ScanFrom first %s", k)
		}
		break
	}
}

// goldenTTLDelta is New("a").SetTTL("k", "v", 5.1, 7): version 2; the
// entry's logical field is 1<<1|1 (logical 1, expiring), then the TTL 7.
const goldenTTLDelta = "0202" + "010161" + "00" + "01" + "0100010000" + "00" + "01" + "00016b" + "01" + "0001" + "0a" + "03" + "07" + "0176"

func TestWireTTL(t *testing.T) {
	d := New("a").SetTTL("k", []byte("v"), ts(5, 1), 7)
	if got := hex.EncodeToString(EncodeDelta(d)); got != goldenTTLDelta {
		t.Fatalf("delta frame\n got %s\nwant %s", got, goldenTTLDelta)
	}
	b, _ := hex.DecodeString(goldenTTLDelta)
	got, err := DecodeDelta(b, Limits{})
	if err != nil || !deltaEqual(got, d) || got.Entries("k")[0].Expires != 12 {
		t.Fatalf("decode: %v", err)
	}
	// A frame with one expiring entry is version 2 for all its entries.
	m := New("a")
	m.Set("a", []byte("x"), ts(1, 3))
	m.SetTTL("b", []byte("y"), ts(2, 0), 1)
	snap := EncodeDelta(snapshot(m))
	if snap[0] != 2 {
		t.Fatalf("version %d", snap[0])
	}
	if got, err := DecodeDelta(snap, Limits{}); err != nil || got.Entries("a")[0].Time != ts(1, 3) || got.Entries("a")[0].Expires != 0 {
		t.Fatalf("mixed frame: %v", err)
	}

	// Entry fields from "a" on: replica, counter, wall, logical field, ...
	frame := func(fields ...uint64) []byte {
		return fb{2, 2}.u(1).s("a").raw(0).u(1).u(1, 0, 1, 0, 0).u(0).u(1).u(0).s("k").u(1).u(fields...).s("v")
	}
	if _, err := DecodeDelta(frame(0, 1, 10, 1, 5), Limits{}); err != nil {
		t.Fatalf("hand-made valid frame: %v", err)
	}
	for name, b := range map[string][]byte{
		"TTL 0":               frame(0, 1, 10, 1, 0),
		"TTL past MaxInt64":   frame(0, 1, 10, 1, math.MaxInt64-4),
		"truncated TTL":       frame(0, 1, 10, 1)[:12],
		"no expiring entry":   frame(0, 1, 10, 0),
		"logical too large":   frame(0, 1, 10, 1<<33|1, 5),
		"v2 context":          {2, 1, 0, 0},
		"wall -1, TTL 2^63+1": frame(0, 1, 1, 1, 1<<63+1),
		"expiry 0":            frame(0, 1, 1, 1, 1),
	} {
		_, err := DecodeDelta(b, Limits{})
		if name == "v2 context" {
			_, err = DecodeContext(b, Limits{})
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// The largest TTL from the most negative wall still fits.
	if d, err := DecodeDelta(frame(0, 1, 1<<64-1, 1, 1<<64-1), Limits{}); err != nil || d.Entries("k")[0].Expires != math.MaxInt64 {
		t.Fatalf("extreme TTL: %v", err)
	}
}

// TestLawExpireAfterJoin: expiring before, during or after joins ends in the
// same state once every replica has expired at the same time.
func TestLawExpireAfterJoin(t *testing.T) {
	for _, seed := range lawSeeds(1000) {
		w := newWorld(seed, 3, 4).run(t, 25)
		now := int64(w.rng.IntN(12))
		x, y := w.ms[0], w.ms[1]
		plain := joinAll(t, x, y)
		plain.Expire(now, 0)

		xe, ye := clone(x), clone(y)
		xe.Expire(now, 1)
		ye.Expire(now, 0)
		if _, err := xe.JoinAt(snapshot(ye), now); err != nil {
			t.Fatal(err)
		}
		xe.Expire(now, 0)
		mustVerify(t, xe)
		obs := New("~observer")
		if _, err := obs.JoinAt(snapshot(xe), now); err != nil {
			t.Fatal(err)
		}
		requireSame(t, seed, "expire then join vs join then expire", plain, obs)
		if got, want := xe.At(now).Keys(""), plain.Keys(""); !slices.Equal(got, want) {
			t.Fatalf("seed %d: keys %v vs %v", seed, got, want)
		}
	}
}
