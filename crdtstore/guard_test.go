package crdtstore_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// Issue 11, attacks 1-3: a member publishing hostile deltas on the store's
// topic, or answering syncs with hostile replies. The frames are written by
// hand (rawDelta), as an attacker would.

// rawDelta is a delta frame of wire version 1, written without package
// ormap, so that it can say anything the format can.
type rawDelta struct {
	global bool
	origin string // "" for none
	ctx    map[string][]ormap.Interval
	deps   map[string][]ormap.Interval
	keys   []rawKey // sorted
}

type rawKey struct {
	key  string
	ents []rawEntry
}

type rawEntry struct {
	rep string
	ctr uint64
	val []byte
}

func (d rawDelta) encode() []byte {
	seen := map[string]bool{}
	if d.origin != "" {
		seen[d.origin] = true
	}
	for r := range d.ctx {
		seen[r] = true
	}
	var table []string
	for r := range seen {
		table = append(table, r)
	}
	slices.Sort(table)
	idx := func(r string) uint64 {
		i, _ := slices.BinarySearch(table, r)
		return uint64(i)
	}
	uv := binary.AppendUvarint
	b := []byte{1, 2}
	b = uv(b, uint64(len(table)))
	for _, r := range table {
		b = uv(b, uint64(len(r)))
		b = append(b, r...)
	}
	flags := byte(0)
	if d.global {
		flags = 1
	}
	b = append(b, flags)
	if d.origin == "" {
		b = uv(b, 0)
	} else {
		b = uv(b, idx(d.origin)+1)
	}
	for _, c := range []map[string][]ormap.Interval{d.ctx, d.deps} {
		var rows []string
		for r := range c {
			rows = append(rows, r)
		}
		slices.Sort(rows)
		b = uv(b, uint64(len(rows)))
		for _, r := range rows {
			b = uv(b, idx(r))
			b = uv(b, uint64(len(c[r])))
			var prev uint64
			for k, iv := range c[r] {
				if k == 0 {
					b = uv(b, iv.Lo-1)
				} else {
					b = uv(b, iv.Lo-prev-2)
				}
				b = uv(b, iv.Hi-iv.Lo)
				prev = iv.Hi
			}
		}
	}
	b = uv(b, uint64(len(d.keys)))
	for _, k := range d.keys {
		b = uv(b, 0) // no shared prefix: one key per delta in these tests
		b = uv(b, uint64(len(k.key)))
		b = append(b, k.key...)
		b = uv(b, uint64(len(k.ents)))
		for _, e := range k.ents {
			b = uv(b, idx(e.rep))
			b = uv(b, e.ctr)
			b = binary.AppendVarint(b, 1) // wall
			b = uv(b, 0)                  // logical
			b = uv(b, uint64(len(e.val)))
			b = append(b, e.val...)
		}
	}
	return b
}

func one(lo, hi uint64) []ormap.Interval { return []ormap.Interval{{Lo: lo, Hi: hi}} }

// replicaOf returns the replica id of s, raw.
func replicaOf(t testing.TB, s *crdtstore.Store) string {
	t.Helper()
	rid, err := hex.DecodeString(s.ReplicaID())
	if err != nil {
		t.Fatal(err)
	}
	return string(rid)
}

