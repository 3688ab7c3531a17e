package crdtstore_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
)

// next returns the next change of w, failing if none is ready.
func next(t *testing.T, w *crdtstore.Watcher) crdtstore.Change {
	t.Helper()
	select {
	case c := <-w.Updates():
		return c
	default:
		t.Fatal("no change ready")
		return crdtstore.Change{}
	}
}

func noChange(t *testing.T, w *crdtstore.Watcher) {
	t.Helper()
	select {
	case c := <-w.Updates():
		t.Fatalf("unexpected change %+v", c)
	default:
	}
}

// visible reports whether key shows in every read of s.
func visible(t *testing.T, s *crdtstore.Store, key string) bool {
	t.Helper()
	_, get := s.Get(key)
	_, entry := s.GetEntry(key)
	keys := slices.Contains(s.Keys(""), key)
	list := slices.ContainsFunc(s.List(""), func(kv crdtstore.KeyValue) bool { return kv.Key == key })
	scan := false
	for k := range s.Scan("") {
		scan = scan || k == key
	}
	if get != entry || get != keys || get != list || get != scan || get != (len(s.GetAll(key)) > 0) {
		t.Fatalf("%q: Get %v, GetEntry %v, Keys %v, List %v, Scan %v disagree", key, get, entry, keys, list, scan)
	}
	return get
}

// TestSetTTLExpiresEverywhere: the value disappears on every replica at its
// write time plus the TTL, and watchers see an expiry, not a delete.
func TestSetTTLExpiresEverywhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := memStores(t, 3)
		ws := []*crdtstore.Watcher{ss[0].Watch(""), ss[2].Watch("")}
		start := time.Now()
		if err := ss[0].SetTTL("session", []byte("token"), time.Minute); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for i, s := range ss {
			e, ok := s.GetEntry("session")
			if !ok || string(e.Value) != "token" || !e.Expires.Equal(e.Time.Add(time.Minute)) || !e.Time.Equal(start) {
				t.Fatalf("store %d: %+v, %v", i, e, ok)
			}
		}
		for _, w := range ws {
			if c := next(t, w); c.Key != "session" || c.Deleted || !c.Expires.Equal(start.Add(time.Minute)) {
				t.Fatalf("set: %+v", c)
			}
		}
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		for _, s := range ss {
			if !visible(t, s, "session") || s.Len() != 1 {
				t.Fatal("expired early")
			}
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		for _, s := range ss {
			if visible(t, s, "session") || s.Len() != 0 {
				t.Fatal("still there after its TTL")
			}
		}
		for _, w := range ws {
			if c := next(t, w); c.Key != "session" || !c.Deleted || c.Origin != crdtstore.OriginExpired {
				t.Fatalf("expiry: %+v", c)
			}
			noChange(t, w)
			w.Stop()
		}
	})
}

// TestSetClearsTTL: a later plain Set keeps the key past the old expiry; a
// later SetTTL moves it.
func TestSetClearsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := memStores(t, 2)
		if err := ss[0].SetTTL("a", []byte("1"), time.Second); err != nil {
			t.Fatal(err)
		}
		if err := ss[0].SetTTL("b", []byte("1"), time.Second); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mustSet(t, ss[1], "a", "2")
		if err := ss[1].SetTTL("b", []byte("2"), time.Hour); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for _, s := range ss {
			mustGet(t, s, "a", "2")
			mustGet(t, s, "b", "2")
			if e, _ := s.GetEntry("a"); !e.Expires.IsZero() {
				t.Fatalf("a expires at %v", e.Expires)
			}
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		for _, s := range ss {
			if has(s, "b") || !has(s, "a") {
				t.Fatal("the second TTL did not apply")
			}
		}
	})
}

func TestSetTTLRefusesNonPositive(t *testing.T) {
	_, ss := memStores(t, 1)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := ss[0].SetTTL("k", []byte("v"), ttl); !errors.Is(err, crdtstore.ErrTTL) {
			t.Fatalf("ttl %v: %v", ttl, err)
		}
	}
	if err := ss[0].SetTTL("", []byte("v"), time.Second); !errors.Is(err, crdtstore.ErrKey) {
		t.Fatalf("empty key: %v", err)
	}
	if ss[0].Len() != 0 {
		t.Fatal("a refused write changed the store")
	}
}

