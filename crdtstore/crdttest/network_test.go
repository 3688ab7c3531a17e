package crdttest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// recorder is a Handlers that records what a transport tells it, in order.
type recorder struct {
	mu      sync.Mutex
	events  []string // "up p", "down p", "delta p k1,k2", "sync p"
	decodes int
	streams chan crdtstore.Stream
}

func newRecorder() *recorder { return &recorder{streams: make(chan crdtstore.Stream, 1)} }

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) decoded() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decodes
}

func (r *recorder) handlers() crdtstore.Handlers {
	return crdtstore.Handlers{
		DecodeDelta: func(data []byte) (ormap.Delta, error) {
			r.mu.Lock()
			r.decodes++
			r.mu.Unlock()
			return ormap.DecodeDelta(data, ormap.Limits{})
		},
		Delta:    func(from string, d ormap.Delta) { r.add("delta " + from + " " + strings.Join(d.Keys(), ",")) },
		Sync:     func(p string, s crdtstore.Stream) { r.add("sync " + p); r.streams <- s },
		PeerUp:   func(p string) { r.add("up " + p) },
		PeerDown: func(p string) { r.add("down " + p) },
	}
}

// start opens and starts a transport named id, closed at the end of the
// test.
func start(t *testing.T, net *crdttest.Network, id string) (*crdttest.Transport, *recorder) {
	t.Helper()
	tr, r := net.Transport(id), newRecorder()
	if err := tr.Start(r.handlers()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	return tr, r
}

// frame encodes a delta setting key.
func frame(key string) []byte {
	m := ormap.New("writer")
	return ormap.EncodeDelta(m.Set(key, []byte("v"), ormap.Timestamp{}))
}

func waitLog(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("events %q", want), func() bool { return len(r.log()) >= len(want) })
	if got := r.log(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// Every receiver decodes each delta once, before delivery, and is handed
// the decoded delta; what does not decode is not delivered. The publisher
// gets nothing back.
func TestDeltasDecodedOnceBeforeDelivery(t *testing.T) {
	net := crdttest.NewNetwork()
	a, ra := start(t, net, "a")
	b, rb := start(t, net, "b")
	_, rc := start(t, net, "c")
	ctx := context.Background()
	for _, data := range [][]byte{frame("k1"), []byte("not a delta"), frame("k2")} {
		if err := a.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	waitLog(t, rb, "up a", "up c", "delta a k1", "delta a k2")
	waitLog(t, rc, "up a", "up b", "delta a k1", "delta a k2")
	for _, r := range []*recorder{rb, rc} {
		if n := r.decoded(); n != 3 {
			t.Fatalf("%d decodes for 3 deltas", n)
		}
	}
	// b's delta reaches a after anything a would have got from itself.
	if err := b.Publish(ctx, frame("from-b")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ra, "up b", "up c", "delta b from-b")
}

// Peers see each other join and leave once per change, in order.
func TestPeerEvents(t *testing.T) {
	net := crdttest.NewNetwork()
	_, ra := start(t, net, "a")
	b, rb := start(t, net, "b")
	net.Disconnect("a", "b")
	net.Disconnect("a", "b") // no change: no event
	net.Connect("a", "b")
	net.Connect("a", "b")
	waitLog(t, rb, "up a", "down a", "up a")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ra, "up b", "down b", "up b", "down b")
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A cut link carries no delta and no sync; deltas published meanwhile are
// lost, as on a real network.
func TestDisconnectCutsTraffic(t *testing.T) {
	net := crdttest.NewNetwork()
	a, _ := start(t, net, "a")
	_, rb := start(t, net, "b")
	ctx := context.Background()
	net.Disconnect("a", "b")
	if err := a.Publish(ctx, frame("lost")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenSync(ctx, "b"); err == nil {
		t.Fatal("OpenSync across a cut link succeeded")
	}
	net.Connect("a", "b")
	if err := a.Publish(ctx, frame("after")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, rb, "up a", "down a", "up a", "delta a after")
}

func TestOpenSyncIsAPipe(t *testing.T) {
	net := crdttest.NewNetwork()
	a, _ := start(t, net, "a")
	_, rb := start(t, net, "b")
	s, err := a.OpenSync(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	served := <-rb.streams
	if err := s.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	echo := make(chan error, 1)
	go func() { // the server's side: echo 5 bytes, then close
		buf := make([]byte, 5)
		_, err := io.ReadFull(served, buf)
		if err == nil {
			_, err = served.Write(buf)
		}
		echo <- errors.Join(err, served.Close())
	}()
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if err := <-echo; err != nil {
		t.Fatalf("server side: %v", err)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("write after Reset succeeded")
	}
	if got := rb.log(); !slices.Contains(got, "sync a") {
		t.Fatalf("b's events %q: no sync from a", got)
	}
}

func TestTransportIDInUse(t *testing.T) {
	net := crdttest.NewNetwork()
	tr, _ := start(t, net, "a")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a second open transport named a")
			}
		}()
		net.Transport("a")
	}()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	again := net.Transport("a") // free again once closed
	if err := again.Start(newRecorder().handlers()); err != nil {
		t.Fatal(err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if err := again.Start(newRecorder().handlers()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

// The ids a store sees are the transports' names, and stores on a network
// replicate.
func TestStoresReplicate(t *testing.T) {
	net := crdttest.NewNetwork()
	var ss []*crdtstore.Store
	for _, id := range []string{"a", "b"} {
		s, err := crdtstore.OpenTransport(net.Transport(id), crdtstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil && !errors.Is(err, crdtstore.ErrClosed) {
				t.Error(err)
			}
		})
		ss = append(ss, s)
	}
	if err := ss[0].SetString("k", "v"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "k on b", func() bool { v, ok := ss[1].GetString("k"); return ok && v == "v" })
}
