package crdtstore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// smallFrames is fastOptions with sync frames of at most 64 KiB: a store of
// a few thousand keys no longer fits one.
func smallFrames() crdtstore.Options {
	o := fastOptions()
	o.MaxSyncFrame = 64 << 10
	return o
}

// fill sets n keys of 100-byte values, with deletes and overwrites among
// them (so that the sync's removals are not empty).
func fill(t testing.TB, s *crdtstore.Store, prefix string, n int) {
	t.Helper()
	v := strings.Repeat("v", 100)
	for i := range n {
		mustSet(t, s, fmt.Sprintf("%s%05d", prefix, i), v)
	}
	for i := 0; i < n; i += 10 {
		mustSet(t, s, fmt.Sprintf("%s%05d", prefix, i), "overwritten")
		mustDelete(t, s, fmt.Sprintf("%s%05d", prefix, i+1))
	}
}

func waitSynced(t testing.TB, s *crdtstore.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
}

// A new replica joins a store many times larger than one sync frame: the
// reply comes in chunks, each read within the frame limit, and the joiner
// ends with exactly the holder's state. With one frame per reply (SyncV1)
// this store could never reach it.
func TestJoinLargerThanASyncFrame(t *testing.T) {
	net := crdttest.NewNetwork()
	b := openMem(t, net, "b", smallFrames())
	fill(t, b, "k", 3000)
	if n, limit := crdtstore.SnapshotBytes(b), smallFrames().MaxSyncFrame; n < 4*limit {
		t.Fatalf("the snapshot is %d bytes: not much over the frame limit %d", n, limit)
	}
	c := openMem(t, net, "c", smallFrames())
	waitSynced(t, c)
	if !converged([]*crdtstore.Store{b, c}) {
		t.Fatalf("c has %d keys, b %d; or their contexts differ", c.Len(), b.Len())
	}
	if _, peak := crdtstore.SyncBuffered(c); peak > int64(smallFrames().MaxSyncFrame) {
		t.Fatalf("c held %d bytes of sync frames at once, over the frame limit", peak)
	}
	st := c.Stats()
	if st.SyncFailures != 0 || st.SyncFramesTooLarge != 0 {
		t.Fatalf("c: %d sync failures, %d frames too large", st.SyncFailures, st.SyncFramesTooLarge)
	}
}

// A replica that joined in chunks keeps what it got: reopened from its
// directory with no peer, it has every key and the whole context.
func TestChunkedJoinIsKept(t *testing.T) {
	net := crdttest.NewNetwork()
	b := openMem(t, net, "b", smallFrames())
	fill(t, b, "k", 2000)
	dir := t.TempDir()
	c := openDir(t, net, "c", dir, func(o *crdtstore.Options) { o.MaxSyncFrame = smallFrames().MaxSyncFrame })
	waitSynced(t, c)
	want, wantCtx := dump(b), crdtstore.Context(b)
	closeStore(t, c)
	alone := crdttest.NewNetwork()
	c2 := openDir(t, alone, "c", dir)
	got := dump(c2)
	if len(got) != len(want) || !crdtstore.Context(c2).Equal(wantCtx) {
		t.Fatalf("reopened: %d keys (want %d), context equal %v", len(got), len(want), crdtstore.Context(c2).Equal(wantCtx))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("reopened: %q = %q, want %q", k, got[k], v)
		}
	}
}

