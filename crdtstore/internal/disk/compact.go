package disk

import (
	"context"
	"sync/atomic"
	"time"
)

// Automatic compaction. pebble compacts in the background on its own, but
// after heavy overwrites and deletes its tables can hold several times the
// live data for as long as nothing more is written (measured: 1,000,000
// keys × 100 B, each overwritten 3 times, then half deleted: 2.9× the live
// data; 1.4× after a full compaction). So a DB whose user reports its live
// size (SetLive) also runs a compactor goroutine that compacts the whole
// key space when the tables and WAL grow past autoCompactRatio × live. The live
// size is in the user's unit (the store: bytes of keys and values); the
// ratio of the tables' size (without the WAL) to it right after a
// compaction (metadata, compression) is learnt, so a store whose records are much larger than its
// live bytes (tiny values) is not compacted over and over: the threshold
// is max(autoCompactRatio, 1.5 × that ratio) × live.

const (
	// autoCompactRatio: compact when the tables exceed this × the live size.
	autoCompactRatio = 2.0
	// checkEvery: the committer asks for a check after this many bytes
	// committed since the last one.
	checkEvery = 4 << 20
	// checkTick: the compactor also checks this often if the live size
	// changed since its last check.
	checkTick = 10 * time.Second
)

// autoCompactMin: tables smaller than this are never compacted
// automatically (pebble's own overheads dominate a small store). A
// variable for tests.
var autoCompactMin int64 = 32 << 20

// compactState is the compactor's; live and lastLive are shared.
type compactState struct {
	live     atomic.Int64 // last SetLive; -1: never set
	lastLive atomic.Int64 // live at the last check
	wake     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	exited   chan struct{}
	written  int64   // committer-only: bytes committed since the last check request
	ratio    float64 // compactor-only: tables / live after the last compaction
	runs     atomic.Uint64
}

func (c *compactState) init() {
	c.live.Store(-1)
	c.wake = make(chan struct{}, 1)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.exited = make(chan struct{})
	c.ratio = 1
}

// SetLive reports the size of the live data (in any unit that the table
// size grows with, the same on every call: the store passes its keys' and
// values' bytes) and turns automatic compaction on. The first call (at
// Open, once the data is read) and a call after the live size changed by a
// quarter since the last check make the compactor check at once; the
// committer makes it check every few MiB committed.
func (db *DB) SetLive(n int64) {
	c := &db.compact
	prev := c.live.Swap(n)
	last := c.lastLive.Load()
	if prev < 0 || 4*abs(n-last) > last {
		signal(c.wake)
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// committed is called by the committer after each round with its bytes.
func (db *DB) committed(n int) {
	c := &db.compact
	c.written += int64(n)
	if c.written >= checkEvery && c.live.Load() >= 0 {
		c.written = 0
		signal(c.wake)
	}
}

// compactLoop is the compactor goroutine: on each wake it compares the
// engine's live tables with the live size and compacts everything when
// needCompaction says so. Close cancels a running compaction.
func (db *DB) compactLoop() {
	c := &db.compact
	defer close(c.exited)
	tick := time.NewTicker(checkTick)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		case <-tick.C:
			// Catches what the wakes miss: deletes that shrank the live
			// size by less than a quarter since a check made during them.
			if c.live.Load() == c.lastLive.Load() {
				continue
			}
		}
		live := c.live.Load()
		if live < 0 {
			continue
		}
		c.lastLive.Store(live)
		tables, wal := db.fileSizes()
		if !needCompaction(tables+wal, live, c.ratio) {
			continue
		}
		start := time.Now()
		err := db.compactAll(c.ctx)
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			n := db.ev.background.Add(1)
			if sup, ok := db.ev.bgLog.allow(); ok {
				db.ev.log.Warn("disk: automatic compaction failed", "dir", db.dir, "err", err, "total", n, "suppressed", sup)
			}
			continue
		}
		c.runs.Add(1)
		// Deletes made while it ran are still in the tables: take the
		// larger live size, not to learn a ratio that would keep the
		// tables above 2× from now on. The ratio is the tables' alone:
		// what the log holds right now says nothing of the data.
		after, _ := db.fileSizes()
		liveNow := c.live.Load()
		if ref := max(live, liveNow); ref > 0 {
			c.ratio = max(1, float64(after)/float64(ref))
		}
		live = liveNow
		db.ev.log.Debug("disk: compacted automatically", "dir", db.dir, "tables_before", tables,
			"wal_before", wal, "tables_after", after, "live", live, "took", time.Since(start))
	}
}

// needCompaction: the tables are past the floor and past the threshold.
func needCompaction(tables, live int64, ratio float64) bool {
	limit := max(autoCompactRatio, 1.5*ratio) * float64(live)
	return tables >= autoCompactMin && float64(tables) > limit
}

// fileSizes returns the bytes of the engine's files that hold data: the
// live sstables, and the live WAL files (not obsolete files waiting for
// deletion, kept for recycling or not yet deleted); 0 once closed.
func (db *DB) fileSizes() (tables, wal int64) {
	db.reading(func() error {
		m := db.pdb.Metrics()
		tables, wal = int64(m.Table.Local.LiveSize), int64(m.WAL.PhysicalSize)
		return nil
	})
	return tables, wal
}

// stopCompactor cancels a running compaction and waits for the compactor.
func (db *DB) stopCompactor() {
	db.compact.cancel()
	<-db.compact.exited
}
