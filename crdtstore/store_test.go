package crdtstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
)

func TestSetGetDeleteReplicate(t *testing.T) {
	_, ss := memStores(t, 3)
	mustSet(t, ss[0], "a", "1")
	if err := ss[1].SetJSON("b", map[string]int{"x": 2}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "replication", func() bool { return converged(ss) && ss[2].Len() == 2 })
	mustGet(t, ss[2], "a", "1")
	var b map[string]int
	if ok, err := ss[2].GetJSON("b", &b); !ok || err != nil || b["x"] != 2 {
		t.Fatalf("GetJSON = %v, %v, %v", b, ok, err)
	}
	mustDelete(t, ss[2], "a")
	testutil.Eventually(t, 5*time.Second, "delete to replicate", func() bool {
		return !has(ss[0], "a") && !has(ss[1], "a")
	})
	if got := ss[0].Keys(""); len(got) != 1 || got[0] != "b" {
		t.Fatalf("Keys = %v", got)
	}
}

func TestKeysAndListByPrefix(t *testing.T) {
	_, ss := memStores(t, 1)
	for _, k := range []string{"user/2", "user/1", "task/1", "user/10"} {
		mustSet(t, ss[0], k, "v"+k)
	}
	if got := strings.Join(ss[0].Keys("user/"), ","); got != "user/1,user/10,user/2" {
		t.Fatalf("Keys = %s", got)
	}
	l := ss[0].List("task/")
	if len(l) != 1 || l[0].Key != "task/1" || string(l[0].Value) != "vtask/1" {
		t.Fatalf("List = %v", l)
	}
}

func TestInvalidWrites(t *testing.T) {
	_, ss := memStores(t, 1)
	if err := ss[0].SetString("", "x"); !errors.Is(err, crdtstore.ErrKey) {
		t.Fatalf("empty key: %v", err)
	}
	if err := ss[0].Set(string([]byte{0xff}), nil); !errors.Is(err, crdtstore.ErrKey) {
		t.Fatalf("bad utf-8: %v", err)
	}
	if err := ss[0].Set("k", make([]byte, 2<<20)); !errors.Is(err, crdtstore.ErrTooLarge) {
		t.Fatalf("2 MiB value: %v", err)
	}
	if err := ss[0].Delete(""); !errors.Is(err, crdtstore.ErrKey) {
		t.Fatalf("Delete of the empty key: %v", err)
	}
	if ss[0].Len() != 0 {
		t.Fatal("a refused write changed the store")
	}
}

func TestConcurrentSetBeatsDelete(t *testing.T) {
	net, ss := memStores(t, 2)
	mustSet(t, ss[0], "k", "old")
	testutil.Eventually(t, 5*time.Second, "k on both", func() bool { return has(ss[1], "k") })
	net.Disconnect("s0", "s1")
	mustDelete(t, ss[0], "k")
	mustSet(t, ss[1], "k", "new")
	net.Connect("s0", "s1")
	testutil.Eventually(t, 5*time.Second, "convergence", func() bool { return converged(ss) })
	for _, s := range ss {
		mustGet(t, s, "k", "new")
	}
}

func TestConcurrentSetsBecomeSiblings(t *testing.T) {
	net, ss := memStores(t, 2)
	net.Disconnect("s0", "s1")
	mustSet(t, ss[0], "k", "zero")
	mustSet(t, ss[1], "k", "one")
	net.Connect("s0", "s1")
	testutil.Eventually(t, 5*time.Second, "convergence", func() bool { return converged(ss) })
	a, b := ss[0].GetAll("k"), ss[1].GetAll("k")
	if len(a) != 2 || len(b) != 2 || string(a[0]) != string(b[0]) {
		t.Fatalf("siblings %q vs %q", a, b)
	}
	mustSet(t, ss[1], "k", "resolved")
	testutil.Eventually(t, 5*time.Second, "resolution", func() bool { return len(ss[0].GetAll("k")) == 1 })
	mustGet(t, ss[0], "k", "resolved")
}

