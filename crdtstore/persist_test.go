package crdtstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// openDir opens a store named id on net, kept in dir; closed at the end of
// the test unless the test closes it.
func openDir(t testing.TB, net *crdttest.Network, id, dir string, mod ...func(*crdtstore.Options)) *crdtstore.Store {
	t.Helper()
	o := fastOptions()
	o.Dir = dir
	for _, f := range mod {
		f(&o)
	}
	return openMem(t, net, id, o)
}

// dump returns every key's value.
func dump(s *crdtstore.Store) map[string]string {
	out := map[string]string{}
	for _, kv := range s.List("") {
		out[kv.Key] = string(kv.Value)
	}
	return out
}

// A store with Dir comes back after a restart with its keys, its deletes,
// its replica id and its expiring values, before any peer is reachable,
// and its next writes reach a peer that knew it before.
func TestPersistRestart(t *testing.T) {
	dir := t.TempDir()
	net := crdttest.NewNetwork()
	a := openDir(t, net, "a", dir)
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	for i := range 2000 {
		k := fmt.Sprintf("k%04d", rng.IntN(500))
		if rng.IntN(5) == 0 {
			mustDelete(t, a, k)
			delete(want, k)
			continue
		}
		v := fmt.Sprint(i)
		mustSet(t, a, k, v)
		want[k] = v
	}
	if err := a.SetTTL("short", []byte("x"), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	rid := a.ReplicaID()
	closeStore(t, a)

	a = openDir(t, net, "a", dir)
	got := dump(a)
	delete(got, "short")
	if !maps.Equal(got, want) {
		t.Fatalf("after restart: %d keys, want %d (first differences: %v)", len(got), len(want), firstDiff(got, want))
	}
	if a.ReplicaID() != rid {
		t.Errorf("replica id %s after restart, want %s (resumed)", a.ReplicaID(), rid)
	}
	testutil.Eventually(t, 5*time.Second, "the TTL value expiring after the restart", func() bool { return !has(a, "short") })

	// A peer that joins now gets everything, and later writes of a.
	b := openMem(t, net, "b", fastOptions())
	mustSet(t, a, "after", "restart")
	testutil.Eventually(t, 10*time.Second, "b converging with a", func() bool { return converged([]*crdtstore.Store{a, b}) })
	if got := dump(b); len(got) != len(want)+1 || got["after"] != "restart" {
		t.Errorf("b has %d keys, want %d", len(got), len(want)+1)
	}
}

func firstDiff(got, want map[string]string) []string {
	var out []string
	for k, v := range want {
		if got[k] != v {
			out = append(out, fmt.Sprintf("%s: %q want %q", k, got[k], v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+": unexpected")
		}
	}
	if len(out) > 5 {
		out = out[:5]
	}
	return out
}

// What a store received from peers (deltas, a sync reply) is on its disk
// too; a value deleted by a peer stays deleted after the restart.
func TestPersistRemoteChanges(t *testing.T) {
	dir := t.TempDir()
	net := crdttest.NewNetwork()
	b := openMem(t, net, "b", fastOptions())
	mustSet(t, b, "early", "1") // reaches a by sync
	mustSet(t, b, "gone", "x")
	a := openDir(t, net, "a", dir)
	testutil.Eventually(t, 5*time.Second, "a has early", func() bool { return has(a, "early") && has(a, "gone") })
	mustSet(t, b, "late", "2") // by delta
	mustDelete(t, b, "gone")
	testutil.Eventually(t, 5*time.Second, "a has late, not gone", func() bool { return has(a, "late") && !has(a, "gone") })
	closeStore(t, a)
	closeStore(t, b)

	a = openDir(t, crdttest.NewNetwork(), "a", dir) // alone
	if got, want := dump(a), map[string]string{"early": "1", "late": "2"}; !maps.Equal(got, want) {
		t.Errorf("after restart alone: %v, want %v", got, want)
	}
}

// A directory is one store's: a second Open of it fails with ErrDisk while
// the first is open, and succeeds after it closed.
func TestPersistDirLocked(t *testing.T) {
	dir := t.TempDir()
	net := crdttest.NewNetwork()
	a := openDir(t, net, "a", dir)
	o := fastOptions()
	o.Dir = dir
	if s, err := crdtstore.OpenTransport(net.Transport("a2"), o); !errors.Is(err, crdtstore.ErrDisk) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("second Open of a directory in use: %v, want ErrDisk", err)
	}
	closeStore(t, a)
	openDir(t, net, "a", dir)
}

// Reopened under another peer identity, the store keeps the data and
// writes as a new replica (a warning says why); both replicas' writes
// reach a peer.
func TestPersistNewIdentity(t *testing.T) {
	dir := t.TempDir()
	net := crdttest.NewNetwork()
	a := openDir(t, net, "a", dir)
	mustSet(t, a, "k", "old")
	rid := a.ReplicaID()
	closeStore(t, a)

	var logs testutil.LogBuffer
	a2 := openDir(t, net, "a-new-identity", dir, func(o *crdtstore.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	mustGet(t, a2, "k", "old")
	if a2.ReplicaID() == rid {
		t.Error("the replica id of another identity was resumed")
	}
	if !strings.Contains(logs.String(), "written under another peer id") {
		t.Errorf("no warning; logs: %s", logs.String())
	}
	mustSet(t, a2, "k2", "new")
	b := openMem(t, net, "b", fastOptions())
	testutil.Eventually(t, 10*time.Second, "b gets both", func() bool { return has(b, "k") && has(b, "k2") })
}

// Fsync mode and the default keep the same data; Fsync without Dir is a
// configuration error.
func TestPersistFsync(t *testing.T) {
	if _, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("x"), crdtstore.Options{Fsync: true}); !errors.Is(err, crdtstore.ErrConfig) {
		t.Errorf("Fsync without Dir: %v, want ErrConfig", err)
	}
	dir := t.TempDir()
	net := crdttest.NewNetwork()
	a := openDir(t, net, "a", dir, func(o *crdtstore.Options) { o.Fsync = true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 16)
	for w := range 16 {
		go func() {
			for i := range 50 {
				if err := a.Set(fmt.Sprintf("w%d/%d", w, i), bytes.Repeat([]byte{'v'}, 100)); err != nil {
					errs <- err
					return
				}
			}
			errs <- ctx.Err()
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, a)
	a = openDir(t, net, "a", dir, func(o *crdtstore.Options) { o.Fsync = true })
	if n := a.Len(); n != 16*50 {
		t.Errorf("%d keys after restart, want %d", n, 16*50)
	}
}

// After heavy overwrites and deletes the store's tables come back under
// 2× its live data by themselves (automatic compaction): 2,048 keys of
// 16 KiB, each written 4 times, then half deleted. The WAL files (the
// live one and up to 3 kept for reuse, ≤ ~4 × 4 MiB whatever the store's
// size) are left out: they are a fixed cost, not garbage.
func TestPersistCompactsAfterChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes 128 MiB")
	}
	dir := t.TempDir()
	s := openDir(t, crdttest.NewNetwork(), "a", dir)
	const keys = 2048
	rng := rand.New(rand.NewPCG(3, 4))
	v := make([]byte, 16<<10)
	for range 4 {
		for i := range keys {
			for j := range v {
				v[j] = byte(rng.Uint32()) // incompressible
			}
			if err := s.Set(fmt.Sprintf("key/%05d", i), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < keys; i += 2 {
		if err := s.Delete(fmt.Sprintf("key/%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	live := int64(s.Stats().Bytes)
	var tables, wal int64
	testutil.Eventually(t, 2*time.Minute, "the tables under 2× the live data", func() bool {
		tables, wal = dirBytes(t, dir)
		return tables <= 2*live
	})
	t.Logf("live %d B, tables %d B (%.2f×), WAL %d B", live, tables, float64(tables)/float64(live), wal)
}

// dirBytes sums the sizes of the files in dir (a pebble directory is
// flat): the WAL files (*.log) apart.
func dirBytes(t *testing.T, dir string) (other, wal int64) {
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		fi, err := e.Info()
		switch {
		case err != nil || fi.IsDir():
		case strings.HasSuffix(e.Name(), ".log"):
			wal += fi.Size()
		default:
			other += fi.Size()
		}
	}
	return other, wal
}