// Each side sends what the other lacks, both ways in chunks: two replicas
// that wrote apart, each more than a frame, end equal.
func TestChunkedSyncBothWays(t *testing.T) {
	net := crdttest.NewNetwork()
	b := openMem(t, net, "b", smallFrames())
	c := openMem(t, net, "c", smallFrames())
	waitSynced(t, b)
	net.Disconnect("b", "c")
	fill(t, b, "b", 1500)
	fill(t, c, "c", 1500)
	mustSet(t, b, "both", "b's")
	mustSet(t, c, "both", "c's")
	net.Connect("b", "c")
	deadline := time.Now().Add(20 * time.Second)
	for !converged([]*crdtstore.Store{b, c}) {
		if time.Now().After(deadline) {
			t.Fatalf("not converged: b %d keys, c %d", b.Len(), c.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.Len(); n != 2*(1500-150)+1 {
		t.Fatalf("%d keys, want %d", n, 2*(1500-150)+1)
	}
	if e, _ := b.GetEntry("both"); e.Siblings != 2 {
		t.Fatalf("both: %d siblings, want 2 (concurrent writes)", e.Siblings)
	}
}

// A peer that took a reply beyond its budget (a large join) is still
// answered when it is in sync: its next syncs cost a round trip, and none
// is refused.
func TestInSyncAnsweredOverBudget(t *testing.T) {
	net := crdttest.NewNetwork()
	o := smallFrames()
	o.SyncInterval = -1
	b := openMem(t, net, "b", o)
	fill(t, b, "k", 3000)
	c := openMem(t, net, "c", o)
	waitSynced(t, c) // b's budget for c: 64 KiB; the join took ~6 times that
	served := b.Stats().SyncServed
	for i := range uint64(3) {
		if err := crdtstore.SyncNow(c, "b"); err != nil {
			t.Fatalf("a sync in sync, over budget: %v", err)
		}
		// b ends its side after c's: wait, or the next stream resets it.
		testutil.Eventually(t, 5*time.Second, "b to end serving", func() bool { return b.Stats().SyncServed == served+i+1 })
	}
	if st := b.Stats(); st.SyncBudgetLimited != 0 || st.SyncServed != served+3 {
		t.Fatalf("b: %d refused for the budget, %d served; want 0 and %d", st.SyncBudgetLimited, st.SyncServed, served+3)
	}
}

// reply is what a peer holding m sends, piece by piece, to a new replica:
// the removals, then chunks of one key each.
type reply struct {
	m     *ormap.Map
	start ormap.Context
}

func newReply(keys ...string) reply {
	m := ormap.New(ormap.ReplicaID(crdtstore.NewReplicaID("b")))
	for i, k := range keys {
		m.Set(k, []byte("v"), ormap.Timestamp{Wall: int64(i + 1)})
	}
	_, start := m.DiffStart(ormap.Context{})
	return reply{m, start}
}

func (r reply) removals() []byte {
	d, _ := r.m.DiffStart(ormap.Context{})
	return ormap.EncodeDelta(d)
}

// chunk is the reply's chunk from key from, of one key.
func (r reply) chunk(from string) ormap.Chunk {
	return r.m.DiffChunk(ormap.Context{}, r.start, from, 1)
}

// A sync in progress shows the keys it has received so far.
func TestPeerSyncStatusCountsKeys(t *testing.T) {
	tr := newFakeTransport("a", false, "b")
	s := openFake(t, tr, crdtstore.Options{})
	<-tr.opened
	<-tr.requestRead
	r := newReply("k1", "k2")
	w := tr.remote("b")
	writeRawFrame(t, w, crdtstore.FrameDelta, r.removals())
	first := r.chunk("")
	writeRawFrame(t, w, crdtstore.FrameSyncChunk, ormap.EncodeChunk(first))
	waitFor(t, "the first chunk's key to count", func() bool { return status(s, "b").SyncKeys == 1 })
	if !has(s, "k1") || has(s, "k2") {
		t.Fatal("after one chunk, a should hold k1 only")
	}
	last := r.chunk(first.Next())
	if !last.Done() {
		t.Fatal("two keys, two chunks")
	}
	writeRawFrame(t, w, crdtstore.FrameSyncChunk, ormap.EncodeChunk(last))
	writeRawFrame(t, w, crdtstore.FrameContext, ormap.EncodeContext(r.start))
	waitFor(t, "the sync to end", func() bool { return !status(s, "b").LastSync.IsZero() })
	if st := status(s, "b"); st.LastSyncError != "" || st.SyncKeys != 0 || !crdtstore.Context(s).Equal(r.start) {
		t.Fatalf("after the sync: %+v; context equal %v", st, crdtstore.Context(s).Equal(r.start))
	}
}

// A reply whose chunks leave a gap is refused at the gap: the store keeps
// the chunks before it and never takes the reply's context, which would
// claim the keys of the gap it never received.
func TestChunkGapRefused(t *testing.T) {
	tr := newFakeTransport("a", false, "b")
	s := openFake(t, tr, crdtstore.Options{Logger: slog.New(slog.DiscardHandler)})
	<-tr.opened
	<-tr.requestRead
	r := newReply("k1", "k2", "k3")
	w := tr.remote("b")
	writeRawFrame(t, w, crdtstore.FrameDelta, r.removals())
	first := r.chunk("")
	writeRawFrame(t, w, crdtstore.FrameSyncChunk, ormap.EncodeChunk(first))
	third := r.chunk(r.chunk(first.Next()).Next()) // k2's chunk left out
	_, _ = w.Write(append(binary.AppendUvarint(nil, uint64(len(ormap.EncodeChunk(third))+1)), crdtstore.FrameSyncChunk))
	_, _ = w.Write(ormap.EncodeChunk(third))
	_, _ = w.Write(append(binary.AppendUvarint(nil, uint64(len(ormap.EncodeContext(r.start))+1)), crdtstore.FrameContext))
	waitFor(t, "the sync to end", func() bool { return !status(s, "b").LastSync.IsZero() })
	st := status(s, "b")
	if !strings.Contains(st.LastSyncError, "out of order") || s.Stats().SyncFailures != 1 {
		t.Fatalf("after a gap: %+v, %d failures", st, s.Stats().SyncFailures)
	}
	if ks := s.Keys(""); len(ks) != 1 || ks[0] != "k1" {
		t.Fatalf("a holds %q, want k1 only", ks)
	}
	if crdtstore.Context(s).SubsetOf(r.start) && r.start.SubsetOf(crdtstore.Context(s)) {
		t.Fatal("a took the reply's context")
	}
}

// cutTransport cuts the first of its sync streams (either direction) once
// it has read cut bytes: a sync broken off in the middle of a reply.
type cutTransport struct {
	crdtstore.Transport
	cut  int64
	once sync.Once
	done chan struct{} // closed when the cut happened
}

func newCutTransport(tr crdtstore.Transport, cut int64) *cutTransport {
	return &cutTransport{Transport: tr, cut: cut, done: make(chan struct{})}
}

func (t *cutTransport) Start(h crdtstore.Handlers) error {
	serve := h.Sync
	h.Sync = func(p string, s crdtstore.Stream) { serve(p, t.wrap(s)) }
	return t.Transport.Start(h)
}

func (t *cutTransport) OpenSync(ctx context.Context, p string) (crdtstore.Stream, error) {
	s, err := t.Transport.OpenSync(ctx, p)
	if err != nil {
		return nil, err
	}
	return t.wrap(s), nil
}

func (t *cutTransport) wrap(s crdtstore.Stream) crdtstore.Stream {
	first := false
	t.once.Do(func() { first = true })
	if !first {
		return s
	}
	return &cutStream{Stream: s, left: t.cut, done: t.done}
}

type cutStream struct {
	crdtstore.Stream
	left int64
	done chan struct{}
}

func (s *cutStream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, errors.New("cut by the test")
	}
	n, err := s.Stream.Read(p[:min(int64(len(p)), s.left)])
	if s.left -= int64(n); s.left <= 0 {
		_ = s.Stream.Reset()
		close(s.done)
	}
	return n, err
}

// A first sync broken off in the middle of the reply keeps the chunks that
// arrived (consistently: kept across a restart too) and the next sync
// brings the rest; nothing is lost or duplicated.
func TestChunkedSyncCutOffResumes(t *testing.T) {
	net := crdttest.NewNetwork()
	b := openMem(t, net, "b", smallFrames())
	fill(t, b, "k", 3000)
	dir := t.TempDir()
	o := smallFrames()
	o.Dir = dir
	o.SyncInterval = -1
	tr := newCutTransport(net.Transport("c"), 150<<10)
	c, err := crdtstore.OpenTransport(tr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, c) })
	<-tr.done
	testutil.Eventually(t, 5*time.Second, "the cut sync to end", func() bool {
		st := c.PeerSyncStatus()
		return len(st) == 1 && st[0].LastSyncError != ""
	})
	got := dump(c)
	t.Logf("%d of %d keys before the cut", len(got), b.Len())
	if len(got) == 0 || len(got) >= b.Len() {
		t.Fatalf("%d keys after the cut; want some, not all", len(got))
	}
	want := dump(b)
	for k, v := range got {
		if want[k] != v {
			t.Fatalf("after the cut: %q = %q, b has %q", k, v, want[k])
		}
	}
	if c.Synced() {
		t.Fatal("synced after a cut sync")
	}
	closeStore(t, c)
	// Reopened apart from b, so that what it holds is what it kept: with
	// the link up, its sync on connect could bring more before the count.
	net.Disconnect("c", "b")
	c2 := openDir(t, net, "c", dir, func(o *crdtstore.Options) { o.MaxSyncFrame = smallFrames().MaxSyncFrame })
	if n := len(dump(c2)); n != len(got) {
		t.Fatalf("reopened with %d keys, had %d", n, len(got))
	}
	net.Connect("c", "b")
	waitSynced(t, c2)
	if !converged([]*crdtstore.Store{b, c2}) {
		t.Fatalf("after the next sync: %d keys, b %d", c2.Len(), b.Len())
	}
}
