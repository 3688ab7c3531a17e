package ormap

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// chunkSync runs a whole chunked sync of y from x through the codec with
// the given budget; it returns the number of chunks.
func chunkSync(t testing.TB, x, y *Map, budget int, now int64) int {
	t.Helper()
	cy := y.Context()
	removals, start := x.DiffStart(cy)
	d, err := DecodeDelta(EncodeDelta(removals), Limits{})
	if err != nil {
		t.Fatalf("removals: %v", err)
	}
	if _, err := y.JoinAt(d, now); err != nil {
		t.Fatalf("join removals: %v", err)
	}
	var seq ChunkSeq
	n := 0
	for from := ""; ; n++ {
		ch, err := DecodeChunk(EncodeChunk(x.DiffChunk(cy, start, from, budget)), Limits{})
		if err != nil {
			t.Fatalf("chunk: %v", err)
		}
		if err := seq.Accept(ch); err != nil {
			t.Fatal(err)
		}
		if _, err := y.JoinChunk(ch, now); err != nil {
			t.Fatalf("join chunk: %v", err)
		}
		if err := y.verify(); err != nil {
			t.Fatalf("after chunk %d: %v", n, err)
		}
		if ch.Done() {
			break
		}
		from = ch.Next()
	}
	if _, err := y.JoinContext(start, now); err != nil {
		t.Fatalf("join start context: %v", err)
	}
	return n + 1
}

// TestChunkedSyncEqualsDiff: a chunked sync, with one unbounded chunk or
// with one key a chunk, leaves the requester exactly as joining today's
// Diff does, and the symmetric answer converges both.
func TestChunkedSyncEqualsDiff(t *testing.T) {
	for _, seed := range lawSeeds(1000) {
		w := newWorld(seed, 3, 6).run(t, 40)
		x, y := w.ms[0], w.ms[1]
		want := clone(y)
		mustJoin(t, want, x.Diff(y.Context()))
		for _, budget := range []int{math.MaxInt, 1, 40} {
			got := clone(y)
			n := chunkSync(t, x, got, budget, math.MinInt64)
			requireSame(t, seed, fmt.Sprintf("chunked (budget %d, %d chunks) vs Diff", budget, n), got, want)
			if budget == math.MaxInt && n != 1 {
				t.Fatalf("seed %d: unbounded budget took %d chunks", seed, n)
			}
		}
	}
}

// TestChunkedSyncAbortedLosesNothing: cut off after any chunk, the
// requester's context claims no write it lacks (except removed ones), and
// it holds nothing it knows was overwritten; a later plain sync completes
// it.
func TestChunkedSyncAbortedLosesNothing(t *testing.T) {
	for _, seed := range lawSeeds(300) {
		w := newWorld(seed, 3, 6).run(t, 40)
		x, y := w.ms[0], w.ms[1]
		cy := y.Context()
		removals, start := x.DiffStart(cy)
		for stop := 0; ; stop++ {
			got := clone(y)
			mustJoin(t, got, removals)
			from, done := "", false
			for i := 0; i < stop && !done; i++ {
				ch := x.DiffChunk(cy, start, from, 1)
				if _, err := got.JoinChunk(ch, math.MinInt64); err != nil {
					t.Fatal(err)
				}
				from, done = ch.Next(), ch.Done()
			}
			if err := got.verify(); err != nil {
				t.Fatalf("seed %d, stop %d: %v", seed, stop, err)
			}
			// Every dot got claims is one it holds, or one x or y knows
			// and holds not (removed there).
			for _, r := range got.Context().Replicas() {
				for _, iv := range got.Context().Ranges(r) {
					for c := iv.Lo; c <= iv.Hi && c < iv.Lo+64; c++ {
						d := Dot{r, c}
						if holds(got, d) {
							continue
						}
						if !(x.Context().Contains(d) && !holds(x, d)) && !(y.Context().Contains(d) && !holds(y, d)) {
							t.Fatalf("seed %d, stop %d: claims %v, held nowhere, removed nowhere", seed, stop, d)
						}
					}
				}
			}
			mustJoin(t, got, x.Diff(got.Context()))
			requireSame(t, seed, "aborted then synced", got, joinAll(t, y, x))
			if done {
				break
			}
		}
	}
}

