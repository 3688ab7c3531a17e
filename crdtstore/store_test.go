package crdtstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

func TestSetGetDeleteReplicate(t *testing.T) {
	_, ss := memStores(t, 3)
	if err := ss[0].SetString("a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := ss[1].SetJSON("b", map[string]int{"x": 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "replication", func() bool { return converged(ss) && ss[2].Len() == 2 })
	mustGet(t, ss[2], "a", "1")
	var b map[string]int
	if ok, err := ss[2].GetJSON("b", &b); !ok || err != nil || b["x"] != 2 {
		t.Fatalf("GetJSON = %v, %v, %v", b, ok, err)
	}
	if err := ss[2].Delete("a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "delete to replicate", func() bool {
		_, ok0 := ss[0].Get("a")
		_, ok1 := ss[1].Get("a")
		return !ok0 && !ok1
	})
	if got := ss[0].Keys(""); len(got) != 1 || got[0] != "b" {
		t.Fatalf("Keys = %v", got)
	}
}

func TestKeysAndListByPrefix(t *testing.T) {
	_, ss := memStores(t, 1)
	for _, k := range []string{"user/2", "user/1", "task/1", "user/10"} {
		if err := ss[0].SetString(k, "v"+k); err != nil {
			t.Fatal(err)
		}
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
	if err := ss[0].SetString("", "x"); !errors.Is(err, ErrKey) {
		t.Fatalf("empty key: %v", err)
	}
	if err := ss[0].Set(string([]byte{0xff}), nil); !errors.Is(err, ErrKey) {
		t.Fatalf("bad utf-8: %v", err)
	}
	if err := ss[0].Set("k", make([]byte, 2<<20)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("2 MiB value: %v", err)
	}
	if ss[0].Len() != 0 {
		t.Fatal("a refused write changed the store")
	}
}

func TestConcurrentSetBeatsDelete(t *testing.T) {
	net, ss := memStores(t, 2)
	if err := ss[0].SetString("k", "old"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "k on both", func() bool { _, ok := ss[1].Get("k"); return ok })
	net.Disconnect("s0", "s1")
	if err := ss[0].Delete("k"); err != nil {
		t.Fatal(err)
	}
	if err := ss[1].SetString("k", "new"); err != nil {
		t.Fatal(err)
	}
	net.Connect("s0", "s1")
	eventually(t, 5*time.Second, "convergence", func() bool { return converged(ss) })
	for _, s := range ss {
		mustGet(t, s, "k", "new")
	}
}

func TestConcurrentSetsBecomeSiblings(t *testing.T) {
	net, ss := memStores(t, 2)
	net.Disconnect("s0", "s1")
	_ = ss[0].SetString("k", "zero")
	_ = ss[1].SetString("k", "one")
	net.Connect("s0", "s1")
	eventually(t, 5*time.Second, "convergence", func() bool { return converged(ss) })
	a, b := ss[0].GetAll("k"), ss[1].GetAll("k")
	if len(a) != 2 || len(b) != 2 || string(a[0]) != string(b[0]) {
		t.Fatalf("siblings %q vs %q", a, b)
	}
	_ = ss[1].SetString("k", "resolved")
	eventually(t, 5*time.Second, "resolution", func() bool { return len(ss[0].GetAll("k")) == 1 })
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
		_ = ss[i%2].SetString(fmt.Sprintf("left/%d", i), "L")
		_ = ss[2+i%2].SetString(fmt.Sprintf("right/%d", i), "R")
		_ = ss[i%4].SetString("shared", fmt.Sprint(i))
	}
	for _, a := range []string{"s0", "s1"} {
		for _, b := range []string{"s2", "s3"} {
			net.Connect(a, b)
		}
	}
	eventually(t, 10*time.Second, "convergence after heal", func() bool { return converged(ss) })
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
		_ = ss[i%2].SetString(fmt.Sprintf("k%03d", i), "v")
	}
	eventually(t, 5*time.Second, "initial convergence", func() bool { return converged(ss) && ss[0].Len() == 200 })
	net.Disconnect("s0", "s1")
	_ = ss[0].SetString("only0", "x")
	_ = ss[1].SetString("only1", "y")
	_ = ss[1].Delete("k007")
	net.Connect("s0", "s1")
	eventually(t, 5*time.Second, "convergence", func() bool { return converged(ss) })
	for _, s := range ss {
		if n := s.Len(); n != 201 {
			t.Fatalf("%d keys, want 201 (200 shared - 1 deleted + 2 new)", n)
		}
		if _, ok := s.Get("k007"); ok {
			t.Fatal("deleted key came back")
		}
	}
}

