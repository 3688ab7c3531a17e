package crdtstore_test

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/internal/disk"
)

// benchValue is the value: 100 bytes.
var benchValue = []byte("0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")

// reportLatency reports the median and 99th percentile of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkSetDir: one writer's Set with Options.Dir (default mode: each
// Set waits until its records are in the engine's log), and without.
func BenchmarkSetDir(b *testing.B) {
	for _, mode := range []string{"memory", "dir", "dir-fsync"} {
		b.Run(mode, func(b *testing.B) {
			o := crdtstore.Options{SyncInterval: -1}
			if mode != "memory" {
				o.Dir = b.TempDir()
				o.Fsync = mode == "dir-fsync"
			}
			s, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("b"), o)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if err := s.Set(fmt.Sprintf("key/%09d", i%100000), benchValue); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// BenchmarkSetDirConcurrent: 16 writers at once, Sets per second, in both
// modes (Fsync: the writers share fsyncs).
func BenchmarkSetDirConcurrent(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			s, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("b"),
				crdtstore.Options{SyncInterval: -1, Dir: b.TempDir(), Fsync: fsync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const writers = 16
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < b.N; i += writers {
						if err := s.Set(fmt.Sprintf("key/%09d", i%100000), benchValue); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sets/s")
		})
	}
}

// BenchmarkRestart: Open of a directory holding n keys × 100 B until the
// store is readable (the engine's scan and the map's restore).
func BenchmarkRestart(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("-short")
			}
			dir := b.TempDir()
			o := crdtstore.Options{SyncInterval: -1, Dir: dir}
			s, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("b"), o)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2)) // incompressible values, as real data mostly is
			v := make([]byte, 100)
			for i := range n {
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				if err := s.Set(fmt.Sprintf("key/%09d", i), v); err != nil {
					b.Fatal(err)
				}
			}
			live := s.Stats().Bytes
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			ratio := float64(dirSize(b, dir)) / float64(live)
			b.ResetTimer()
			for range b.N {
				s, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("b"), o)
				if err != nil {
					b.Fatal(err)
				}
				if s.Len() != n {
					b.Fatalf("%d keys, want %d", s.Len(), n)
				}
				b.StopTimer()
				_ = s.Close()
				b.StartTimer()
			}
			b.ReportMetric(ratio, "disk/live")
		})
	}
}

// dirSize sums the sizes of the files under dir.
func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkDiskChurn: n keys × 100 B written, every key overwritten 3
// times, then half deleted. Reports disk/live (live = Stats().Bytes) with
// the store open right after the churn (the store compacts automatically
// in the background: see disk.DB.SetLive), after Close, and after a manual
// compaction (reopened with package disk, compacted, closed).
func BenchmarkDiskChurn(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("-short")
			}
			for range b.N {
				dir := b.TempDir()
				o := crdtstore.Options{SyncInterval: -1, Dir: dir}
				s, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("b"), o)
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				v := make([]byte, 100)
				for range 4 {
					for i := range n {
						for j := range v {
							v[j] = byte(rng.Uint32())
						}
						if err := s.Set(fmt.Sprintf("key/%09d", i), v); err != nil {
							b.Fatal(err)
						}
					}
				}
				for i := 0; i < n; i += 2 {
					if err := s.Delete(fmt.Sprintf("key/%09d", i)); err != nil {
						b.Fatal(err)
					}
				}
				live := float64(s.Stats().Bytes)
				open := float64(dirSize(b, dir)) / live
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				closed := float64(dirSize(b, dir)) / live
				db, err := disk.Open(dir, disk.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := db.Compact(); err != nil {
					b.Fatal(err)
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				// After Close: obsolete files are gone.
				compacted := float64(dirSize(b, dir)) / live
				b.ReportMetric(open, "disk/live-open")
				b.ReportMetric(closed, "disk/live-closed")
				b.ReportMetric(compacted, "disk/live-compacted")
				b.ReportMetric(live/1e6, "live-MB")
			}
		})
	}
}
