package disk

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// Keys overwritten 4 times, then half deleted, with the live size
// reported: the compactor brings the tables back under 2× the live data
// each time they pass it, without a manual Compact.
func TestAutoCompaction(t *testing.T) {
	defer func(m int64) { autoCompactMin = m }(autoCompactMin)
	autoCompactMin = 1 << 20
	const keys, size = 8000, 1000
	live := func(n int) int64 { return int64(n * (1 + 8 + size)) }
	db := openT(t, t.TempDir(), Options{})
	defer db.Close()
	db.SetLive(live(keys)) // as it will be after the first pass
	rnd := rand.NewChaCha8([32]byte{2})
	val := make([]byte, size)
	for range 5 {
		for i := 0; i < keys; i += 100 {
			b := db.NewBatch()
			for k := i; k < i+100; k++ {
				rnd.Read(val) // incompressible
				b.Put('k', fmt.Sprintf("key%05d", k), val)
			}
			if err := db.Enqueue(b).Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	tables, wal := db.fileSizes()
	t.Logf("sstables %d + WAL %d, live %d, %+v", tables, wal, live(keys), db.Stats())
	// 40 MB written over 8 MB live: at least one compaction brought it down.
	testutil.Eventually(t, time.Minute, "a compaction", func() bool { return db.Stats().AutoCompactions >= 1 })
	// Garbage committed after the last check (< checkEvery) may stay.
	testutil.Eventually(t, time.Minute, "sstables ≤ 2 × live + one check interval", func() bool {
		return sstSize(db) <= 2*live(keys)+checkEvery
	})
	b := db.NewBatch()
	for k := 0; k < keys; k += 2 {
		b.Delete('k', fmt.Sprintf("key%05d", k))
	}
	if err := db.Enqueue(b).Wait(); err != nil {
		t.Fatal(err)
	}
	runs := db.Stats().AutoCompactions
	db.SetLive(live(keys / 2)) // halved: a check at once
	// Both: the tables of the deleted half alone may already be about 2×
	// the live half, before the compaction has run.
	testutil.Eventually(t, time.Minute, "a compaction after the deletes, and sstables ≤ 2× live", func() bool {
		return db.Stats().AutoCompactions > runs && sstSize(db) <= 2*live(keys/2)
	})
	if st := db.Stats(); st.AutoCompactions <= runs || st.BackgroundErrors != 0 {
		t.Fatalf("stats %+v: want a compaction after the deletes (had %d), no error", st, runs)
	}
	if n := len(scanAll(t, db)); n != keys/2 {
		t.Fatalf("%d records after the deletes, want %d", n, keys/2)
	}
}

// Without SetLive nothing is compacted automatically.
func TestNoAutoCompactionWithoutLive(t *testing.T) {
	defer func(m int64) { autoCompactMin = m }(autoCompactMin)
	autoCompactMin = 1
	db := openT(t, t.TempDir(), Options{})
	defer db.Close()
	for i := range 20 {
		b := db.NewBatch()
		b.Put('k', "same", make([]byte, 1<<20))
		if err := db.Enqueue(b).Wait(); err != nil {
			t.Fatal(i, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().AutoCompactions; n != 0 {
		t.Fatalf("%d automatic compactions without SetLive", n)
	}
}

// Close while a compaction may be running returns promptly and leaks no
// goroutine (goleak in TestMain).
func TestCloseStopsCompactor(t *testing.T) {
	defer func(m int64) { autoCompactMin = m }(autoCompactMin)
	autoCompactMin = 1
	db := openT(t, t.TempDir(), Options{})
	b := db.NewBatch()
	b.Put('k', "a", make([]byte, 1<<20))
	if err := db.Enqueue(b).Wait(); err != nil {
		t.Fatal(err)
	}
	db.SetLive(1) // tables ≫ 2 × 1: a compaction starts
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db.SetLive(2) // after Close: harmless
}

func TestNeedCompaction(t *testing.T) {
	defer func(m int64) { autoCompactMin = m }(autoCompactMin)
	autoCompactMin = 100
	for _, c := range []struct {
		tables, live int64
		ratio        float64
		want         bool
	}{
		{99, 1, 1, false},    // under the floor
		{200, 100, 1, false}, // 2×: not past
		{201, 100, 1, true},  //
		{299, 100, 2, false}, // records twice the live bytes: 1.5 × 2 = 3×
		{301, 100, 2, true},  //
		{1000, 0, 1, true},   // everything deleted
	} {
		if got := needCompaction(c.tables, c.live, c.ratio); got != c.want {
			t.Errorf("needCompaction(%d, %d, %v) = %v, want %v", c.tables, c.live, c.ratio, got, c.want)
		}
	}
}

// sstSize is the bytes of the live sstables (the WAL, a few MiB, is left
// out: in this small test it is as large as the live data).
func sstSize(db *DB) int64 {
	tables, _ := db.fileSizes()
	return tables
}
