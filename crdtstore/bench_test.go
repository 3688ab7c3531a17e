package crdtstore_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/internal/testutil"
)

func BenchmarkGet(b *testing.B) {
	_, ss := memStores(b, 1)
	for i := range 100000 {
		mustSet(b, ss[0], fmt.Sprintf("key/%06d", i), "a hundred bytes of value, more or less, to look like a small JSON document....")
	}
	b.ResetTimer()
	for i := range b.N {
		if _, ok := ss[0].Get(fmt.Sprintf("key/%06d", i%100000)); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkSetLocal(b *testing.B) {
	_, ss := memStores(b, 1)
	v := []byte("a hundred bytes of value, more or less, to look like a small JSON document....")
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key/%06d", i)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := ss[0].Set(keys[i%len(keys)], v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetVisible5 times a Set on one of 5 loopback nodes until every
// other node's watcher has it.
func BenchmarkSetVisible5(b *testing.B) {
	tn := make([]testNode, 5)
	for i := range tn {
		tn[i] = startStoreNode(b)
	}
	for i := range tn {
		for j := i + 1; j < len(tn); j++ {
			connect(b, tn[i], tn[j])
		}
	}
	got := make(chan struct{}, 64)
	for _, x := range tn[1:] {
		w := x.s.Watch("", crdtstore.WithBuffer(1<<16))
		b.Cleanup(w.Stop)
		go func() {
			for range w.Updates() {
				got <- struct{}{}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, x := range tn {
		if err := x.n.PubSub().WaitSubscribers(ctx, "_reflect/store/"+crdtstore.DefaultName, 4); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := tn[0].s.SetString(fmt.Sprintf("k%d", i), "v"); err != nil {
			b.Fatal(err)
		}
		for range 4 {
			<-got
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkJoin100k times a new node's first sync with a store of 100,000
// keys of 100 bytes, over loopback libp2p, until it reports synced.
func BenchmarkJoin100k(b *testing.B) {
	a := startStoreNode(b)
	v := make([]byte, 100)
	for i := range 100000 {
		if err := a.s.Set(fmt.Sprintf("key/%06d", i), v); err != nil {
			b.Fatal(err)
		}
	}
	var total time.Duration
	var bytes uint64
	for range b.N {
		c := startStoreNode(b)
		start := time.Now()
		connect(b, c, a)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := c.s.WaitSynced(ctx)
		cancel()
		if err != nil || c.s.Len() != 100000 {
			b.Fatalf("synced %v with %d keys", err, c.s.Len())
		}
		total += time.Since(start)
		st := c.s.Stats()
		bytes += st.SyncBytesIn + st.SyncBytesOut
		if err := c.s.Close(); err != nil {
			b.Fatal(err)
		}
		if err := c.n.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N)*1e3, "ms/join")
	b.ReportMetric(float64(bytes)/float64(b.N)/1e6, "MB/join")
}

// BenchmarkReconnect10Changed measures the sync of two stores of 100,000
// keys when they reconnect after 10 keys changed on one side: bytes and
// round trips should be proportional to the difference, not the store. Each
// iteration times one sync, from the reconnection to its end; both stores
// claim the pair beforehand so that no other sync runs with it. With
// dir=true both stores are kept on disk (Options.Dir).
func BenchmarkReconnect10Changed(b *testing.B) {
	for _, dir := range []bool{false, true} {
		b.Run(fmt.Sprintf("dir=%v", dir), func(b *testing.B) { benchReconnect10Changed(b, dir) })
	}
}

func benchReconnect10Changed(b *testing.B, dir bool) {
	net := crdttest.NewNetwork()
	opts := fastOptions()
	opts.SyncInterval = -1
	xo, yo := opts, opts
	if dir {
		xo.Dir, yo.Dir = b.TempDir(), b.TempDir()
	}
	x := openMem(b, net, "x", xo)
	y := openMem(b, net, "y", yo)
	v := make([]byte, 100)
	for i := range 100000 {
		if err := x.Set(fmt.Sprintf("key/%06d", i), v); err != nil {
			b.Fatal(err)
		}
	}
	testutil.Eventually(b, 30*time.Second, "y to hold every key", func() bool { return converged([]*crdtstore.Store{x, y}) })
	var bytes uint64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		net.Disconnect("x", "y")
		for j := range 10 {
			if err := x.Set(fmt.Sprintf("key/%06d", (i*10+j)%100000), []byte{byte(i)}); err != nil {
				b.Fatal(err)
			}
		}
		testutil.Eventually(b, 10*time.Second, "the link down and no sync running", func() bool {
			return !crdtstore.Joined(x, "y") && !crdtstore.Joined(y, "x") &&
				!crdtstore.Syncing(x, "y") && !crdtstore.Syncing(y, "x")
		})
		if err := crdtstore.ClaimSync(x, "y"); err != nil {
			b.Fatal(err)
		}
		if err := crdtstore.ClaimSync(y, "x"); err != nil {
			b.Fatal(err)
		}
		before := y.Stats()
		b.StartTimer()
		net.Connect("x", "y")
		if err := crdtstore.RunClaimedSync(y, "x"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		after := y.Stats() // the initiator counts both directions before it returns
		bytes += after.SyncBytesIn + after.SyncBytesOut - before.SyncBytesIn - before.SyncBytesOut
		testutil.Eventually(b, 10*time.Second, "the link up on both sides", func() bool {
			return crdtstore.Joined(x, "y") && crdtstore.Joined(y, "x")
		})
		crdtstore.ReleaseSync(x, "y")
		if !converged([]*crdtstore.Store{x, y}) {
			b.Fatal("not converged after the sync")
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/sync")
}

// BenchmarkMemoryPerKey reports the heap per live key after 1,000,000 Sets
// of 10-byte keys and 16-byte values, and per deleted key after deleting
// them all.
func BenchmarkMemoryPerKey(b *testing.B) {
	for range b.N {
		b.StopTimer()
		runtime.GC()
		var m0, m1, m2 runtime.MemStats
		runtime.ReadMemStats(&m0)
		s, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("solo"), crdtstore.Options{SyncInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		v := make([]byte, 16)
		const n = 1000000
		key := func(i int) string { return fmt.Sprintf("k%09d", i) } // 10 bytes, a 16-byte allocation
		b.StartTimer()
		for i := range n {
			if err := s.Set(key(i), v); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		settle(b, s)
		runtime.ReadMemStats(&m1)
		for i := range n {
			if err := s.Delete(key(i)); err != nil {
				b.Fatal(err)
			}
		}
		settle(b, s)
		runtime.ReadMemStats(&m2)
		// The key and value themselves take 16 bytes each (size classes).
		b.ReportMetric((float64(m1.HeapAlloc)-float64(m0.HeapAlloc))/n-32, "B-overhead/live-key")
		b.ReportMetric((float64(m2.HeapAlloc)-float64(m0.HeapAlloc))/n, "B/deleted-key")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// settle waits until every write has been published (Flush), then collects
// garbage, so that the heap holds the store's state and nothing in flight.
func settle(b *testing.B, s *crdtstore.Store) {
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
}
