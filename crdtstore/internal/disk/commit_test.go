package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func openT(t testing.TB, dir string, o Options) *DB {
	t.Helper()
	db, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func scanAll(t testing.TB, db *DB) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := db.Scan(func(kind byte, name string, data []byte) error {
		got[string(kind)+name] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Many goroutines enqueue under a shared mutex, writing the same keys with
// increasing values, and wait outside it. After Close and reopen, every key
// holds the value enqueued last for it: no batch was overwritten by an
// earlier one.
func TestOrderUnderConcurrency(t *testing.T) {
	for _, dur := range []Durability{Crash, Power} {
		t.Run(dur.String(), func(t *testing.T) {
			const goros, keys = 16, 64
			iters := 400
			if dur == Power {
				iters = 60 // one fsync per round
			}
			dir := t.TempDir()
			db := openT(t, dir, Options{Durability: dur})
			var mu sync.Mutex
			var counter uint64
			want := map[string]string{}
			var wg sync.WaitGroup
			errs := make(chan error, goros)
			for g := range goros {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(g), 1))
					for range iters {
						b := db.NewBatch()
						mu.Lock()
						for range 1 + r.IntN(3) {
							counter++
							k := fmt.Sprintf("key%d", r.IntN(keys))
							v := binary.BigEndian.AppendUint64(nil, counter)
							b.Put('k', k, v)
							want["k"+k] = string(v)
						}
						if r.IntN(10) == 0 {
							k := fmt.Sprintf("key%d", r.IntN(keys))
							b.Delete('k', k)
							delete(want, "k"+k)
						}
						tk := db.Enqueue(b)
						mu.Unlock()
						if err := tk.Wait(); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openT(t, dir, Options{Durability: dur})
			defer db.Close()
			got := scanAll(t, db)
			if len(got) != len(want) {
				t.Errorf("%d keys after reopen, want %d", len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %x after reopen, want %x (the last enqueued)", k, got[k], v)
				}
			}
		})
	}
}

// Close commits what was enqueued before it, refuses what comes after, is
// safe twice, and reads after it return ErrClosed.
func TestCloseCommitsQueuedThenRefuses(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	var tickets []*Ticket
	for i := range 1000 {
		b := db.NewBatch()
		b.Put('k', fmt.Sprint(i), []byte("v"))
		tickets = append(tickets, db.Enqueue(b))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for i, tk := range tickets {
		if err := tk.Wait(); err != nil {
			t.Fatalf("ticket %d: %v", i, err)
		}
	}
	b := db.NewBatch()
	b.Put('k', "late", nil)
	if err := db.Enqueue(b).Wait(); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if err := db.Scan(func(byte, string, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Scan after Close: %v", err)
	}
	if _, _, err := db.Get('k', "1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := db.Compact(); !errors.Is(err, ErrClosed) {
		t.Errorf("Compact after Close: %v", err)
	}
	db = openT(t, dir, Options{})
	defer db.Close()
	if n := len(scanAll(t, db)); n != 1000 {
		t.Errorf("%d records after reopen, want 1000", n)
	}
}

func TestGetScanCompact(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	defer db.Close()
	b := db.NewBatch()
	b.Put('r', "b", []byte("2"))
	b.Put('k', "z", []byte("1"))
	b.Put('m', "id", []byte("me"))
	b.Put('k', "a", []byte("0"))
	if b.Len() != 4 {
		t.Errorf("Len %d", b.Len())
	}
	if err := db.Enqueue(b).Wait(); err != nil {
		t.Fatal(err)
	}
	v, ok, err := db.Get('m', "id")
	if err != nil || !ok || string(v) != "me" {
		t.Errorf("Get m/id = %q %v %v", v, ok, err)
	}
	if _, ok, err := db.Get('m', "nope"); ok || err != nil {
		t.Errorf("Get missing = %v %v", ok, err)
	}
	var order []string
	db.Scan(func(kind byte, name string, data []byte) error {
		order = append(order, string(kind)+name)
		return nil
	})
	if fmt.Sprint(order) != "[ka kz mid rb]" {
		t.Errorf("scan order %v (the format record must not show)", order)
	}
	stop := errors.New("stop")
	if err := db.Scan(func(byte, string, []byte) error { return stop }); err != stop {
		t.Errorf("Scan returned %v, want fn's error", err)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if db.DiskSize() <= 0 {
		t.Errorf("DiskSize %d", db.DiskSize())
	}
}

func TestReservedKindPanics(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	defer db.Close()
	defer func() {
		if recover() == nil {
			t.Error("Put of kind 0 did not panic")
		}
	}()
	db.NewBatch().Put(0, "format", nil)
}

// Bursts of batches enqueued without waiting (so rounds merge many of them)
// writing a few keys: after waiting for the last ticket of a burst, every key
// reads as the value enqueued last, and so it does after reopen.
func TestOrderOfQueuedBursts(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	r := rand.New(rand.NewPCG(7, 7))
	want := map[string]string{}
	for burst := range 50 {
		var last *Ticket
		for i := range 1 + r.IntN(300) {
			b := db.NewBatch()
			k := fmt.Sprint(r.IntN(4))
			v := fmt.Sprintf("%d/%d", burst, i)
			b.Put('k', k, []byte(v))
			want[k] = v
			last = db.Enqueue(b)
		}
		if err := last.Wait(); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			got, _, err := db.Get('k', k)
			if err != nil || string(got) != v {
				t.Fatalf("burst %d: key %s = %q (%v), want %q (the last enqueued)", burst, k, got, err, v)
			}
		}
	}
	db.Close()
	db = openT(t, dir, Options{})
	defer db.Close()
	got := scanAll(t, db)
	for k, v := range want {
		if got["k"+k] != v {
			t.Errorf("after reopen key %s = %q, want %q", k, got["k"+k], v)
		}
	}
}

// Rounds larger than maxMerge are split into several pebble commits, and an
// empty batch commits; all in order.
func TestLargeRoundsAndEmptyBatch(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	if err := db.Enqueue(db.NewBatch()).Wait(); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	big := make([]byte, 100<<10)
	var last *Ticket
	for i := range 120 { // 12 MB, enqueued without waiting
		b := db.NewBatch()
		big[0] = byte(i)
		b.Put('k', fmt.Sprint(i%10), big)
		last = db.Enqueue(b)
	}
	if err := last.Wait(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openT(t, dir, Options{})
	defer db.Close()
	for k := range 10 {
		v, ok, err := db.Get('k', fmt.Sprint(k))
		if err != nil || !ok || len(v) != len(big) || v[0] != byte(110+k) {
			t.Errorf("key %d: ok=%v err=%v first byte %d, want %d", k, ok, err, v[0], 110+k)
		}
	}
}

// Close racing with writers and readers: every ticket returns nil or
// ErrClosed, reads return data or ErrClosed, nothing panics or leaks.
func TestCloseRacingWritersAndReaders(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b := db.NewBatch()
				b.Put('k', fmt.Sprint(g, i), []byte("v"))
				if err := db.Enqueue(b).Wait(); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := db.Scan(func(byte, string, []byte) error { return nil })
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Error(err)
				return
			}
			db.DiskSize()
		}
	})
	time.Sleep(50 * time.Millisecond)
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Go(func() {
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	cwg.Wait()
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
}

// 16 writers in a loop (commit, wait, commit again), Power mode: the rounds
// hold nearly all 16 batches, so the writers share one fsync per round.
// Without the linger they split into two cohorts taking turns (8 batches
// per round on average: each writer waited for two fsyncs).
func TestPowerWritersShareRounds(t *testing.T) {
	const writers, each = 16, 40
	db := openT(t, t.TempDir(), Options{Durability: Power})
	defer db.Close()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				b := db.NewBatch()
				b.Put('k', fmt.Sprintf("w%02d/%03d", w, i), []byte("v"))
				if err := db.Enqueue(b).Wait(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := db.Stats()
	if st.Batches != writers*each {
		t.Fatalf("%d batches committed, want %d", st.Batches, writers*each)
	}
	per := float64(st.Batches) / float64(st.Rounds)
	t.Logf("%d rounds, %.1f batches per round", st.Rounds, per)
	if per < 12 {
		t.Fatalf("%.1f batches per round (%d rounds): the writers did not share fsyncs", per, st.Rounds)
	}
}

func TestLingerFor(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		waiting, expect int32
		last, lingered  time.Duration
		want            time.Duration
	}{
		{1, 1, ms, 0, 0},                // everyone back: go
		{16, 16, ms, 0, 0},              //
		{17, 16, ms, 0, 0},              // more than expected
		{15, 16, ms, 0, ms / 2},         // one missing: half the last commit
		{15, 16, ms, ms / 4, ms / 4},    // what is left of it
		{15, 16, ms, ms, 0},             // spent
		{15, 16, 10 * ms, 0, maxLinger}, // capped
		{0, 16, 0, 0, 0},                // nothing measured yet (or a failed DB)
	} {
		if got := lingerFor(c.waiting, c.expect, c.last, c.lingered); got != c.want {
			t.Errorf("lingerFor(%d, %d, %v, %v) = %v, want %v", c.waiting, c.expect, c.last, c.lingered, got, c.want)
		}
	}
}