// TestReadsSkipExpiredBeforeTheTimer: a value whose expiry passed is
// invisible to every read even though the timer has not removed it; the
// timer's next firing does, and reports it.
func TestReadsSkipExpiredBeforeTheTimer(t *testing.T) {
	// In a bubble: the expiry timer's goroutine is parked (synctest.Wait)
	// before the expired value goes in behind its back, so it cannot find
	// the value on its first look.
	synctest.Test(t, func(t *testing.T) {
		_, ss := memStores(t, 1)
		s := ss[0]
		w := s.Watch("")
		defer w.Stop()
		synctest.Wait()
		crdtstore.SetUnarmed(s, "old", []byte("v"), time.Now().Add(-time.Hour), time.Minute)
		mustSet(t, s, "plain", "p")
		next(t, w) // plain
		if visible(t, s, "old") || s.Len() != 1 || s.Stats().Keys != 1 {
			t.Fatalf("an expired value is visible (Len %d)", s.Len())
		}
		if crdtstore.Stored(s) != 2 {
			t.Fatal("the test needs the expired value still stored")
		}
		if err := s.SetTTL("soon", []byte("v"), time.Millisecond); err != nil { // wakes the timer
			t.Fatal(err)
		}
		next(t, w) // soon
		deadline := time.After(5 * time.Second)
		for got := map[string]bool{}; len(got) < 2; {
			select {
			case c := <-w.Updates():
				if !c.Deleted || c.Origin != crdtstore.OriginExpired {
					t.Fatalf("got %+v", c)
				}
				got[c.Key] = true
			case <-deadline:
				t.Fatal("the timer did not expire the values")
			}
		}
		if crdtstore.Stored(s) != 1 {
			t.Fatal("expired values still stored")
		}
	})
}

// TestTTLSiblings: concurrent values of a key expire each on its own.
func TestTTLSiblings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, ss := memStores(t, 2)
		net.Disconnect("s0", "s1")
		if err := ss[0].SetTTL("k", []byte("short"), time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // later: the visible sibling
		if err := ss[1].SetTTL("k", []byte("shorter"), 30*time.Second); err != nil {
			t.Fatal(err)
		}
		net.Connect("s0", "s1")
		time.Sleep(time.Second) // an anti-entropy round
		synctest.Wait()
		w := ss[0].Watch("k")
		defer w.Stop()
		for _, s := range ss {
			if e, _ := s.GetEntry("k"); string(e.Value) != "shorter" || e.Siblings != 2 || e.Writer != ss[1].ReplicaID() {
				t.Fatalf("before: %+v", e)
			}
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if c := next(t, w); c.Deleted || c.Origin != crdtstore.OriginExpired || string(c.Value) != "short" || c.Siblings != 1 {
			t.Fatalf("the visible sibling expired: %+v", c)
		}
		for _, s := range ss {
			if e, _ := s.GetEntry("k"); string(e.Value) != "short" || e.Siblings != 1 || e.Writer != ss[0].ReplicaID() {
				t.Fatalf("after: %+v", e)
			}
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if c := next(t, w); !c.Deleted || c.Origin != crdtstore.OriginExpired {
			t.Fatalf("the last sibling expired: %+v", c)
		}
	})
}

// TestExpiredNotBackFromALateJoiner: after an expiry, neither a replica that
// was away nor a new one brings the value back.
func TestExpiredNotBackFromALateJoiner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, ss := memStores(t, 2)
		if err := ss[0].SetTTL("k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		mustSet(t, ss[0], "plain", "p")
		synctest.Wait()
		net.Disconnect("s0", "s1")
		time.Sleep(2 * time.Minute)
		mustSet(t, ss[1], "later", "l")
		net.Connect("s0", "s1")
		late := openMem(t, net, "s2", fastOptions())
		time.Sleep(time.Second)
		synctest.Wait()
		all := append(ss, late)
		if !converged(all) {
			t.Fatal("not converged")
		}
		for _, s := range all {
			if has(s, "k") || !has(s, "later") || s.Len() != 2 {
				t.Fatalf("%v", s.Keys(""))
			}
		}
	})
}

// TestGetEntry: the metadata of a value.
func TestGetEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, ss := memStores(t, 2)
		before := time.Now()
		mustSet(t, ss[0], "k", "v")
		synctest.Wait()
		for _, s := range ss {
			e, ok := s.GetEntry("k")
			if !ok || e.Key != "k" || string(e.Value) != "v" || !e.Time.Equal(before) || e.HLC.Wall != before.UnixNano() ||
				e.Writer != ss[0].ReplicaID() || e.Siblings != 1 || !e.Expires.IsZero() || e.Peer != "s0" {
				t.Fatalf("%+v", e)
			}
		}
		if ss[0].ReplicaID() == ss[1].ReplicaID() || len(ss[0].ReplicaID()) != 32 {
			t.Fatalf("replica ids %q %q", ss[0].ReplicaID(), ss[1].ReplicaID())
		}
		net.Disconnect("s0", "s1")
		mustSet(t, ss[0], "k", "a")
		mustSet(t, ss[1], "k", "b")
		net.Connect("s0", "s1")
		time.Sleep(time.Second)
		synctest.Wait()
		e0, _ := ss[0].GetEntry("k")
		e1, _ := ss[1].GetEntry("k")
		if e0.Siblings != 2 || e1.Siblings != 2 || e0.Writer != e1.Writer || string(e0.Value) != string(e1.Value) {
			t.Fatalf("siblings: %+v vs %+v", e0, e1)
		}
		// The winner's writer is known by its peer id on both sides: one
		// wrote it, the other had a delta of it before (the first Set).
		if want := map[string]string{ss[0].ReplicaID(): "s0", ss[1].ReplicaID(): "s1"}[e0.Writer]; e0.Peer != want || e1.Peer != want {
			t.Fatalf("writer peer %q and %q, want %q", e0.Peer, e1.Peer, want)
		}
		if _, ok := ss[0].GetEntry("missing"); ok {
			t.Fatal("an entry for a missing key")
		}
	})
}

