package ormap

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSetTracked is BenchmarkSet with change tracking on and the
// records of each Set taken (encoded) after it: what a persistent store
// pays in the core per write, before its engine.
func BenchmarkSetTracked(b *testing.B) {
	m, keys := benchMap(b, "a", benchKeys)
	m.TrackChanges()
	rng := rand.New(rand.NewPCG(4, 4))
	val := make([]byte, 16)
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Set(keys[rng.IntN(len(keys))], val, ts(int64(i), 0))
		m.TakeRecords(func(r Record) { n += len(r.Data) })
	}
	b.ReportMetric(float64(n)/float64(b.N), "record-B/op")
}

// BenchmarkRestore100k restores 100,000 keys of 100-byte values, one entry
// each, written by one replica, from their records in key order.
func BenchmarkRestore100k(b *testing.B) {
	const n = 100_000
	m := New("0123456789abcdef")
	m.TrackChanges()
	val := make([]byte, 100)
	rng := rand.New(rand.NewPCG(5, 5))
	for _, i := range rng.Perm(n) {
		m.Set(benchKey(i), val, Timestamp{Wall: 1_764_000_000_000_000_000 + int64(i)})
	}
	disk := make(map[diskKey][]byte)
	writeRecords(m, disk)
	var recs []Record
	bytes := 0
	for r := range diskRecords(disk) {
		recs = append(recs, r)
		bytes += len(r.Name) + len(r.Data)
	}
	seq := func(yield func(Record) bool) {
		for _, r := range recs {
			if !yield(r) {
				return
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, _, err := Restore("0123456789abcdef", seq)
		if err != nil || r.Len() != n {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bytes)/n, "disk-B/key")
}
