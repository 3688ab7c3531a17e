package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

func TestSyncProgressLine(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	long := "12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdef"
	syncing := crdtstore.PeerSyncStatus{Peer: long, Joined: true, Syncing: true, SyncStarted: now.Add(-4 * time.Second), SyncBytes: 12_345_678, SyncKeys: 95_000}
	failed := crdtstore.PeerSyncStatus{Peer: "b", Joined: true, LastSyncError: "stream reset\x1b[2J"}
	waiting := crdtstore.PeerSyncStatus{Peer: "c", Joined: true}
	synced := crdtstore.PeerSyncStatus{Peer: "d", Joined: true, Synced: true}
	left := crdtstore.PeerSyncStatus{Peer: "e", Syncing: true, SyncStarted: now}
	cases := []struct {
		st   []crdtstore.PeerSyncStatus
		want string
	}{
		{nil, ""},
		{[]crdtstore.PeerSyncStatus{synced, left}, ""},
		{[]crdtstore.PeerSyncStatus{syncing}, "syncing with …89abcdef: 95,000 keys, 12.3 MB (4 s)"},
		{[]crdtstore.PeerSyncStatus{syncing, failed, synced, waiting}, `syncing with …89abcdef: 95,000 keys, 12.3 MB (4 s); b: last sync failed: stream reset\x1b[2J; waiting for c`},
		{[]crdtstore.PeerSyncStatus{waiting, waiting, waiting, waiting, waiting}, "waiting for c; waiting for c; waiting for c; +2 more"},
	}
	for _, c := range cases {
		if got := syncProgress(c.st, now); got != c.want {
			t.Errorf("syncProgress(%v) = %q, want %q", c.st, got, c.want)
		}
	}
	if got := (progressEvent{"progress", "x"}).human(); got != "… x" {
		t.Errorf("human form %q", got)
	}
}

// stalledPeer opens a store "a" on an in-memory network with a peer "b"
// whose sync handler never answers (until the test ends): a sync with b
// runs and stalls.
func stalledPeer(t *testing.T) *crdtstore.Store {
	t.Helper()
	net := crdttest.NewNetwork()
	release := make(chan struct{})
	b := net.Transport("b")
	err := b.Start(crdtstore.Handlers{
		DecodeDelta: func([]byte) (d ormap.Delta, err error) { return d, errors.New("not decoded") },
		Delta:       func(string, ormap.Delta) {},
		Sync: func(_ string, s crdtstore.Stream) {
			go func() { _, _ = io.Copy(io.Discard, s) }() // reads the request, never answers
			<-release
			_ = s.Reset()
		},
		PeerUp:   func(string) {},
		PeerDown: func(string) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := crdtstore.OpenTransport(net.Transport("a"), crdtstore.Options{
		SyncInterval: -1, SyncTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(release)
		_ = s.Close()
		_ = b.Close()
	})
	return s
}

// syncBuffer is a concurrency-safe bytes.Buffer.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wait-synced giving up says why (the store's reason); on a terminal it
// prints its progress meanwhile, elsewhere nothing but the reply.
func TestWaitSyncedTimeoutSaysWhy(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 10 * time.Millisecond
	for _, tty := range []bool{false, true} {
		s := stalledPeer(t)
		var out syncBuffer
		d := newDemo(nil, s, newOutput(&out, &out, false, false))
		d.progress = tty
		// Until the sync with b is under way, b is only "waiting".
		for deadline := time.Now().Add(10 * time.Second); ; {
			if st := s.PeerSyncStatus(); len(st) == 1 && st[0].SyncBytes > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no sync with b started")
			}
			time.Sleep(time.Millisecond)
		}
		r := d.exec(context.Background(), command{name: "wait-synced", timeout: 100 * time.Millisecond})
		e, ok := r.(errorReply)
		if !ok {
			t.Fatalf("wait-synced: %#v, want an error", r)
		}
		t.Log(e.human())
		if !strings.HasPrefix(e.Error, "not synced with every peer after 100ms: peer b: syncing for ") || !strings.HasSuffix(e.Error, " B and 0 keys so far") {
			t.Fatalf("tty %v: error %q does not say why", tty, e.Error)
		}
		progress := strings.Contains(out.String(), "… syncing with b: ")
		if progress != tty {
			t.Fatalf("tty %v: output %q", tty, out.String())
		}
	}
}
