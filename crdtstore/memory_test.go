package crdtstore_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// holderKey and holderValue are the bench's store keys and values
// (bench/participant StoreKey, StoreValue): "key/%06d", distinct bytes.
func holderKey(k int) string { return fmt.Sprintf("key/%06d", k) }

func holderValue(v []byte, k int) []byte {
	for i := range v {
		v[i] = byte(k + i)
	}
	return v
}

// heapObjects is the bytes of the heap's objects, live and not yet swept
// (after two GCs: the live ones).
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// fillKeys writes n keys of 100-byte values on w.
func fillKeys(t testing.TB, w *crdtstore.Store, n int) {
	t.Helper()
	v := make([]byte, 100)
	for k := range n {
		if err := w.Set(holderKey(k), holderValue(v, k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// fillHolder opens a holder and a writer store on a new in-memory network
// with opts, writes n keys of 100-byte values on the writer, waits until the
// holder has them all (from the writer's deltas), and closes the writer.
func fillHolder(t testing.TB, n int, opts crdtstore.Options, hook func(*crdtstore.Store)) (*crdtstore.Store, *crdttest.Network) {
	t.Helper()
	net := crdttest.NewNetwork()
	opts.SyncInterval = -1
	h := openMem(t, net, "holder", opts)
	if hook != nil {
		hook(h)
	}
	w, err := crdtstore.OpenTransport(net.Transport("writer"), opts)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the link up", func() bool {
		return crdtstore.Joined(w, "holder") && crdtstore.Joined(h, "writer")
	})
	fillKeys(t, w, n)
	testutil.Eventually(t, 2*time.Minute, "the holder has every key", func() bool { return h.Len() == n })
	closeStore(t, w)
	return h, net
}

// holderHeapPerKey is the heap a holder of n keys (fillHolder) takes per
// key: the heap's objects after it is filled less before, the writer
// closed.
func holderHeapPerKey(t testing.TB, n int) float64 {
	runtime.GC()
	runtime.GC()
	base := heapObjects()
	h, _ := fillHolder(t, n, crdtstore.Options{KeepFreedMemory: true}, nil)
	runtime.GC()
	runtime.GC()
	live := heapObjects()
	writeHeapProfile(t)
	runtime.KeepAlive(h)
	closeStore(t, h)
	return (float64(live) - float64(base)) / float64(n)
}

// TestHolderHeapPerKey bounds the heap a holder of keys of 100-byte values
// takes per key, its key and value included (about 185 bytes: see "Memory"
// in the package documentation), generously: it fails on a clear
// regression such as a second copy of each value.
func TestHolderHeapPerKey(t *testing.T) {
	const n, bound = 50_000, 260
	if got := holderHeapPerKey(t, n); got > bound {
		t.Errorf("a holder takes %.0f bytes of heap per key, want at most %d", got, bound)
	}
}

// BenchmarkHolderMemory reports the heap a holder of 100,000 keys of
// 100-byte values takes per key (B-heap/key), its key and value included,
// the keys received as the writer's deltas, in process. With
// REFLECT_HOLDER_MEMPROFILE set to a file, it writes a heap profile there
// while the holder is open.
func BenchmarkHolderMemory(b *testing.B) {
	var sum float64
	for range b.N {
		sum += holderHeapPerKey(b, 100_000)
	}
	b.ReportMetric(sum/float64(b.N), "B-heap/key")
}

// The store returns the memory of a bulk load to the OS once, when it has
// ended, whether it came as deltas or by sync; not after a small load, and
// not with Options.KeepFreedMemory.
func TestReleaseAfterBulkLoad(t *testing.T) {
	const n = 60_000 // about 7 MB of deltas: over releaseMin and a quarter of the store
	var released atomic.Int32
	count := func(s *crdtstore.Store) { crdtstore.OnRelease(s, func() { released.Add(1) }) }

	t.Run("deltas", func(t *testing.T) {
		released.Store(0)
		h, net := fillHolder(t, n, crdtstore.Options{}, count)
		testutil.Eventually(t, 10*time.Second, "a release", func() bool { return released.Load() > 0 })
		time.Sleep(3 * crdtstore.ShortReleaseQuiet)
		if got := released.Load(); got != 1 {
			t.Fatalf("%d releases after one load, want 1", got)
		}
		// A small load next: no release.
		w := openMem(t, net, "writer2", crdtstore.Options{SyncInterval: -1})
		testutil.Eventually(t, 10*time.Second, "the link up", func() bool { return crdtstore.Joined(w, "holder") })
		for k := range 100 {
			mustSet(t, w, fmt.Sprintf("small/%d", k), "value")
		}
		testutil.Eventually(t, 10*time.Second, "the small load", func() bool { return h.Len() == n+100 })
		time.Sleep(3 * crdtstore.ShortReleaseQuiet)
		if got := released.Load(); got != 1 {
			t.Fatalf("%d releases after a small load, want 1", got)
		}
	})

	t.Run("sync", func(t *testing.T) {
		released.Store(0)
		net := crdttest.NewNetwork()
		opts := crdtstore.Options{SyncInterval: -1}
		w := openMem(t, net, "writer", opts)
		fillKeys(t, w, n)
		j, err := crdtstore.OpenTransport(net.Transport("joiner"), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeStore(t, j) })
		count(j)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := j.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		if j.Len() != n {
			t.Fatalf("the joiner holds %d keys, want %d", j.Len(), n)
		}
		testutil.Eventually(t, 10*time.Second, "a release", func() bool { return released.Load() > 0 })
		time.Sleep(3 * crdtstore.ShortReleaseQuiet)
		if got := released.Load(); got != 1 {
			t.Fatalf("%d releases after one sync, want 1", got)
		}
	})

	t.Run("off", func(t *testing.T) {
		released.Store(0)
		fillHolder(t, n, crdtstore.Options{KeepFreedMemory: true}, count)
		time.Sleep(3 * crdtstore.ShortReleaseQuiet)
		if got := released.Load(); got != 0 {
			t.Fatalf("%d releases with KeepFreedMemory, want 0", got)
		}
	})
}