func holds(m *Map, d Dot) bool {
	for k := range m.Scan("") {
		for _, e := range m.GetAll(k) {
			if e.Dot == d {
				return true
			}
		}
	}
	return false
}

// TestChunkedSyncLateOverwrittenStaysGone: x wrote k twice; y pulls a
// chunk with the second write and is cut off; the first write's delta
// then arrives late. It must not come back beside the write that
// overwrote it (the first proposed scheme, without removals up front,
// took it back).
func TestChunkedSyncLateOverwrittenStaysGone(t *testing.T) {
	x, y := New("x"), New("y")
	first := x.Set("k", []byte("v1"), ts(1, 0))
	x.Set("k", []byte("v2"), ts(2, 0))
	removals, start := x.DiffStart(y.Context())
	mustJoin(t, y, removals)
	ch := x.DiffChunk(Context{}, start, "", 1)
	if _, err := y.JoinChunk(ch, math.MinInt64); err != nil {
		t.Fatal(err)
	}
	mustJoin(t, y, first) // late
	if all := y.GetAll("k"); len(all) != 1 || string(all[0].Value) != "v2" {
		t.Fatalf("k = %v, want v2 alone", all)
	}
	// Without the removals, the late write comes back as a sibling.
	z := New("z")
	if _, err := z.JoinChunk(ch, math.MinInt64); err != nil {
		t.Fatal(err)
	}
	mustJoin(t, z, first)
	if n := len(z.GetAll("k")); n != 2 {
		t.Fatalf("without removals: %d entries, want the flaw's 2", n)
	}
}

// TestJoinContextRemovesNothing: JoinContext only unites contexts, where a
// global entry-less delta with the same context removes every entry it
// covers (the sync trap).
func TestJoinContextRemovesNothing(t *testing.T) {
	x, y := New("x"), New("y")
	mustJoin(t, y, x.Set("a", []byte("1"), ts(1, 0)))
	mustJoin(t, y, x.Set("b", []byte("2"), ts(1, 0)))
	c := x.Context()
	got := clone(y)
	if _, err := got.JoinContext(c, math.MinInt64); err != nil {
		t.Fatal(err)
	}
	requireSame(t, 0, "JoinContext of a covered context", got, y)
	trap := clone(y)
	mustJoin(t, trap, Delta{global: true, ctx: c})
	if trap.Len() != 0 {
		t.Fatalf("global entry-less join kept %d keys", trap.Len())
	}
	// Foreign dots of the receiver's own replica are refused.
	if _, err := y.JoinContext(contextOf([]Dot{{"y", 5}}), 0); !errors.Is(err, ErrForeignDot) {
		t.Fatalf("foreign dot: %v", err)
	}
	if _, err := y.JoinChunk(Chunk{d: Delta{ctx: contextOf([]Dot{{"y", 5}})}}, 0); !errors.Is(err, ErrForeignDot) {
		t.Fatalf("foreign dot in a chunk: %v", err)
	}
}

func TestChunkSeqOrder(t *testing.T) {
	var s ChunkSeq
	for _, tc := range []struct {
		ch  Chunk
		err bool
	}{
		{Chunk{from: "b", next: "c"}, true}, // not the first
		{Chunk{from: "", next: "c"}, false},
		{Chunk{from: "c", next: "c"}, true}, // empty range
		{Chunk{from: "d", next: "e"}, true}, // gap
		{Chunk{from: "c", done: true}, false},
		{Chunk{from: "", done: true}, true}, // after the last
	} {
		err := s.Accept(tc.ch)
		if (err != nil) != tc.err || err != nil && !errors.Is(err, ErrChunkOrder) {
			t.Fatalf("Accept(%q, %q, %v) = %v", tc.ch.from, tc.ch.next, tc.ch.done, err)
		}
	}
	if !s.Done() {
		t.Fatal("not done after the last chunk")
	}
}