func TestLateJoinerSyncs(t *testing.T) {
	net := NewMemNetwork()
	opts := fastOptions()
	opts.SyncInterval = -1 // only sync on connect
	a, err := OpenTransport(net.Transport("a"), opts, ormap.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range 1000 {
		_ = a.SetString(fmt.Sprintf("key/%04d", i), "value")
	}
	b, err := OpenTransport(net.Transport("b"), opts, ormap.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.Len(); n != 1000 {
		t.Fatalf("late joiner has %d keys after WaitSynced", n)
	}
}

func TestWatch(t *testing.T) {
	_, ss := memStores(t, 2)
	_ = ss[0].SetString("app/existing", "e")
	_ = ss[0].SetString("other/x", "o")
	w := ss[0].Watch("app/", WithSnapshot())
	defer w.Stop()
	_ = ss[0].SetString("app/local", "l")
	_ = ss[1].SetString("app/remote", "r")
	_ = ss[1].SetString("other/ignored", "i")
	want := []struct {
		key    string
		origin Origin
	}{{"app/existing", OriginSnapshot}, {"app/local", OriginLocal}, {"app/remote", OriginRemote}}
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
	eventually(t, 5*time.Second, "app/local on s1", func() bool { _, ok := ss[1].Get("app/local"); return ok })
	_ = ss[1].Delete("app/local")
	select {
	case c := <-w.Updates():
		if c.Key != "app/local" || !c.Deleted || c.Origin != OriginRemote {
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
	w := ss[0].Watch("", WithBuffer(4))
	defer w.Stop()
	for i := range 10 {
		_ = ss[0].SetString(fmt.Sprint(i), "v")
	}
	if d := w.Dropped(); d != 6 {
		t.Fatalf("Dropped = %d, want 6", d)
	}
	for range 4 {
		<-w.Updates()
	}
	_ = ss[0].SetString("next", "v")
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
	if err := ss[0].Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := ss[0].SetString("k", "v"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if _, ok := <-w.Updates(); ok {
		t.Fatal("watcher open after Close")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{Name: "bad name"}, {Name: strings.Repeat("x", 65)}, {SyncTimeout: -1}, {MaxSyncFrame: -1}, {WatchBuffer: -1}} {
		if err := o.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if err := (Options{Name: "settings.v2"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// An in-sync reconnect costs one round trip: our context out, "equal" back.
func TestInSyncReconnectIsOneRoundTrip(t *testing.T) {
	_, ss := memStores(t, 2)
	for i := range 1000 {
		_ = ss[i%2].SetString(fmt.Sprintf("k%04d", i), "value")
	}
	eventually(t, 5*time.Second, "convergence", func() bool { return converged(ss) && ss[0].Len() == 1000 })
	eventually(t, 5*time.Second, "syncs to settle", func() bool {
		ss[0].mu.Lock()
		defer ss[0].mu.Unlock()
		ps := ss[0].peers["s1"]
		return ps != nil && !ps.syncing
	})
	before := ss[0].Stats()
	if ok, _ := ss[0].claim("s1", true); !ok {
		t.Fatal("a sync is running")
	}
	err := ss[0].syncWith("s1")
	ss[0].release("s1", err == nil)
	if err != nil {
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
	net := NewMemNetwork()
	var ss []*Store
	for i := range 4 {
		s, err := OpenTransport(net.Transport(fmt.Sprintf("p%d", i)), fastOptions(), ormap.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		ss = append(ss, s)
	}
	v := strings.Repeat("v", 100)
	for i := range 2000 {
		_ = ss[i%4].SetString(fmt.Sprintf("key/%05d", i), v)
	}
	eventually(t, 10*time.Second, "convergence", func() bool { return converged(ss) && ss[0].Len() == 2000 })
	ss[0].mu.Lock()
	snapshot := len(ormap.EncodeDelta(ss[0].m.Diff(ormap.Context{})))
	ss[0].mu.Unlock()

	joiner, err := OpenTransport(net.Transport("zz-joiner"), fastOptions(), ormap.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer joiner.Close()
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

func TestFlush(t *testing.T) {
	_, ss := memStores(t, 2)
	for i := range 100 {
		_ = ss[0].SetString(fmt.Sprint(i), "v")
	}
	if err := ss[0].Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ss[0].mu.Lock()
	pending := len(ss[0].pending)
	ss[0].mu.Unlock()
	if pending != 0 || ss[0].Stats().DeltasSent == 0 {
		t.Fatalf("after Flush: %d pending, %d sent", pending, ss[0].Stats().DeltasSent)
	}
	_ = ss[0].Close()
	if err := ss[0].Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
}

// orderTransport holds the first Publish until a second one starts (or
// 200 ms pass), and records the keys of each published delta when its
// Publish returns.
type orderTransport struct {
	Transport
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
	tr := &orderTransport{Transport: NewMemNetwork().Transport("s"), entered: make(chan struct{}), gate: make(chan struct{})}
	s, err := OpenTransport(tr, fastOptions(), ormap.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetString("first", "1"); err != nil {
		t.Fatal(err)
	}
	<-tr.entered // the flusher is publishing "first"
	if err := s.SetString("second", "2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tr.published(); !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("published %v when Flush returned, want [first second]", got)
	}
}