func TestPartitionHeals(t *testing.T) {
	net, ss := memStores(t, 4)
	for _, a := range []string{"s0", "s1"} {
		for _, b := range []string{"s2", "s3"} {
			net.Disconnect(a, b)
		}
	}
	for i := range 50 {
		mustSet(t, ss[i%2], fmt.Sprintf("left/%d", i), "L")
		mustSet(t, ss[2+i%2], fmt.Sprintf("right/%d", i), "R")
		mustSet(t, ss[i%4], "shared", fmt.Sprint(i))
	}
	for _, a := range []string{"s0", "s1"} {
		for _, b := range []string{"s2", "s3"} {
			net.Connect(a, b)
		}
	}
	testutil.Eventually(t, 10*time.Second, "convergence after heal", func() bool { return converged(ss) })
	if n := ss[3].Len(); n != 101 {
		t.Fatalf("%d keys after heal, want 101", n)
	}
}

// TestSyncTrapSharedEntriesSurvive is the regression test for the sync trap
// at the store level: two replicas that share most entries reconnect after
// each wrote a little; no shared entry may disappear.
func TestSyncTrapSharedEntriesSurvive(t *testing.T) {
	net, ss := memStores(t, 2)
	for i := range 200 {
		mustSet(t, ss[i%2], fmt.Sprintf("k%03d", i), "v")
	}
	testutil.Eventually(t, 5*time.Second, "initial convergence", func() bool { return converged(ss) && ss[0].Len() == 200 })
	net.Disconnect("s0", "s1")
	mustSet(t, ss[0], "only0", "x")
	mustSet(t, ss[1], "only1", "y")
	mustDelete(t, ss[1], "k007")
	net.Connect("s0", "s1")
	testutil.Eventually(t, 5*time.Second, "convergence", func() bool { return converged(ss) })
	for _, s := range ss {
		if n := s.Len(); n != 201 {
			t.Fatalf("%d keys, want 201 (200 shared - 1 deleted + 2 new)", n)
		}
		if has(s, "k007") {
			t.Fatal("deleted key came back")
		}
	}
}

