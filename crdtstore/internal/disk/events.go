package disk

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Stats counts engine events an operator should know about.
type Stats struct {
	// Corruptions is the number of times pebble reported corrupt data (a bad
	// checksum in an sstable or blob file) while reading. The read that hit
	// it returned ErrCorrupt.
	Corruptions uint64
	// BackgroundErrors is the number of failed background jobs (flushes,
	// compactions); pebble retries them.
	BackgroundErrors uint64
	// Rounds is the number of commit rounds: log writes, each fsynced in
	// Power mode. Batches is the number of batches they committed;
	// Batches/Rounds is how many batches shared a write (and an fsync).
	Rounds, Batches uint64
	// AutoCompactions is the number of automatic full compactions (see
	// SetLive).
	AutoCompactions uint64
}

// Stats returns the event counters.
func (db *DB) Stats() Stats {
	return Stats{
		Corruptions:      db.ev.corruptions.Load(),
		BackgroundErrors: db.ev.background.Load(),
		Rounds:           db.rounds.Load(),
		Batches:          db.batches.Load(),
		AutoCompactions:  db.compact.runs.Load(),
	}
}

// events receives pebble's events: it counts them and logs at most one line
// per kind per logEvery, so a repeating failure does not flood the log.
type events struct {
	log                     *slog.Logger
	corruptions, background atomic.Uint64
	corruptLog, bgLog       limiter
}

const logEvery = 10 * time.Second

func (e *events) listener() *pebble.EventListener {
	return &pebble.EventListener{
		// pebble's default for DataCorruption is Logger.Fatalf; here the read
		// returns ErrCorrupt and the process goes on.
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			n := e.corruptions.Add(1)
			if sup, ok := e.corruptLog.allow(); ok {
				e.log.Error("disk: corrupt data", "file", info.Path, "err", info.Details,
					"total", n, "suppressed", sup)
			}
		},
		BackgroundError: func(err error) {
			n := e.background.Add(1)
			if sup, ok := e.bgLog.allow(); ok {
				e.log.Warn("disk: background job failed", "err", err, "total", n, "suppressed", sup)
			}
		},
	}
}

// limiter allows one event per logEvery and counts the ones it suppresses.
type limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

func (l *limiter) allow() (suppressed uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); l.last.IsZero() || now.Sub(l.last) >= logEvery {
		l.last, suppressed, l.suppressed = now, l.suppressed, 0
		return suppressed, true
	}
	l.suppressed++
	return 0, false
}
