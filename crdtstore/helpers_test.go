package crdtstore_test

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/internal/netns"
)

func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }

// fastOptions are Options for tests: short timeouts, frequent anti-entropy.
func fastOptions() crdtstore.Options {
	return crdtstore.Options{SyncInterval: 200 * time.Millisecond, SyncTimeout: 5 * time.Second}
}

// openMem opens a store on a new transport of net named id, closed at the
// end of the test.
func openMem(t testing.TB, net *crdttest.Network, id string, opts crdtstore.Options) *crdtstore.Store {
	t.Helper()
	s, err := crdtstore.OpenTransport(net.Transport(id), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

// memStores opens count stores with fastOptions on one in-memory network,
// named s0, s1, ...
func memStores(t testing.TB, count int) (*crdttest.Network, []*crdtstore.Store) {
	t.Helper()
	net := crdttest.NewNetwork()
	ss := make([]*crdtstore.Store, count)
	for i := range ss {
		ss[i] = openMem(t, net, fmt.Sprintf("s%d", i), fastOptions())
	}
	return net, ss
}

// closeStore closes s; a test may have closed it already.
func closeStore(t testing.TB, s *crdtstore.Store) {
	t.Helper()
	if err := s.Close(); err != nil && !errors.Is(err, crdtstore.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

// converged reports whether every store has the same keys, values and
// causal context (the context covers deletes and siblings too).
func converged(ss []*crdtstore.Store) bool {
	want, c0 := ss[0].List(""), crdtstore.Context(ss[0])
	for _, s := range ss[1:] {
		got := s.List("")
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i].Key != want[i].Key || string(got[i].Value) != string(want[i].Value) {
				return false
			}
		}
		if !crdtstore.Context(s).Equal(c0) {
			return false
		}
	}
	return true
}

func has(s *crdtstore.Store, key string) bool {
	_, ok := s.Get(key)
	return ok
}

func mustGet(t testing.TB, s *crdtstore.Store, key, want string) {
	t.Helper()
	got, ok := s.GetString(key)
	if !ok || got != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, ok, want)
	}
}

func mustSet(t testing.TB, s *crdtstore.Store, key, value string) {
	t.Helper()
	if err := s.SetString(key, value); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustDelete(t testing.TB, s *crdtstore.Store, key string) {
	t.Helper()
	if err := s.Delete(key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}