// TestDiffChunkBudget: chunks stay within their budget plus one key's
// entries, and only entries of the start context the requester lacks go.
func TestDiffChunkBudget(t *testing.T) {
	x := New("x")
	for i := range 1000 {
		x.Set(fmt.Sprintf("k%04d", i), bytes.Repeat([]byte{'v'}, 100), ts(1, 0))
	}
	known := x.Context()
	removals, start := x.DiffStart(Context{})
	if !removals.Context().IsEmpty() {
		t.Fatalf("removals of a store without removals: %v", removals.Context())
	}
	x.Set("k0500", []byte("after the start"), ts(2, 0))
	const budget = 4096
	var seq ChunkSeq
	keys, chunks := 0, 0
	for from := ""; !seq.Done(); chunks++ {
		ch := x.DiffChunk(Context{}, start, from, budget)
		if err := seq.Accept(ch); err != nil {
			t.Fatal(err)
		}
		if n := len(EncodeChunk(ch)); n > budget+200 {
			t.Fatalf("chunk of %d bytes for a budget of %d", n, budget)
		}
		for _, k := range ch.Delta().Keys() {
			if k == "k0500" {
				t.Fatal("a write newer than the start was sent")
			}
		}
		keys += ch.Len()
		from = ch.Next()
	}
	if keys != 999 || chunks < 1000*130/budget {
		t.Fatalf("%d keys in %d chunks", keys, chunks)
	}
	// A requester that knows everything gets empty chunks.
	if ch := x.DiffChunk(known, start, "", math.MaxInt); ch.Len() != 0 || !ch.Done() {
		t.Fatalf("chunk for a requester in sync: %d keys", ch.Len())
	}
}

