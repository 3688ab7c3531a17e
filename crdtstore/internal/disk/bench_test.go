package disk

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// One writer, one ~200 B batch per commit (Enqueue + Wait), Crash mode.
// Reports p50/p99 of the commit latency.
func BenchmarkCommitCrash(b *testing.B) { benchCommit1(b, Crash) }

// Same in Power mode (one fsync per commit).
func BenchmarkCommitPower(b *testing.B) { benchCommit1(b, Power) }

func benchCommit1(b *testing.B, dur Durability) {
	db := openT(b, b.TempDir(), Options{Durability: dur})
	defer db.Close()
	val := []byte(strings.Repeat("v", 170))
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		bt := db.NewBatch()
		bt.Put('k', fmt.Sprintf("key%020d", i*7919%1000003), val)
		if err := db.Enqueue(bt).Wait(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// 16 concurrent writers, ~200 B batch each, Power mode: group commit.
func BenchmarkCommitPower16(b *testing.B) { benchCommitN(b, Power, 16) }

// 16 concurrent writers, Crash mode.
func BenchmarkCommitCrash16(b *testing.B) { benchCommitN(b, Crash, 16) }

func benchCommitN(b *testing.B, dur Durability, writers int) {
	db := openT(b, b.TempDir(), Options{Durability: dur})
	defer db.Close()
	val := []byte(strings.Repeat("v", 170))
	var seq atomic.Int64
	b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			bt := db.NewBatch()
			bt.Put('k', fmt.Sprintf("key%020d", i*7919%1000003), val)
			if err := db.Enqueue(bt).Wait(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "commits/s")
	st := db.Stats()
	b.ReportMetric(float64(st.Batches)/float64(max(1, st.Rounds)), "batches/round")
}

// Reopen of a directory holding 100k records × 100 B (compacted) and a
// scan of all of them: the engine part of a restart. Multiply by 10 for 1M.
func BenchmarkScan100k(b *testing.B) { benchScan(b, 100_000) }

// The same with 1M records (setup: ~10 s to load and compact).
func BenchmarkScan1M(b *testing.B) { benchScan(b, 1_000_000) }

func benchScan(b *testing.B, n int) {
	dir := b.TempDir()
	db := openT(b, dir, Options{})
	rnd := rand.NewChaCha8([32]byte{1})
	val := make([]byte, 100)
	for i := 0; i < n; i += 1000 {
		bt := db.NewBatch()
		for j := i; j < i+1000; j++ {
			rnd.Read(val) // incompressible, like encrypted values
			bt.Put('k', fmt.Sprintf("key%020d", j*7919%1000003), val)
		}
		if err := db.Enqueue(bt).Wait(); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Compact(); err != nil {
		b.Fatal(err)
	}
	size := db.DiskSize()
	db.Close()
	b.ResetTimer()
	for range b.N {
		db := openT(b, dir, Options{})
		cnt := 0
		var bytes int
		db.Scan(func(kind byte, name string, data []byte) error {
			cnt++
			bytes += len(name) + len(data)
			return nil
		})
		db.Close()
		if cnt != n {
			b.Fatalf("scanned %d", cnt)
		}
	}
	b.ReportMetric(float64(size)/float64(n*(1+23+100)), "disk/live")
}

// Reference: pebble itself, 16 goroutines each calling Set with pebble.Sync
// (pebble's own group commit, no ordering across goroutines), to compare
// BenchmarkCommitPower16 with on the same disk at the same time.
func BenchmarkPebbleSync16(b *testing.B) {
	pdb, err := pebble.Open(b.TempDir(), &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: pebbleLogger{discard}})
	if err != nil {
		b.Fatal(err)
	}
	defer pdb.Close()
	val := []byte(strings.Repeat("v", 170))
	var seq atomic.Int64
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if err := pdb.Set(fmt.Appendf(nil, "kkey%020d", i*7919%1000003), val, pebble.Sync); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "commits/s")
}
