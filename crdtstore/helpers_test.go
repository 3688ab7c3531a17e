package crdtstore

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/netns"
)

func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }

// fastOptions are Options for tests: short timeouts, frequent anti-entropy.
func fastOptions() Options {
	return Options{SyncInterval: 200 * time.Millisecond, SyncTimeout: 5 * time.Second}
}

// memStores opens count stores on one MemNetwork, named s0, s1, ...
func memStores(t testing.TB, count int) (*MemNetwork, []*Store) {
	t.Helper()
	net := NewMemNetwork()
	ss := make([]*Store, count)
	for i := range ss {
		s, err := OpenTransport(net.Transport(fmt.Sprintf("s%d", i)), fastOptions(), ormap.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		ss[i] = s
	}
	return net, ss
}

// eventually polls cond every 5 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// converged reports whether every store has the same keys and values.
func converged(ss []*Store) bool {
	want := ss[0].List("")
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
	}
	for _, s := range ss {
		s.mu.Lock()
		c := s.m.Context()
		s.mu.Unlock()
		ss[0].mu.Lock()
		c0 := ss[0].m.Context()
		ss[0].mu.Unlock()
		if !c.Equal(c0) {
			return false
		}
	}
	return true
}

func mustGet(t testing.TB, s *Store, key, want string) {
	t.Helper()
	got, ok := s.GetString(key)
	if !ok || got != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, ok, want)
	}
}
