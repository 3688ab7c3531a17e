package ormap

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

const benchKeys = 100_000

func benchKey(i int) string { return fmt.Sprintf("key/%012d", i) } // 16 bytes

// benchMap returns a map of n keys with 16-byte values, written in random
// order, and the keys.
func benchMap(b *testing.B, id ReplicaID, n int) (*Map, []string) {
	b.Helper()
	m := New(id)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	order := rng.Perm(n)
	val := make([]byte, 16)
	for i, k := range order {
		m.Set(keys[k], val, ts(int64(i), 0))
	}
	return m, keys
}

func BenchmarkGet(b *testing.B) {
	m, keys := benchMap(b, "a", benchKeys)
	rng := rand.New(rand.NewPCG(2, 2))
	idx := make([]int, 1<<16)
	for i := range idx {
		idx[i] = rng.IntN(len(keys))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := m.Get(keys[idx[i&(1<<16-1)]]); !ok {
			b.Fatal("missing")
		}
	}
}

// BenchmarkGetLatency times single Gets to report the median and p99.
func BenchmarkGetLatency(b *testing.B) {
	m, keys := benchMap(b, "a", benchKeys)
	rng := rand.New(rand.NewPCG(3, 3))
	durs := make([]time.Duration, 0, 100_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := keys[rng.IntN(len(keys))]
		t0 := time.Now()
		m.Get(k)
		if d := time.Since(t0); len(durs) < cap(durs) {
			durs = append(durs, d)
		}
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkSet: a local overwrite of an existing key in a 100k-key map,
// delta included.
func BenchmarkSet(b *testing.B) {
	m, keys := benchMap(b, "a", benchKeys)
	rng := rand.New(rand.NewPCG(4, 4))
	val := make([]byte, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Set(keys[rng.IntN(len(keys))], val, ts(int64(i), 0))
	}
}

// BenchmarkSetNewKey: a local Set of a new key into a growing map.
func BenchmarkSetNewKey(b *testing.B) {
	m, _ := benchMap(b, "a", benchKeys)
	val := make([]byte, 16)
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = fmt.Sprintf("new/%d", rand.Uint64())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Set(keys[i], val, ts(int64(i), 0))
	}
}

// BenchmarkJoinDelta1Key: a replica of 100k keys joins one remote Set.
func BenchmarkJoinDelta1Key(b *testing.B) {
	src, keys := benchMap(b, "a", benchKeys)
	dst := New("b")
	if _, err := dst.Join(snapshot(src)); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	val := make([]byte, 16)
	ds := make([]Delta, b.N)
	for i := range ds {
		ds[i] = src.Set(keys[rng.IntN(len(keys))], val, ts(benchKeys+int64(i), 0))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := dst.Join(ds[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if dst.Pending() != 0 {
		b.Fatal("deltas held")
	}
}

// BenchmarkDiff100k10Changed: the sync reply after a reconnect.
func BenchmarkDiff100k10Changed(b *testing.B) {
	a, keys := benchMap(b, "a", benchKeys)
	peer := New("b")
	if _, err := peer.Join(snapshot(a)); err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		peer.Set(keys[i*9973], []byte("changed"), ts(1<<40, 0))
	}
	cA := a.Context()
	var d Delta
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d = peer.Diff(cA)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(EncodeDelta(d))), "reply-bytes")
	b.ReportMetric(float64(len(EncodeContext(cA))), "request-bytes")
}

func BenchmarkEncodeSnapshot100k(b *testing.B) {
	m, _ := benchMap(b, "a", benchKeys)
	d := snapshot(m)
	b.SetBytes(int64(len(EncodeDelta(d))))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		EncodeDelta(d)
	}
}

func BenchmarkDecodeSnapshot100k(b *testing.B) {
	m, _ := benchMap(b, "a", benchKeys)
	frame := EncodeDelta(snapshot(m))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeDelta(frame, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJoinSnapshot100k: a new replica applies a full state.
func BenchmarkJoinSnapshot100k(b *testing.B) {
	m, _ := benchMap(b, "a", benchKeys)
	d := snapshot(m)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := New("b").Join(d); err != nil {
			b.Fatal(err)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryPerKey reports the heap a Map costs per live key beyond
// the key and value bytes (16 + 16 here), for keys written in random and in
// sorted order (a snapshot load), and per deleted key after deleting all.
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 200_000
	for _, order := range []string{"random", "sorted"} {
		b.Run(order, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				perm := rand.New(rand.NewPCG(6, 6)).Perm(n)
				if order == "sorted" {
					slices.Sort(perm)
				}
				base := heapInUse()
				m := New("a")
				for j, k := range perm {
					m.Set(benchKey(k), []byte("0123456789abcdef"), ts(int64(j), 0))
				}
				live := heapInUse()
				for k := range n {
					m.Delete(benchKey(k))
				}
				dead := heapInUse()
				runtime.KeepAlive(m)
				payload := uint64(n * (16 + 16))
				b.ReportMetric(float64(live-base-payload)/n, "B/live-key")
				b.ReportMetric(float64(int64(dead)-int64(base))/n, "B/deleted-key")
				if m.Len() != 0 || m.Context().Intervals() != 1 {
					b.Fatal("delete all")
				}
			}
		})
	}
}
