package crdtstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// peerStatus returns s's PeerSyncStatus of p, and whether s lists p.
func peerStatus(s *crdtstore.Store, p string) (crdtstore.PeerSyncStatus, bool) {
	for _, ps := range s.PeerSyncStatus() {
		if ps.Peer == p {
			return ps, true
		}
	}
	return crdtstore.PeerSyncStatus{}, false
}

// rawWriter is a peer "a" with no store: the test writes its replica's
// deltas with package ormap and publishes them when it chooses, as a peer
// whose deltas arrive late, out of order or not at all would.
type rawWriter struct {
	tr *crdttest.Transport
	m  *ormap.Map
}

func newRawWriter(t *testing.T, net *crdttest.Network, id string, sync func(string, crdtstore.Stream)) rawWriter {
	t.Helper()
	tr := net.Transport(id)
	if err := tr.Start(crdtstore.Handlers{
		DecodeDelta: func([]byte) (ormap.Delta, error) { return ormap.Delta{}, errors.New("not listening") },
		Delta:       func(string, ormap.Delta) {},
		Sync:        sync,
		PeerUp:      func(string) {}, PeerDown: func(string) {},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return rawWriter{tr, ormap.New(ormap.ReplicaID(crdtstore.NewReplicaID(id)))}
}

// set writes key=value at wall time at, returning the delta unpublished.
func (w rawWriter) set(key, value string, at time.Time) []byte {
	return ormap.EncodeDelta(w.m.Set(key, []byte(value), ormap.Timestamp{Wall: at.UnixNano()}))
}

func (w rawWriter) publish(t *testing.T, d []byte) {
	t.Helper()
	if err := w.tr.Publish(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// wantLag checks b's lag and last write for peer p.
func wantLag(t *testing.T, b *crdtstore.Store, p string, lag time.Duration, lastWrite time.Time) {
	t.Helper()
	ps, ok := peerStatus(b, p)
	if !ok {
		t.Fatalf("no status of %s", p)
	}
	if ps.Lag != lag || !ps.LastWrite.Equal(lastWrite) {
		t.Fatalf("lag %v, last write %v; want %v, %v", ps.Lag, ps.LastWrite, lag, lastWrite)
	}
}

// The lag of a peer's writes: the receive time minus the write time of the
// newest one applied; while a delta of the peer waits for a write it
// overwrote, or one of its writes is known missing (a gap), the time since
// the oldest such write, growing until the missing write arrives.
func TestReplicaLag(t *testing.T) {
	net := crdttest.NewNetwork()
	net.Disconnect("a", "b")
	b := openMem(t, net, "b", fastOptions())
	clk := &fakeClock{}
	base := time.Now().Truncate(time.Second)
	clk.Set(base)
	crdtstore.SetClock(b, clk.Now)
	a := newRawWriter(t, net, "a", func(_ string, s crdtstore.Stream) { answerEqual(s) })
	net.Connect("a", "b")
	testutil.Eventually(t, 5*time.Second, "b synced with a", func() bool {
		ps, ok := peerStatus(b, "a")
		return ok && ps.Synced && !ps.LastSync.IsZero()
	})
	if ps, _ := peerStatus(b, "a"); ps.LastSyncError != "" || ps.LastSyncBytes == 0 || !ps.LastSync.Equal(base) || ps.Lag != 0 || !ps.LastWrite.IsZero() {
		t.Fatalf("after the first sync: %+v", ps)
	}

	// k=1 is lost (for now); k=2 overwrote it, so b holds k=2.
	w1, w2 := base.Add(time.Second), base.Add(2*time.Second)
	d1, d2 := a.set("k", "1", w1), a.set("k", "2", w2)
	clk.Set(w2.Add(3 * time.Second))
	a.publish(t, d2)
	testutil.Eventually(t, 5*time.Second, "k=2 held", func() bool { return b.Stats().PendingDeltas == 1 })
	wantLag(t, b, "a", 3*time.Second, time.Time{})
	clk.Set(w2.Add(8 * time.Second))
	wantLag(t, b, "a", 8*time.Second, time.Time{}) // grows while held

	// k=1 arrives: both apply; the newest write, k=2, came 10 s late.
	at := w2.Add(10 * time.Second)
	clk.Set(at)
	a.publish(t, d1)
	testutil.Eventually(t, 5*time.Second, "k=2 applied", func() bool { return get(b, "k") == "2" })
	wantLag(t, b, "a", 10*time.Second, at)
	clk.Set(at.Add(time.Minute))
	wantLag(t, b, "a", 10*time.Second, at) // caught up: no longer grows

	// A write that arrives 100 ms after it was made.
	w3 := at.Add(time.Minute)
	clk.Set(w3.Add(100 * time.Millisecond))
	a.publish(t, a.set("x", "3", w3))
	testutil.Eventually(t, 5*time.Second, "x", func() bool { return get(b, "x") == "3" })
	wantLag(t, b, "a", 100*time.Millisecond, w3.Add(100*time.Millisecond))

	// A gap: y=4 is lost, z=5 applies at once but reveals it.
	w4, w5 := w3.Add(time.Second), w3.Add(2*time.Second)
	d4, d5 := a.set("y", "4", w4), a.set("z", "5", w5)
	recv := w5.Add(time.Second)
	clk.Set(recv)
	a.publish(t, d5)
	testutil.Eventually(t, 5*time.Second, "z", func() bool { return get(b, "z") == "5" })
	wantLag(t, b, "a", time.Second, recv)
	clk.Set(w5.Add(20 * time.Second))
	wantLag(t, b, "a", 20*time.Second, recv) // grows while y is missing
	a.publish(t, d4)
	testutil.Eventually(t, 5*time.Second, "y", func() bool { return get(b, "y") == "4" })
	wantLag(t, b, "a", time.Second, recv) // caught up: z's lag again

	// a leaves: b forgets it.
	net.Disconnect("a", "b")
	testutil.Eventually(t, 5*time.Second, "a forgotten", func() bool { _, ok := peerStatus(b, "a"); return !ok })
}

// get returns key's value on s as a string, "" if none.
func get(s *crdtstore.Store, key string) string {
	v, _ := s.GetString(key)
	return v
}

// A store that joins late gets the peer's writes by sync: their lag is the
// time from the write to the sync, and LastSync records the exchange.
func TestReplicaLagFromSync(t *testing.T) {
	net := crdttest.NewNetwork()
	net.Disconnect("a", "b")
	a := openMem(t, net, "a", fastOptions())
	mustSet(t, a, "k", "v")
	mustSet(t, a, "k2", "v2")
	if err := a.Flush(context.Background()); err != nil { // to no one
		t.Fatal(err)
	}
	b := openMem(t, net, "b", fastOptions())
	clk := &fakeClock{}
	e, _ := a.GetEntry("k2")
	synced := e.Time.Add(42 * time.Second)
	clk.Set(synced)
	crdtstore.SetClock(b, clk.Now)
	net.Connect("a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "k2 on b", func() bool { return has(b, "k2") })
	if st := b.Stats(); st.DeltasReceived != 0 {
		t.Fatalf("b received %d deltas: the writes should come by sync", st.DeltasReceived)
	}
	ps, ok := peerStatus(b, "a")
	if !ok || ps.Lag != 42*time.Second || !ps.LastWrite.Equal(synced) || !ps.LastSync.Equal(synced) || ps.LastSyncError != "" || ps.LastSyncBytes == 0 {
		t.Fatalf("b's status of a: %+v", ps)
	}
}

// LastSync and LastSyncError record a failed sync, in the role that
// started it.
func TestLastSyncError(t *testing.T) {
	net := crdttest.NewNetwork()
	net.Disconnect("a", "b")
	b := openMem(t, net, "b", fastOptions())
	clk := &fakeClock{}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clk.Set(at)
	crdtstore.SetClock(b, clk.Now)
	newRawWriter(t, net, "a", func(_ string, s crdtstore.Stream) { _ = s.Reset() })
	net.Connect("a", "b")
	testutil.Eventually(t, 5*time.Second, "a failed sync", func() bool {
		ps, ok := peerStatus(b, "a")
		return ok && ps.LastSyncError != ""
	})
	ps, _ := peerStatus(b, "a")
	if !ps.LastSync.Equal(at) || ps.Synced {
		t.Fatalf("after a failed sync: %+v", ps)
	}
	t.Logf("LastSyncError: %s", ps.LastSyncError)
	if st := b.Stats(); st.SyncFailures == 0 {
		t.Fatal("no sync failure counted")
	}
}

// Stats.Bytes, kept as the data changes, equals a scan of the live data
// (keys with a value and all their values) after random writes, deletes,
// concurrent writes merged by sync (siblings) and expiries.
func TestStatsBytesMatchesScan(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 14))
			net, ss := memStores(t, 2)
			check := func(when string) {
				t.Helper()
				for i, s := range ss {
					crdtstore.ExpireNow(s)
					want := 0
					for _, k := range s.Keys("") {
						want += len(k)
						for _, v := range s.GetAll(k) {
							want += len(v)
						}
					}
					if got := s.Stats().Bytes; got != want {
						t.Fatalf("%s: store %d: Stats.Bytes %d, a scan %d", when, i, got, want)
					}
				}
			}
			for round := range 6 {
				partitioned := round%2 == 1
				if partitioned {
					net.Disconnect("s0", "s1")
				}
				for range 200 {
					s := ss[rng.IntN(2)]
					key := fmt.Sprintf("k%d", rng.IntN(40))
					var err error
					switch op := rng.IntN(10); {
					case op < 5:
						err = s.Set(key, make([]byte, rng.IntN(100)))
					case op < 7:
						err = s.Delete(key)
					case op < 8:
						err = s.SetTTL(key, make([]byte, rng.IntN(100)), time.Nanosecond) // expired at once
					default:
						err = s.SetTTL(key, make([]byte, rng.IntN(100)), time.Hour)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if partitioned { // else deltas are on their way
					check(fmt.Sprintf("round %d, written", round))
					net.Connect("s0", "s1")
				}
				testutil.Eventually(t, 10*time.Second, "converged", func() bool { return converged(ss) })
				check(fmt.Sprintf("round %d, merged", round))
			}
		})
	}
}
