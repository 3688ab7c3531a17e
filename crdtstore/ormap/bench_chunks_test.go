package ormap

import (
	"bytes"
	"math"
	"runtime"
	"testing"
)

// benchSyncSource is a map of 100,000 keys × 100-byte values, a third of
// them overwritten once (so the removals are not empty).
func benchSyncSource(b *testing.B) *Map {
	b.Helper()
	m := New("src")
	val := bytes.Repeat([]byte{'v'}, 100)
	for i := range benchKeys {
		m.Set(benchKey(i), val, ts(int64(i), 0))
	}
	for i := 0; i < benchKeys; i += 3 {
		m.Set(benchKey(i), val, ts(int64(benchKeys+i), 0))
	}
	return m
}

// heapNow returns the live heap after a GC.
func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkSyncOneDiff: today's first sync of a new replica: one Diff,
// encoded, decoded and joined. Reports the frame's bytes (what each side
// holds at once beyond its store).
func BenchmarkSyncOneDiff(b *testing.B) {
	src := benchSyncSource(b)
	var frame int
	for b.Loop() {
		dst := New("dst")
		enc := EncodeDelta(src.Diff(dst.Context()))
		frame = len(enc)
		d, err := DecodeDelta(enc, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dst.Join(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(frame), "peak-frame-B")
}

// BenchmarkSyncChunked: the same sync in 1 MiB chunks: DiffStart, then
// DiffChunk, encode, decode, JoinChunk per chunk, then JoinContext.
// Reports the largest frame and the chunks.
func BenchmarkSyncChunked(b *testing.B) {
	src := benchSyncSource(b)
	var peak, chunks int
	for b.Loop() {
		dst := New("dst")
		c := dst.Context()
		removals, start := src.DiffStart(c)
		enc := EncodeDelta(removals)
		peak, chunks = len(enc), 0
		d, err := DecodeDelta(enc, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dst.Join(d); err != nil {
			b.Fatal(err)
		}
		for from := ""; ; chunks++ {
			enc := EncodeChunk(src.DiffChunk(c, start, from, 1<<20))
			peak = max(peak, len(enc))
			ch, err := DecodeChunk(enc, Limits{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := dst.JoinChunk(ch, math.MinInt64); err != nil {
				b.Fatal(err)
			}
			if ch.Done() {
				break
			}
			from = ch.Next()
		}
		if _, err := dst.JoinContext(start, math.MinInt64); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peak), "peak-frame-B")
	b.ReportMetric(float64(chunks+1), "chunks")
}

// TestChunkedSyncHeapBound checks by counting (not timing) that a chunked
// sync of a 100,000-key store holds far less beyond the two stores than
// the one-frame sync: the heap growth over the two stores, sampled after
// every chunk, stays under a few chunk sizes.
func TestChunkedSyncHeapBound(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocates a 100,000-key store")
	}
	src := New("src")
	val := bytes.Repeat([]byte{'v'}, 100)
	for i := range benchKeys {
		src.Set(benchKey(i), val, ts(int64(i), 0))
	}
	// The destination's final size: a full copy by today's one-frame sync,
	// measured first, with what that sync holds beyond the store: the
	// frame and the decoded reply, alive together before the join.
	base := heapNow()
	full := New("full")
	enc := EncodeDelta(src.Diff(Context{}))
	d, err := DecodeDelta(enc, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	oneFrame := heapNow() - base
	runtime.KeepAlive(enc)
	enc = nil
	if _, err := full.Join(d); err != nil {
		t.Fatal(err)
	}
	d = Delta{}
	store := heapNow() - base
	runtime.KeepAlive(full)
	full = nil

	const budget = 256 << 10
	dst := New("dst")
	base = heapNow()
	c := dst.Context()
	_, start := src.DiffStart(c)
	var over int64
	for from := ""; ; {
		enc := EncodeChunk(src.DiffChunk(c, start, from, budget))
		ch, err := DecodeChunk(enc, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		// Live now: dst so far (estimated: its share of the final store)
		// plus this chunk, encoded and decoded.
		share := int64(store) * int64(dst.Len()) / benchKeys
		over = max(over, int64(heapNow()-base)-share)
		runtime.KeepAlive(enc)
		if _, err := dst.JoinChunk(ch, math.MinInt64); err != nil {
			t.Fatal(err)
		}
		share = int64(store) * int64(dst.Len()) / benchKeys
		over = max(over, int64(heapNow()-base)-share)
		if ch.Done() {
			break
		}
		from = ch.Next()
	}
	t.Logf("store %d B; held beyond it: one-frame sync %d B, chunked sync at most %d B (budget %d B)", store, oneFrame, over, budget)
	if over > 8*budget {
		t.Fatalf("held %d B beyond the store, budget %d", over, budget)
	}
}
