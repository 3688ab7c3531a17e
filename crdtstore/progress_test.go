package crdtstore_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// fakeTransport has peers that are up from Start on and whose syncs
// either stall (the peer reads the request and never answers, until the
// test writes to it) or fail to open.
type fakeTransport struct {
	self  string
	peers []string
	fail  bool // OpenSync fails instead of stalling

	mu      sync.Mutex
	h       crdtstore.Handlers
	remotes map[string]net.Conn // the peer's end of each stalled sync
	conns   []net.Conn
	wg      sync.WaitGroup
	opened  chan string // each peer a sync was opened to
	// requestRead gets the size of each request frame a stalled peer read.
	requestRead chan int64
}

// uvarintLen is the length of n as a uvarint.
func uvarintLen(n uint64) int { return len(binary.AppendUvarint(nil, n)) }

func newFakeTransport(self string, fail bool, peers ...string) *fakeTransport {
	return &fakeTransport{self: self, peers: peers, fail: fail, remotes: map[string]net.Conn{}, opened: make(chan string, 100), requestRead: make(chan int64, 100)}
}

func (t *fakeTransport) Self() string { return t.self }

func (t *fakeTransport) Start(h crdtstore.Handlers) error {
	t.mu.Lock()
	t.h = h
	t.mu.Unlock()
	for _, p := range t.peers {
		h.PeerUp(p)
	}
	return nil
}

func (t *fakeTransport) Publish(context.Context, []byte) error { return nil }
func (t *fakeTransport) Flush(context.Context) error           { return nil }

var errRefusedByTest = errors.New("connection refused by the test")

func (t *fakeTransport) OpenSync(_ context.Context, p string) (crdtstore.Stream, error) {
	if t.fail {
		t.opened <- p
		return nil, errRefusedByTest
	}
	local, remote := net.Pipe()
	t.mu.Lock()
	t.remotes[p] = remote
	t.conns = append(t.conns, local, remote)
	t.mu.Unlock()
	// The peer reads the request (one frame: its size goes to
	// requestRead) and never answers.
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		br := bufio.NewReader(remote)
		if n, err := binary.ReadUvarint(br); err == nil {
			if _, err := io.CopyN(io.Discard, br, int64(n)); err == nil {
				select { // never blocks the peer (and Close) if nobody reads
				case t.requestRead <- int64(uvarintLen(n)) + int64(n):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, br)
	}()
	t.opened <- p
	return pipeStream{local}, nil
}

// remote returns the peer's end of the stalled sync with p.
func (t *fakeTransport) remote(p string) net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.remotes[p]
}

// serve hands the store a sync stream opened by p and returns the peer's
// end of it.
func (t *fakeTransport) serve(p string) net.Conn {
	local, remote := net.Pipe()
	t.mu.Lock()
	h := t.h
	t.conns = append(t.conns, local, remote)
	t.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		h.Sync(p, pipeStream{local})
	}()
	return remote
}