// TestScan: in key order over more keys than one chunk, stopping early, with
// a loop body that writes to the store, and without keys deleted ahead.
func TestScan(t *testing.T) {
	_, ss := memStores(t, 1)
	s := ss[0]
	const n = 1000
	for i := range n {
		mustSet(t, s, fmt.Sprintf("p/%04d", i), fmt.Sprint(i))
	}
	mustSet(t, s, "q/x", "x")
	i := 0
	for k, v := range s.Scan("p/") {
		if want := fmt.Sprintf("p/%04d", i); k != want || string(v) != fmt.Sprint(i) {
			t.Fatalf("key %d: %s = %s", i, k, v)
		}
		if i == 10 {
			mustDelete(t, s, "p/0900")         // ahead: not seen
			mustSet(t, s, "p/0005", "changed") // behind: not seen again
		}
		i++
		if i == 900 {
			i++
		}
	}
	if i != n {
		t.Fatalf("%d keys", i)
	}
	count := 0
	for k, e := range s.ScanEntries("p/") {
		if e.Key != k || e.Writer != s.ReplicaID() || e.Siblings != 1 {
			t.Fatalf("%+v", e)
		}
		if count++; count == 300 {
			break
		}
	}
	for range s.Scan("none/") {
		t.Fatal("a key under an empty prefix")
	}
}

// TestWatchSnapshotDone: the snapshot ends with one OriginSnapshotDone
// change, even an empty one; a watch without snapshot has none.
func TestWatchSnapshotDone(t *testing.T) {
	_, ss := memStores(t, 1)
	s := ss[0]
	empty := s.Watch("a/", crdtstore.WithSnapshot())
	defer empty.Stop()
	if c := next(t, empty); c.Origin != crdtstore.OriginSnapshotDone || c.Key != "" || c.Deleted || c.Value != nil {
		t.Fatalf("empty snapshot: %+v", c)
	}
	mustSet(t, s, "a/1", "1")
	mustSet(t, s, "a/2", "2")
	w := s.Watch("a/", crdtstore.WithSnapshot())
	defer w.Stop()
	plain := s.Watch("a/")
	defer plain.Stop()
	for _, k := range []string{"a/1", "a/2"} {
		if c := next(t, w); c.Key != k || c.Origin != crdtstore.OriginSnapshot || c.Writer != s.ReplicaID() {
			t.Fatalf("snapshot: %+v", c)
		}
	}
	if c := next(t, w); c.Origin != crdtstore.OriginSnapshotDone {
		t.Fatalf("no end mark: %+v", c)
	}
	noChange(t, w)
	mustSet(t, s, "a/3", "3")
	for _, x := range []*crdtstore.Watcher{w, plain} {
		if c := next(t, x); c.Key != "a/3" || c.Origin != crdtstore.OriginLocal {
			t.Fatalf("change: %+v", c)
		}
	}
	if crdtstore.OriginSnapshotDone.String() != "snapshot-done" || crdtstore.OriginExpired.String() != "expired" {
		t.Fatal("origin names")
	}
}

// TestExpiryTimerIdle: the expiry timer is armed only while an expiring
// value is stored: no polling.
func TestExpiryTimerIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := crdttest.NewNetwork()
		s := openMem(t, net, "s0", crdtstore.Options{SyncInterval: -1})
		mustSet(t, s, "k", "v")
		synctest.Wait()
		if crdtstore.Armed(s) {
			t.Fatal("armed without an expiring value")
		}
		if err := s.SetTTL("t", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !crdtstore.Armed(s) {
			t.Fatal("not armed for an expiring value")
		}
		mustDelete(t, s, "t")
		time.Sleep(2 * time.Hour) // the stale firing finds nothing, then rests
		synctest.Wait()
		if crdtstore.Armed(s) || !has(s, "k") || s.Len() != 1 {
			t.Fatal("armed with nothing to expire, or lost a key")
		}
	})
}

// A store learns a writer's peer id from a sync with it too, not only from
// its deltas.
func TestEntryPeerFromSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, ss := memStores(t, 2)
		net.Disconnect("s0", "s1")
		mustSet(t, ss[0], "k", "v") // its delta reaches nobody
		synctest.Wait()
		net.Connect("s0", "s1")
		time.Sleep(time.Second)
		synctest.Wait()
		e, ok := ss[1].GetEntry("k")
		if !ok || e.Peer != "s0" {
			t.Fatalf("entry %+v, %v: want the writer's peer s0", e, ok)
		}
	})
}