// TestDecodeChunkRefuses: chunk frames with anything beyond a range and
// entries are malformed.
func TestDecodeChunkRefuses(t *testing.T) {
	x := New("x")
	x.Set("a", []byte("1"), ts(1, 0))
	x.Set("m", []byte("2"), ts(1, 0))
	good := x.DiffChunk(Context{}, x.Context(), "", math.MaxInt)
	if _, err := DecodeChunk(EncodeChunk(good), Limits{}); err != nil {
		t.Fatal(err)
	}
	wider := good
	wider.d.ctx = good.d.ctx.Union(contextOf([]Dot{{"x", 9}}))
	narrow := good
	narrow.from, narrow.next, narrow.done = "b", "z", false
	open := good
	open.from, open.next, open.done = "", "m", false
	withDeps := good
	withDeps.d.deps = contextOf([]Dot{{"x", 1}})
	withOrigin := good
	withOrigin.d.origin = "x"
	empty := good
	empty.d.groups = append([]group{{key: "0"}}, good.d.groups...)
	for name, ch := range map[string]Chunk{
		"context beyond entries": wider, "key before from": narrow, "key at next": open,
		"deps": withDeps, "origin": withOrigin, "key without entries": empty,
	} {
		if _, err := DecodeChunk(EncodeChunk(ch), Limits{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	b := EncodeChunk(good)
	b[1] = kindDelta
	if _, err := DecodeChunk(b, Limits{}); !errors.Is(err, ErrFrameKind) {
		t.Errorf("delta frame as chunk: %v", err)
	}
	if _, err := DecodeDelta(EncodeChunk(good), Limits{}); !errors.Is(err, ErrFrameKind) {
		t.Errorf("chunk as delta: %v", err)
	}
	if _, err := DecodeChunk(EncodeChunk(good), Limits{MaxKeyLen: 0, MaxFrameBytes: 8}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("past limits: %v", err)
	}
	if !strings.Contains(fmt.Sprint(ErrChunkOrder), "order") {
		t.Error("ErrChunkOrder text")
	}
}

// FuzzDecodeChunk: decoding never panics; what decodes is canonical, keeps
// its promises (range, context = entry dots) and joins without breaking a
// map.
func FuzzDecodeChunk(f *testing.F) {
	w := newWorld(3, 3, 3).run(f, 40)
	x := w.ms[0]
	_, start := x.DiffStart(Context{})
	for _, budget := range []int{1, 50, math.MaxInt} {
		for from := ""; ; {
			ch := x.DiffChunk(Context{}, start, from, budget)
			f.Add(EncodeChunk(ch))
			if ch.Done() {
				break
			}
			from = ch.Next()
		}
	}
	f.Add([]byte{1, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	base := fuzzMap(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := DecodeChunk(b, Limits{MaxFrameBytes: 1 << 16})
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrFrameKind) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if re := EncodeChunk(ch); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
		if err := ch.d.verify(); err != nil {
			t.Fatalf("decoded an invalid chunk: %v", err)
		}
		n := 0
		for _, g := range ch.d.groups {
			if g.key < ch.from || !ch.done && g.key >= ch.next || len(g.ents) == 0 {
				t.Fatalf("key %q outside [%q, %q) or empty", g.key, ch.from, ch.next)
			}
			n += len(g.ents)
		}
		if ch.d.ctx.Size() != uint64(n) {
			t.Fatal("context beyond the entries")
		}
		for _, m := range []*Map{New("fz"), New("a"), clone(base)} {
			before := clone(m)
			if _, err := m.JoinChunk(ch, 0); errors.Is(err, ErrForeignDot) || errors.Is(err, ErrBounds) {
				if err := sameState(m, before); err != nil {
					t.Fatalf("a refused join changed the map: %v", err)
				}
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			if err := m.verify(); err != nil {
				t.Fatalf("join broke the map: %v", err)
			}
		}
	})
}

// A replica that knows everything the sync's start holds gets one empty,
// final chunk, whatever the budget: the walk is skipped.
func TestDiffChunkInSyncIsDoneAtOnce(t *testing.T) {
	a := New("a")
	for i := range 1000 {
		a.Set(fmt.Sprintf("k%04d", i), []byte("v"), Timestamp{Wall: int64(i + 1)})
	}
	b := New("b")
	if _, err := b.Join(a.Diff(b.Context())); err != nil {
		t.Fatal(err)
	}
	_, start := a.DiffStart(b.Context())
	ch := a.DiffChunk(b.Context(), start, "", 1)
	if !ch.Done() || ch.Len() != 0 || ch.From() != "" {
		t.Fatalf("in-sync chunk: done %v, %d keys, from %q; want done, 0 keys, from \"\"", ch.Done(), ch.Len(), ch.From())
	}
	// Behind by one key, a budget of 1 makes many chunks again.
	a.Set("k0500", []byte("w"), Timestamp{Wall: 5000})
	_, start = a.DiffStart(b.Context())
	if ch := a.DiffChunk(b.Context(), start, "", 1); ch.Done() {
		t.Fatal("a chunk of budget 1 over 1000 keys is the last one")
	}
}

// With DiscardChanges, joins and expiries return no Changes and change the
// map exactly as without.
func TestDiscardChanges(t *testing.T) {
	src := New("src")
	for i := range 200 {
		src.Set(fmt.Sprintf("k%03d", i), []byte("v"), Timestamp{Wall: int64(i + 1)})
	}
	src.SetTTL("t", []byte("x"), Timestamp{Wall: 1}, 10)
	d := src.Diff(Context{})
	quiet, loud := New("q"), New("l")
	quiet.DiscardChanges(true)
	qc, err := quiet.Join(d)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := loud.Join(d)
	if err != nil {
		t.Fatal(err)
	}
	if qc != nil || len(lc) != 201 {
		t.Fatalf("changes: %d discarded (want none), %d reported (want 201)", len(qc), len(lc))
	}
	if qe, _ := quiet.Expire(100, 0); qe != nil {
		t.Fatalf("Expire reported %d changes", len(qe))
	}
	if le, _ := loud.Expire(100, 0); len(le) != 1 {
		t.Fatalf("Expire without DiscardChanges: %d changes, want 1", len(le))
	}
	if quiet.Len() != loud.Len() || !quiet.Context().Equal(loud.Context()) {
		t.Fatal("the two maps differ")
	}
	quiet.DiscardChanges(false)
	if c, _ := quiet.Join(src.Set("k000", []byte("w"), Timestamp{Wall: 500})); len(c) != 1 {
		t.Fatalf("after DiscardChanges(false): %d changes, want 1", len(c))
	}
}