func (t *fakeTransport) Close() error {
	t.mu.Lock()
	for _, c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

type pipeStream struct{ net.Conn }

func (s pipeStream) Reset() error { return s.Conn.Close() }

// openFake opens a store on tr that syncs only when asked (no periodic
// anti-entropy), closed at the end of the test.
func openFake(t *testing.T, tr *fakeTransport, opts crdtstore.Options) *crdtstore.Store {
	t.Helper()
	opts.SyncInterval = -1
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SyncTimeout == 0 {
		opts.SyncTimeout = time.Minute
	}
	s, err := crdtstore.OpenTransport(tr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

// status returns s's PeerSyncStatus of p (zero if s does not list p).
func status(s *crdtstore.Store, p string) crdtstore.PeerSyncStatus {
	ps, _ := peerStatus(s, p)
	return ps
}

// waitFor polls cond every millisecond for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A sync that runs shows in PeerSyncStatus and the metric, with the bytes
// it moved so far in both directions, counted exactly; it goes back to
// zero when the sync ends.
func TestPeerSyncStatusShowsSyncInProgress(t *testing.T) {
	tr := newFakeTransport("a", false, "b")
	reg := prometheus.NewRegistry()
	s := openFake(t, tr, crdtstore.Options{Metrics: reg})
	before := time.Now()
	<-tr.opened
	sent := <-tr.requestRead // the whole request frame, read by the peer
	waitFor(t, "the request to count", func() bool { return status(s, "b").SyncBytes == sent })
	st := status(s, "b")
	if !st.Syncing || st.SyncStarted.Before(before.Add(-time.Second)) || st.SyncStarted.After(time.Now()) {
		t.Fatalf("status of a running sync: %+v", st)
	}
	testutil.WantMetric(t, reg, float64(sent), "reflect_store_sync_in_progress_bytes", "store", "default", "peer", "b")

	// The peer starts answering: 3 bytes of a 100-byte delta frame (the
	// length, the kind, a byte of the body).
	if _, err := tr.remote("b").Write([]byte{100, 3, 0}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 3 bytes read to count", func() bool { return status(s, "b").SyncBytes == sent+3 })

	// The peer goes away: the sync ends, with its bytes as the last sync's.
	_ = tr.remote("b").Close()
	waitFor(t, "the sync to end", func() bool { return !status(s, "b").LastSync.IsZero() })
	st = status(s, "b")
	if st.SyncBytes != 0 || !st.SyncStarted.IsZero() || st.LastSyncBytes != int(sent+3) || st.LastSyncError == "" {
		t.Fatalf("status after the sync failed: %+v", st)
	}
	testutil.WantMetric(t, reg, 0, "reflect_store_sync_in_progress_bytes", "store", "default", "peer", "b")
}

// WaitSynced giving up says why, per peer: a sync running (how long, how
// many bytes), or none started; and still wraps the context's error.
func TestWaitSyncedSaysWhySyncing(t *testing.T) {
	tr := newFakeTransport("a", false, "b", "c")
	s := openFake(t, tr, crdtstore.Options{})
	<-tr.opened // one sync at a time while catching up: the other waits
	waitFor(t, "the request to be written", func() bool {
		return status(s, "b").SyncBytes > 0 || status(s, "c").SyncBytes > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := s.WaitSynced(ctx)
	t.Log(err)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, crdtstore.ErrNotSynced) {
		t.Fatalf("WaitSynced: %v, want ErrNotSynced and DeadlineExceeded", err)
	}
	var nse *crdtstore.NotSyncedError
	if !errors.As(err, &nse) {
		t.Fatalf("WaitSynced: %T, want a *NotSyncedError", err)
	}
	parts := strings.Split(nse.Reason, "; ")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "peer b: ") || !strings.HasPrefix(parts[1], "peer c: ") {
		t.Fatalf("reason %q: want one part per peer, sorted", nse.Reason)
	}
	var syncing, waiting int
	for _, p := range parts {
		switch {
		case strings.Contains(p, ": syncing for ") && strings.HasSuffix(p, " B and 0 keys so far"):
			syncing++
		case strings.HasSuffix(p, ": not synced yet (no sync started: the first sync runs with another peer)"):
			waiting++
		}
	}
	if syncing != 1 || waiting != 1 {
		t.Fatalf("reason %q: want one peer syncing and one waiting", nse.Reason)
	}
}

// WaitSynced giving up names at most five peers, each with its last
// failure.
func TestWaitSyncedSaysWhyFailed(t *testing.T) {
	peers := []string{"b", "c", "d", "e", "f", "g", "h"}
	tr := newFakeTransport("a", true, peers...)
	s := openFake(t, tr, crdtstore.Options{})
	waitFor(t, "a failed sync with every peer", func() bool {
		for _, p := range peers {
			if status(s, p).LastSyncError == "" {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.WaitSynced(ctx)
	t.Log(err)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, crdtstore.ErrNotSynced) {
		t.Fatalf("WaitSynced: %v, want ErrNotSynced and Canceled", err)
	}
	var nse *crdtstore.NotSyncedError
	errors.As(err, &nse)
	parts := strings.Split(nse.Reason, "; ")
	if len(parts) != 6 || parts[5] != "+2 more" {
		t.Fatalf("reason %q: want 5 peers and +2 more", nse.Reason)
	}
	for i, p := range parts[:5] {
		if !strings.HasPrefix(p, "peer "+peers[i]+": last sync failed ") || !strings.HasSuffix(p, " s ago: "+errRefusedByTest.Error()) {
			t.Fatalf("reason %q: part %d", nse.Reason, i)
		}
	}
}

// WaitSynced giving up while no peer has joined says so.
func TestWaitSyncedSaysNoPeer(t *testing.T) {
	s := openFake(t, newFakeTransport("a", false), crdtstore.Options{DiscoveryGrace: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := s.WaitSynced(ctx)
	var nse *crdtstore.NotSyncedError
	if !errors.As(err, &nse) || nse.Reason != "no peer joined" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitSynced: %v, want no peer joined", err)
	}
	if want := "crdtstore: not synced (no peer joined): context deadline exceeded"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// A sync this store serves that fails logs at Warn, rate-limited: one Warn
// for a burst of failures, the others at Debug.
func TestServedSyncFailureLogsWarn(t *testing.T) {
	tr := newFakeTransport("a", false, "b")
	var logs logSink
	s := openFake(t, tr, crdtstore.Options{Logger: logs.logger()})
	<-tr.opened
	for range 3 {
		failures := s.Stats().SyncFailures
		_ = tr.serve("b").Close() // the peer hangs up before its request
		waitFor(t, "the served sync to fail", func() bool { return s.Stats().SyncFailures > failures })
	}
	out := logs.String()
	if n := strings.Count(out, "crdtstore: serving sync failed"); n != 1 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "peer=b") {
		t.Fatalf("want one Warn about the 3 failed served syncs, got:\n%s", out)
	}
}

// A store closing with a sync stalled ends it and leaves no goroutine.
func TestCloseEndsStalledSync(t *testing.T) {
	base := runtime.NumGoroutine()
	tr := newFakeTransport("a", false, "b")
	s, err := crdtstore.OpenTransport(tr, crdtstore.Options{SyncInterval: -1, SyncTimeout: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	<-tr.opened
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// A failed sync logs at Warn even right after another kind of warning (a
// forged delta): the two are rate-limited apart.
func TestSyncFailureWarnNotHiddenByGuard(t *testing.T) {
	tr := newFakeTransport("z", true, "b") // z > b: its sync with b starts 300 ms after b joins
	var logs logSink
	s := openFake(t, tr, crdtstore.Options{Logger: logs.logger()})
	C := string(crdtstore.NewReplicaID("c"))
	forged := rawDelta{origin: C, ctx: map[string][]ormap.Interval{C: one(1, 1)},
		keys: []rawKey{{key: "k", ents: []rawEntry{{rep: C, ctr: 1, val: []byte("v")}}}}}.encode()
	tr.mu.Lock()
	h := tr.h
	tr.mu.Unlock()
	d, err := h.DecodeDelta(forged)
	if err != nil {
		t.Fatal(err)
	}
	h.Delta("b", d) // c's replica, published by b
	<-tr.opened
	waitFor(t, "the sync to fail", func() bool { return s.Stats().SyncFailures > 0 })
	// The failure's Warn follows its count: wait for it (old code: never).
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs.String(), "crdtstore: sync failed") && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	out := logs.String()
	if s.Stats().DeltasForged != 1 || !strings.Contains(out, "refusing a delta") || !strings.Contains(out, "crdtstore: sync failed") {
		t.Fatalf("want a Warn about the forged delta and one about the failed sync, got:\n%s", out)
	}
}