func TestLateJoinerSyncs(t *testing.T) {
	net := crdttest.NewNetwork()
	opts := fastOptions()
	opts.SyncInterval = -1 // only sync on connect
	a := openMem(t, net, "a", opts)
	for i := range 1000 {
		mustSet(t, a, fmt.Sprintf("key/%04d", i), "value")
	}
	b := openMem(t, net, "b", opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.Len(); n != 1000 {
		t.Fatalf("late joiner has %d keys after WaitSynced", n)
	}
}

// A store with no peer calls itself synced once the discovery grace has
// passed, not before.
func TestSyncedAloneAfterGrace(t *testing.T) {
	net := crdttest.NewNetwork()
	opts := fastOptions()
	opts.DiscoveryGrace = 200 * time.Millisecond
	start := time.Now()
	s := openMem(t, net, "alone", opts)
	if s.Synced() {
		t.Fatal("synced before the discovery grace ended")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < opts.DiscoveryGrace {
		t.Fatalf("WaitSynced returned after %v, within the %v grace", waited, opts.DiscoveryGrace)
	}
	if !s.Synced() {
		t.Fatal("Synced false after WaitSynced")
	}
}

// syncGate is a transport whose OpenSync fails while closed is set.
type syncGate struct {
	crdtstore.Transport
	closed atomic.Bool
}

func (g *syncGate) OpenSync(ctx context.Context, p string) (crdtstore.Stream, error) {
	if g.closed.Load() {
		return nil, errors.New("sync refused by the test")
	}
	return g.Transport.OpenSync(ctx, p)
}

// Synced counts every joined peer: a store is not synced while a sync
// with one of them has not succeeded, whatever the deltas brought.
func TestSyncedWaitsForJoinedPeers(t *testing.T) {
	net := crdttest.NewNetwork()
	opts := fastOptions()
	opts.DiscoveryGrace = -1
	var gates []*syncGate
	var ss []*crdtstore.Store
	for _, id := range []string{"a", "b"} {
		g := &syncGate{Transport: net.Transport(id)}
		g.closed.Store(true)
		s, err := crdtstore.OpenTransport(g, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeStore(t, s) })
		gates, ss = append(gates, g), append(ss, s)
	}
	a, b := ss[0], ss[1]
	mustSet(t, a, "k", "v")
	// b hears of a joining before a's delta (one queue, in order).
	testutil.Eventually(t, 5*time.Second, "a's delta on b", func() bool { return has(b, "k") })
	if b.Synced() {
		t.Fatal("b synced with a joined peer it never completed a sync with")
	}
	for _, g := range gates {
		g.closed.Store(false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.WaitSynced(ctx); err != nil { // anti-entropy retries
		t.Fatal(err)
	}
	if st := b.Stats(); st.Syncs+st.SyncServed == 0 {
		t.Fatalf("b synced without a sync: %+v", st)
	}
}

func TestWatch(t *testing.T) {
	_, ss := memStores(t, 2)
	mustSet(t, ss[0], "app/existing", "e")
	mustSet(t, ss[0], "other/x", "o")
	w := ss[0].Watch("app/", crdtstore.WithSnapshot())
	defer w.Stop()
	mustSet(t, ss[0], "app/local", "l")
	mustSet(t, ss[1], "app/remote", "r")
	mustSet(t, ss[1], "other/ignored", "i")
	want := []struct {
		key    string
		origin crdtstore.Origin
	}{{"app/existing", crdtstore.OriginSnapshot}, {"", crdtstore.OriginSnapshotDone}, {"app/local", crdtstore.OriginLocal}, {"app/remote", crdtstore.OriginRemote}}
	for _, wnt := range want {
		select {
		case c := <-w.Updates():
			if c.Key != wnt.key || c.Origin != wnt.origin {
				t.Fatalf("got %s (%v), want %s (%v)", c.Key, c.Origin, wnt.key, wnt.origin)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no change for %s", wnt.key)
		}
	}
	testutil.Eventually(t, 5*time.Second, "app/local on s1", func() bool { return has(ss[1], "app/local") })
	mustDelete(t, ss[1], "app/local")
	select {
	case c := <-w.Updates():
		if c.Key != "app/local" || !c.Deleted || c.Origin != crdtstore.OriginRemote {
			t.Fatalf("got %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delete")
	}
	w.Stop()
	w.Stop()
	if _, ok := <-w.Updates(); ok {
		t.Fatal("channel open after Stop")
	}
}

func TestWatchOverflowIsReported(t *testing.T) {
	_, ss := memStores(t, 1)
	w := ss[0].Watch("", crdtstore.WithBuffer(4))
	defer w.Stop()
	for i := range 10 {
		mustSet(t, ss[0], fmt.Sprint(i), "v")
	}
	if d := w.Dropped(); d != 6 {
		t.Fatalf("Dropped = %d, want 6", d)
	}
	for range 4 {
		<-w.Updates()
	}
	mustSet(t, ss[0], "next", "v")
	c := <-w.Updates()
	if c.Key != "next" || c.Missed != 6 {
		t.Fatalf("got %+v, want key next with Missed 6", c)
	}
}

func TestCloseTwiceAndAfter(t *testing.T) {
	_, ss := memStores(t, 1)
	w := ss[0].Watch("")
	if err := ss[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := ss[0].Close(); !errors.Is(err, crdtstore.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := ss[0].SetString("k", "v"); !errors.Is(err, crdtstore.ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if err := ss[0].Delete("k"); !errors.Is(err, crdtstore.ErrClosed) {
		t.Fatalf("Delete after Close: %v", err)
	}
	if _, ok := <-w.Updates(); ok {
		t.Fatal("watcher open after Close")
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []crdtstore.Options{
		{Name: "bad name"}, {Name: strings.Repeat("x", 65)}, {SyncTimeout: -1}, {MaxSyncFrame: -1},
		{WatchBuffer: -1}, {MaxDeltaBytes: -1}, {MaxValueLen: -1},
		{MaxDeltaBytes: 1000, MaxValueLen: 1000},
	}
	for _, o := range bad {
		if err := o.Validate(); !errors.Is(err, crdtstore.ErrConfig) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("x"), bad[0]); !errors.Is(err, crdtstore.ErrConfig) {
		t.Errorf("OpenTransport with %+v: %v", bad[0], err)
	}
	for _, o := range []crdtstore.Options{{Name: "settings.v2"}, {MaxDeltaBytes: 1000, MaxValueLen: 999}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// MaxDeltaBytes and MaxValueLen bound the values Set takes and the deltas a
// store accepts; MaxValueLen defaults to MaxDeltaBytes minus 4 KiB.
func TestDeltaLimits(t *testing.T) {
	net := crdttest.NewNetwork()
	small := fastOptions()
	small.MaxDeltaBytes = 16 << 10
	a := openMem(t, net, "a", small)
	b := openMem(t, net, "b", fastOptions()) // DefaultMaxDeltaBytes
	if a.Node() != nil {
		t.Fatal("Node() of a store on a crdttest transport is not nil")
	}
	const maxValue = 16<<10 - 4096
	if err := a.Set("fits", make([]byte, maxValue)); err != nil {
		t.Fatalf("Set of a %d-byte value: %v", maxValue, err)
	}
	if err := a.Set("too big", make([]byte, maxValue+1)); !errors.Is(err, crdtstore.ErrTooLarge) {
		t.Fatalf("Set of a %d-byte value: %v, want ErrTooLarge", maxValue+1, err)
	}
	testutil.Eventually(t, 5*time.Second, "a's value on b", func() bool { return has(b, "fits") })

	// b's larger delta is refused by a's decoder; b's next one arrives
	// after it, on the same path.
	ctx := context.Background()
	if err := b.Set("big", make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "barrier", "x")
	testutil.Eventually(t, 5*time.Second, "the barrier on a", func() bool { return has(a, "barrier") })
	if inv := a.Stats().DeltasInvalid; inv != 1 {
		t.Fatalf("a: DeltasInvalid = %d, want 1 (b's 32 KiB delta)", inv)
	}
}

// Every received delta goes through the store's decoder before delivery:
// bytes that do not decode are counted invalid and change nothing.
func TestUndecodableDeltasRefused(t *testing.T) {
	net := crdttest.NewNetwork()
	a := openMem(t, net, "a", fastOptions())
	trB := net.Transport("b")
	b, err := crdtstore.OpenTransport(trB, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, b) })
	mustSet(t, b, "k", "v")
	testutil.Eventually(t, 5*time.Second, "k on a", func() bool { return has(a, "k") })
	ctx := context.Background()
	junk := [][]byte{[]byte("garbage"), {1}, {0xff, 0xff, 0xff, 0xff, 0x0f}, make([]byte, 1000)}
	for _, j := range junk {
		if err := trB.Publish(ctx, j); err != nil { // as if b's store had sent it
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "the junk to be refused", func() bool {
		return a.Stats().DeltasInvalid == uint64(len(junk))
	})
	// b's messages arrive in order: the barrier's delta is the only one to
	// come. Once it has, any trace of the junk in the store would show.
	received := a.Stats().DeltasReceived
	mustSet(t, b, "barrier", "x")
	testutil.Eventually(t, 5*time.Second, "the barrier's delta on a", func() bool {
		return a.Stats().DeltasReceived > received && has(a, "barrier")
	})
	if st := a.Stats(); st.DeltasInvalid != uint64(len(junk)) || st.DeltasReceived != received+1 {
		t.Fatalf("a: %d invalid, %d received since the junk; want %d and 1 (the barrier's)", st.DeltasInvalid, st.DeltasReceived-received, len(junk))
	}
	if got := a.Keys(""); len(got) != 2 || got[0] != "barrier" || got[1] != "k" {
		t.Fatalf("a's keys: %v", got)
	}
}

// An in-sync reconnect costs one round trip: our context out, "equal" back;
// kept on disk or not.
func TestInSyncReconnectIsOneRoundTrip(t *testing.T) {
	for _, dir := range []bool{false, true} {
		t.Run(fmt.Sprintf("dir=%v", dir), func(t *testing.T) { testInSyncReconnect(t, dir) })
	}
}

func testInSyncReconnect(t *testing.T, dir bool) {
	net := crdttest.NewNetwork()
	opts := fastOptions()
	opts.SyncInterval = -1 // no background sync to race with ours
	o0, o1 := opts, opts
	if dir {
		o0.Dir, o1.Dir = t.TempDir(), t.TempDir()
	}
	ss := []*crdtstore.Store{openMem(t, net, "s0", o0), openMem(t, net, "s1", o1)}
	for i := range 1000 {
		mustSet(t, ss[i%2], fmt.Sprintf("k%04d", i), "value")
	}
	testutil.Eventually(t, 5*time.Second, "convergence", func() bool { return converged(ss) && ss[0].Len() == 1000 })
	testutil.Eventually(t, 5*time.Second, "syncs to settle", func() bool {
		return ss[0].Synced() && !crdtstore.Syncing(ss[0], "s1")
	})
	before := ss[0].Stats()
	if err := crdtstore.SyncNow(ss[0], "s1"); err != nil {
		t.Fatal(err)
	}
	after := ss[0].Stats()
	in, out := after.SyncBytesIn-before.SyncBytesIn, after.SyncBytesOut-before.SyncBytesOut
	t.Logf("in-sync reconnect: %d bytes out, %d bytes in", out, in)
	if in != 2 {
		t.Fatalf("read %d bytes, want one 2-byte 'equal' frame", in)
	}
	if out+in >= 1024 {
		t.Fatalf("%d bytes for an in-sync reconnect", out+in)
	}
}

// A new replica that connects to several peers at once downloads the state
// about once: it syncs with one peer first and answers the others "busy"
// until then, after which their syncs find it up to date.
func TestJoinerDownloadsOnce(t *testing.T) {
	net := crdttest.NewNetwork()
	var ss []*crdtstore.Store
	for i := range 4 {
		ss = append(ss, openMem(t, net, fmt.Sprintf("p%d", i), fastOptions()))
	}
	v := strings.Repeat("v", 100)
	for i := range 2000 {
		mustSet(t, ss[i%4], fmt.Sprintf("key/%05d", i), v)
	}
	testutil.Eventually(t, 10*time.Second, "convergence", func() bool { return converged(ss) && ss[0].Len() == 2000 })
	snapshot := crdtstore.SnapshotBytes(ss[0])

	joiner := openMem(t, net, "zz-joiner", fastOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := joiner.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	st := joiner.Stats()
	in := st.SyncBytesIn + st.SyncBytesOut
	t.Logf("joiner: %d bytes moved for a %d-byte snapshot; %d busy answers", in, snapshot, st.SyncBusy)
	if joiner.Len() != 2000 {
		t.Fatalf("joiner has %d keys", joiner.Len())
	}
	if in > uint64(snapshot)*3/2 {
		t.Fatalf("joiner moved %d bytes, more than 1.5 snapshots of %d", in, snapshot)
	}
}

// flushCounter counts the store's calls of its transport's Flush and can
// make them fail.
type flushCounter struct {
	crdtstore.Transport
	calls atomic.Int32
	err   error
}

func (f *flushCounter) Flush(ctx context.Context) error {
	f.calls.Add(1)
	if f.err != nil {
		return f.err
	}
	return f.Transport.Flush(ctx)
}

func TestFlush(t *testing.T) {
	net := crdttest.NewNetwork()
	peer := openMem(t, net, "peer", fastOptions())
	tr := &flushCounter{Transport: net.Transport("s")}
	s, err := crdtstore.OpenTransport(tr, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	for i := range 100 {
		mustSet(t, s, fmt.Sprint(i), "v")
	}
	ctx := context.Background()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if p := crdtstore.Pending(s); p != 0 || s.Stats().DeltasSent == 0 || tr.calls.Load() != 1 {
		t.Fatalf("after Flush: %d pending, %d sent, transport flushed %d times", p, s.Stats().DeltasSent, tr.calls.Load())
	}
	testutil.Eventually(t, 5*time.Second, "the writes on the peer", func() bool { return peer.Len() == 100 })

	tr.err = errors.New("transport flush failed")
	if err := s.Flush(ctx); !errors.Is(err, tr.err) {
		t.Fatalf("Flush with a failing transport: %v, want its error", err)
	}
	tr.err = nil
	closeStore(t, s)
	if err := s.Flush(ctx); !errors.Is(err, crdtstore.ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
}

// orderTransport holds the first Publish until a second one starts (or
// 200 ms pass), and records the keys of each published delta when its
// Publish returns.
type orderTransport struct {
	crdtstore.Transport
	entered chan struct{} // closed when the first Publish starts
	gate    chan struct{} // closed when the second starts
	once    sync.Once
	mu      sync.Mutex
	calls   int
	keys    []string
}

func (o *orderTransport) Publish(ctx context.Context, data []byte) error {
	o.mu.Lock()
	o.calls++
	first := o.calls == 1
	o.mu.Unlock()
	if first {
		close(o.entered)
		t := time.NewTimer(200 * time.Millisecond)
		defer t.Stop()
		select {
		case <-o.gate:
		case <-t.C:
		}
	}
	d, err := ormap.DecodeDelta(data, ormap.Limits{})
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.keys = append(o.keys, d.Keys()...)
	o.mu.Unlock()
	if !first {
		o.once.Do(func() { close(o.gate) })
	}
	return o.Transport.Publish(ctx, data)
}

func (o *orderTransport) published() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.keys)
}

// Flush waits for a flush the flusher is running: when it returns, every
// earlier write has been published, in order.
func TestFlushWaitsForTheFlusher(t *testing.T) {
	tr := &orderTransport{Transport: crdttest.NewNetwork().Transport("s"), entered: make(chan struct{}), gate: make(chan struct{})}
	s, err := crdtstore.OpenTransport(tr, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	mustSet(t, s, "first", "1")
	<-tr.entered // the flusher is publishing "first"
	mustSet(t, s, "second", "2")
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tr.published(); !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("published %v when Flush returned, want [first second]", got)
	}
}

// holdFirst holds the first Publish until release is closed, and records
// the size of every published delta.
type holdFirst struct {
	crdtstore.Transport
	entered, release chan struct{}
	mu               sync.Mutex
	sizes            []int
}

func (h *holdFirst) Publish(ctx context.Context, data []byte) error {
	h.mu.Lock()
	first := len(h.sizes) == 0
	h.sizes = append(h.sizes, len(data))
	h.mu.Unlock()
	if first {
		close(h.entered)
		<-h.release
	}
	return h.Transport.Publish(ctx, data)
}

// Local deltas that piled up while the network was slow are merged into
// deltas the peers accept, not into one they refuse.
func TestMergedDeltasFitTheLimit(t *testing.T) {
	net := crdttest.NewNetwork()
	opts := fastOptions()
	opts.MaxDeltaBytes = 16 << 10
	b := openMem(t, net, "b", opts)
	tr := &holdFirst{Transport: net.Transport("a"), entered: make(chan struct{}), release: make(chan struct{})}
	a, err := crdtstore.OpenTransport(tr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, a) })
	mustSet(t, a, "first", "1")
	<-tr.entered // the flusher is stuck publishing "first"
	v := strings.Repeat("v", 1000)
	for i := range 60 { // about 60 KiB, waiting
		mustSet(t, a, fmt.Sprintf("k%02d", i), v)
	}
	close(tr.release)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	sizes := slices.Clone(tr.sizes) // all published: Flush returned
	tr.mu.Unlock()
	for _, n := range sizes {
		if n > opts.MaxDeltaBytes {
			t.Errorf("published a %d-byte delta, over MaxDeltaBytes %d (all: %v)", n, opts.MaxDeltaBytes, sizes)
		}
	}
	testutil.Eventually(t, 5*time.Second, "b to handle every delta", func() bool {
		st := b.Stats()
		return st.DeltasReceived+st.DeltasInvalid == uint64(len(sizes))
	})
	if st := b.Stats(); st.DeltasInvalid != 0 || b.Len() != 61 {
		t.Fatalf("b: %d of %d deltas invalid, %d keys of 61", st.DeltasInvalid, len(sizes), b.Len())
	}
}

// The first write a store receives from a peer's replica names that peer
// in the watcher's Change (Entry.Peer), not only the writes after it.
func TestWatchNamesTheWriterOfAFirstWrite(t *testing.T) {
	_, ss := memStores(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range ss {
		if err := s.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w := ss[0].Watch("")
	defer w.Stop()
	mustSet(t, ss[1], "first", "1")
	mustSet(t, ss[1], "second", "2")
	for _, key := range []string{"first", "second"} {
		select {
		case c := <-w.Updates():
			if c.Key != key || c.Peer != "s1" {
				t.Errorf("change of %s: Peer %q, want s1", c.Key, c.Peer)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no change for %s", key)
		}
	}
}