// publishRaw publishes frames on the store's reserved topic from a plain
// node, one pub/sub batch each.
func publishRaw(t testing.TB, from testNode, frames ...[]byte) {
	t.Helper()
	topic := pubsub.ReservedPrefix + "store/" + crdtstore.DefaultName
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range frames {
		if err := from.n.PubSub().Publish(ctx, topic, f, pubsub.AllowReserved()); err != nil {
			t.Fatal(err)
		}
		if err := from.n.PubSub().Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// attackMesh starts stores a and b and a plain node m (the attacker, a
// member without the store), all connected, with m seeing both stores
// subscribed to the store's topic.
func attackMesh(t *testing.T) (a, b, m testNode) {
	t.Helper()
	a, b, m = startStoreNode(t), startStoreNode(t), startNode(t, node.Config{})
	connect(t, a, b)
	connect(t, m, a)
	connect(t, m, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic := pubsub.ReservedPrefix + "store/" + crdtstore.DefaultName
	if err := m.n.PubSub().WaitSubscribers(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.n.PubSub().WaitSubscribers(ctx, topic, 1); err != nil {
		t.Fatal(err)
	}
	return a, b, m
}

// lateJoiner starts a store node, connects it to to, and waits until it
// has synced.
func lateJoiner(t *testing.T, to testNode) testNode {
	t.Helper()
	c := startStoreNode(t)
	connect(t, c, to)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.s.WaitSynced(ctx); err != nil {
		t.Fatalf("late joiner: %v (sync failures %d)", err, c.s.Stats().SyncFailures)
	}
	return c
}

// TestLoopbackPoisonContext, attack 1 as filed: a member publishes a 37-byte
// delta with no entries and a context claiming dots 1…2^62 of a's replica.
// Before the guard every node dropped a's keys and discarded a's later
// writes forever, and a late joiner never saw them.
func TestLoopbackPoisonContext(t *testing.T) {
	a, b, m := attackMesh(t)
	mustSet(t, a.s, "a/1", "one")
	testutil.Eventually(t, 5*time.Second, "a/1 on b", func() bool { return has(b.s, "a/1") })
	A := replicaOf(t, a.s)
	asFiled := rawDelta{origin: A, ctx: map[string][]ormap.Interval{A: one(1, 1<<62)}}.encode()
	if len(asFiled) != 37 {
		t.Fatalf("the poison is %d bytes, want 37", len(asFiled))
	}
	noOrigin := rawDelta{ctx: map[string][]ormap.Interval{A: one(1, 1<<62)}}.encode()
	// m's own replica (self-certified, so its origin passes) claiming a's dots.
	M := string(crdtstore.NewReplicaID(string(m.n.ID())))
	ownOrigin := rawDelta{origin: M, ctx: map[string][]ormap.Interval{A: one(1, 1<<62), M: one(1, 1)}}.encode()
	publishRaw(t, m, asFiled, noOrigin, ownOrigin)
	for _, x := range []testNode{a, b} {
		testutil.Eventually(t, 5*time.Second, "the poison to reach the store", func() bool {
			st := x.s.Stats() // on a, the last one claims a's own dots
			return st.DeltasForged+uint64(st.PendingDeltas) >= 3
		})
	}
	mustGet(t, b.s, "a/1", "one")
	// a's later writes reach b, and a late joiner gets them all.
	mustSet(t, a.s, "a/2", "two")
	testutil.Eventually(t, 5*time.Second, "a/2 on b", func() bool { return has(b.s, "a/2") })
	mustGet(t, b.s, "a/1", "one")
	c := lateJoiner(t, b)
	mustGet(t, c.s, "a/1", "one")
	mustGet(t, c.s, "a/2", "two")
	mustSet(t, a.s, "a/3", "three")
	testutil.Eventually(t, 5*time.Second, "a/3 everywhere", func() bool { return has(b.s, "a/3") && has(c.s, "a/3") })
	st := b.s.Stats()
	t.Logf("b: %d forged, %d invalid, %d held (%d bytes)", st.DeltasForged, st.DeltasInvalid, st.PendingDeltas, st.PendingBytes)
	if ctx := crdtstore.Context(b.s); ctx.Max(ormap.ReplicaID(A)) > 100 {
		t.Fatalf("b's context took the poison: %v", ctx)
	}
}

// randomIDs returns n random 16-byte replica ids.
func randomIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		out[i] = string(id)
	}
	return out
}

// TestLoopbackReplicaFlood, attack 2: two deltas of 4,095 new replica ids
// each (and their origin) pushed every node past the decoders' 4,096-replica
// limit; every sync failed from then on and a late joiner never synced.
func TestLoopbackReplicaFlood(t *testing.T) {
	a, b, m := attackMesh(t)
	mustSet(t, a.s, "k", "v")
	testutil.Eventually(t, 5*time.Second, "k on b", func() bool { return has(b.s, "k") })
	var frames [][]byte
	for i := range 2 {
		M := string(crdtstore.NewReplicaID(string(m.n.ID())))
		ctx := map[string][]ormap.Interval{M: one(1, 1)}
		for _, r := range randomIDs(4095) {
			ctx[r] = one(1, 1)
		}
		frames = append(frames, rawDelta{origin: M, ctx: ctx}.encode())
		delete(ctx, M)
		if i == 0 {
			frames = append(frames, rawDelta{ctx: ctx}.encode()) // no origin
		}
	}
	t.Logf("flood: deltas of %d and %d bytes", len(frames[0]), len(frames[2]))
	publishRaw(t, m, frames...)
	testutil.Eventually(t, 10*time.Second, "the flood to reach b", func() bool {
		return b.s.Stats().DeltasReceived+b.s.Stats().DeltasInvalid >= 4
	})
	if n := crdtstore.Replicas(b.s); n > 8 {
		t.Fatalf("b knows %d replicas", n)
	}
	if err := crdtstore.SyncNow(a.s, string(b.n.ID())); err != nil && !errors.Is(err, crdtstore.ErrSyncRunning) {
		t.Fatalf("a's sync with b: %v", err)
	}
	c := lateJoiner(t, b)
	mustGet(t, c.s, "k", "v")
	if st := b.s.Stats(); st.SyncFailures != 0 {
		t.Fatalf("b: %d sync failures", st.SyncFailures)
	}
}

// TestLoopbackPendingFlood, attack 3: deltas whose dependencies never come,
// 1 MiB each, were all held (up to 1,024 of any size), on every node,
// after the attacker left. Now one source holds at most
// ormap.DefaultMaxSourceBytes, honest writes keep flowing.
func TestLoopbackPendingFlood(t *testing.T) {
	a, b, m := attackMesh(t)
	mustSet(t, a.s, "k", "v")
	testutil.Eventually(t, 5*time.Second, "k on b", func() bool { return has(b.s, "k") })
	M := string(crdtstore.NewReplicaID(string(m.n.ID())))
	R := randomIDs(1)[0] // a replica nobody knows
	const n = 48
	val := make([]byte, pubsub.DefaultMaxMessageSize-8<<10)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	before := b.s.Stats().DeltasReceived
	for i := range n {
		ctr := uint64(i + 1)
		d := rawDelta{
			origin: M,
			ctx:    map[string][]ormap.Interval{M: one(ctr, ctr), R: one(1, 1)},
			deps:   map[string][]ormap.Interval{R: one(1, 1)}, // never comes
			keys:   []rawKey{{key: fmt.Sprint("p", i), ents: []rawEntry{{M, ctr, val}}}},
		}
		publishRaw(t, m, d.encode())
	}
	testutil.Eventually(t, 30*time.Second, "the flood to reach b", func() bool {
		return b.s.Stats().DeltasReceived-before >= n
	})
	// Honest writes flow: each is visible on b soon after.
	var worst time.Duration
	for i := range 20 {
		start := time.Now()
		key := fmt.Sprint("after/", i)
		mustSet(t, a.s, key, "v")
		testutil.Eventually(t, 5*time.Second, key+" on b", func() bool { return has(b.s, key) })
		worst = max(worst, time.Since(start))
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	grew := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	sa, sb := a.s.Stats(), b.s.Stats()
	t.Logf("%d deltas of %d KiB: heap %+d MiB; held on a: %d (%d KiB), on b: %d (%d KiB), dropped %d/%d; worst honest write visible in %v",
		n, len(val)>>10, grew>>20, sa.PendingDeltas, sa.PendingBytes>>10, sb.PendingDeltas, sb.PendingBytes>>10, sa.PendingDropped, sb.PendingDropped, worst)
	for _, st := range []crdtstore.Stats{sa, sb} {
		if st.PendingBytes > ormap.DefaultMaxSourceBytes || st.PendingDropped == 0 {
			t.Fatalf("held %d bytes (bound %d), dropped %d", st.PendingBytes, ormap.DefaultMaxSourceBytes, st.PendingDropped)
		}
	}
	// Two victims, at most 16 MiB each; unbounded, they held 2 × 48 MiB.
	if grew > 48<<20 {
		t.Fatalf("the heap grew by %d MiB", grew>>20)
	}
}

// syncAttacker is a raw member of an in-memory network that opens sync
// streams and answers them with hostile replies.
type syncAttacker struct{ tr *crdttest.Transport }

func newSyncAttacker(t *testing.T, net *crdttest.Network, id string) syncAttacker {
	tr := net.Transport(id)
	err := tr.Start(crdtstore.Handlers{
		DecodeDelta: func([]byte) (ormap.Delta, error) { return ormap.Delta{}, errors.New("not listening") },
		Delta:       func(string, ormap.Delta) {},
		Sync:        func(_ string, s crdtstore.Stream) { answerEqual(s) },
		PeerUp:      func(string) {},
		PeerDown:    func(string) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return syncAttacker{tr}
}

// answerEqual serves a sync by saying "equal" (it holds nothing to give).
func answerEqual(s crdtstore.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(s)
	if n, err := binary.ReadUvarint(r); err == nil {
		_, _ = io.CopyN(io.Discard, r, int64(n))
		_, _ = s.Write([]byte{1, 2}) // a frame of one byte: kind "equal"
	}
}

// answer opens a sync with p, sends an empty context, reads p's reply
// and answers with payload as a delta frame: the removals that open a
// reply, joined before the stream ends.
func (a syncAttacker) answer(t *testing.T, p string, payload []byte) {
	t.Helper()
	for try := 0; ; try++ {
		if a.try(t, p, payload) {
			return
		}
		if try == 50 {
			t.Fatal("the peer stays busy")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// try is answer once; false if p answered "busy".
func (a syncAttacker) try(t *testing.T, p string, payload []byte) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := a.tr.OpenSync(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	writeRawFrame(t, st, crdtstore.FrameContext, ormap.EncodeContext(ormap.Context{}))
	r := bufio.NewReader(st)
	// The reply (SyncV2): the removals, chunks, then p's context.
	for i := 0; ; i++ {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			t.Fatalf("reading the reply: %v", err)
		}
		kind, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && kind == 4 { // busy
			return false
		}
		if _, err := io.CopyN(io.Discard, r, int64(n-1)); err != nil {
			t.Fatal(err)
		}
		if kind == crdtstore.FrameContext {
			break
		}
	}
	// Our reply's removals; the stream ends before any chunk.
	writeRawFrame(t, st, 3, payload) // a delta frame
	_, _ = io.Copy(io.Discard, r)    // until the server ends the stream
	return true
}

func writeRawFrame(t *testing.T, w io.Writer, kind byte, payload []byte) {
	t.Helper()
	b := binary.AppendUvarint(nil, uint64(len(payload)+1))
	b = append(b, kind)
	if _, err := w.Write(append(b, payload...)); err != nil {
		t.Fatal(err)
	}
}

// TestSyncRepliesBounded: sync replies are trusted to relay others' entries
// and removals, but one that would make the store know more replicas than
// its peers decode is refused (attack 2 by sync), one that could wait for
// dots (a keyed delta, or deps: attack 3 by sync) is not a diff and is
// refused; afterwards a new store still syncs.
func TestSyncRepliesBounded(t *testing.T) {
	net := crdttest.NewNetwork()
	b := openMem(t, net, "b", fastOptions())
	mustSet(t, b, "k", "v")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	att := newSyncAttacker(t, net, "m")
	M := string(crdtstore.NewReplicaID("m"))
	flood := func() []byte {
		ctx := map[string][]ormap.Interval{M: one(1, 1)}
		for _, r := range randomIDs(3000) {
			ctx[r] = one(1, 1)
		}
		return rawDelta{global: true, origin: M, ctx: ctx}.encode()
	}
	att.answer(t, "b", flood()) // fits: 3,002 replicas (b, m, 3,000)
	if n := crdtstore.Replicas(b); n != 3002 {
		t.Fatalf("b knows %d replicas, want 3002", n)
	}
	att.answer(t, "b", flood()) // 6,002: refused
	B := replicaOf(t, b)
	withDeps := rawDelta{global: true, origin: M,
		ctx:  map[string][]ormap.Interval{M: one(5, 5), B: one(1, 1)},
		deps: map[string][]ormap.Interval{B: one(1, 1)},
		keys: []rawKey{{"big", []rawEntry{{M, 5, make([]byte, 1<<20)}}}}}
	att.answer(t, "b", withDeps.encode())
	keyed := withDeps
	keyed.global = false
	att.answer(t, "b", keyed.encode())
	st := b.Stats()
	t.Logf("b: %+v", st)
	if n := crdtstore.Replicas(b); n != 3002 || st.DeltasOverBounds != 1 || st.DeltasForged != 2 || st.PendingDeltas != 0 || has(b, "big") {
		t.Fatalf("b knows %d replicas; over bounds %d, forged %d, held %d", n, st.DeltasOverBounds, st.DeltasForged, st.PendingDeltas)
	}
	c := openMem(t, net, "c", fastOptions()) // syncs with m too: "equal"
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := c.WaitSynced(ctx2); err != nil {
		t.Fatalf("a new store: %v (sync failures %d)", err, c.Stats().SyncFailures)
	}
	mustGet(t, c, "k", "v")
}

// TestPublisherBinding: on the delta path a member cannot write in another
// replica's name, claim this store's replica, or introduce more than its
// share of replica ids; Entry.Peer names only the true publisher.
func TestPublisherBinding(t *testing.T) {
	net := crdttest.NewNetwork()
	a := openMem(t, net, "a", fastOptions())
	b := openMem(t, net, "b", fastOptions())
	mustSet(t, a, "k", "a's")
	testutil.Eventually(t, 5*time.Second, "k on b", func() bool { return has(b, "k") })
	m := net.Transport("m")
	if err := m.Start(crdtstore.Handlers{
		DecodeDelta: func([]byte) (ormap.Delta, error) { return ormap.Delta{}, errors.New("not listening") },
		Delta:       func(string, ormap.Delta) {},
		Sync:        func(_ string, s crdtstore.Stream) { answerEqual(s) },
		PeerUp:      func(string) {}, PeerDown: func(string) {},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	A, B := replicaOf(t, a), replicaOf(t, b)
	entry := func(origin string, ctr uint64, val string) []byte {
		return rawDelta{origin: origin, ctx: map[string][]ormap.Interval{origin: one(ctr, ctr)},
			keys: []rawKey{{"k", []rawEntry{{origin, ctr, []byte(val)}}}}}.encode()
	}
	forged := [][]byte{
		entry(A, 2, "forged as a"), // a's replica, published by m
		entry(B, 9, "forged as b"), // b's own replica
		entry(string(crdtstore.NewReplicaID("a")), 1, "a new replica of a's, by m"),
	}
	ctx := context.Background()
	for _, f := range forged {
		if err := m.Publish(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	// m's own replicas: 256 are welcome, more are refused.
	const extra = 10
	for i := range 256 + extra {
		M := string(crdtstore.NewReplicaID("m"))
		if err := m.Publish(ctx, entry(M, 1, fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "b to refuse", func() bool {
		st := b.Stats()
		return st.DeltasForged == uint64(len(forged)) && st.DeltasOverBounds == extra
	})
	// a's value and m's 256 concurrent ones (written at wall time 1, so
	// a's wins), and nothing forged.
	e, ok := b.GetEntry("k")
	if !ok || string(e.Value) != "a's" || e.Peer != "a" || e.Siblings != 1+256 {
		t.Fatalf("b's k: %+v", e)
	}
	for _, v := range b.GetAll("k") {
		if string(v) == "forged as a" || string(v) == "forged as b" || string(v) == "a new replica of a's, by m" {
			t.Fatalf("b holds %q", v)
		}
	}
	if st := b.Stats(); st.DeltasInvalid != uint64(len(forged))+extra {
		t.Fatalf("b: %d invalid", st.DeltasInvalid)
	}
}
