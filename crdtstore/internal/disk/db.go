package disk

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Durability says what a committed batch survives.
type Durability int

const (
	// Crash (the default): a committed batch survives kill -9 of the process.
	// Its WAL record has been written to the OS (write(2)) but not fsynced.
	Crash Durability = iota
	// Power: a committed batch also survives power loss (fsync). Concurrent
	// committers share fsyncs (group commit, in order).
	Power
)

func (d Durability) String() string {
	switch d {
	case Crash:
		return "crash"
	case Power:
		return "power"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Options configure Open. The zero value is valid.
type Options struct {
	Durability Durability
	// Logger receives pebble's log lines (see pebbleLogger); nil discards them.
	Logger *slog.Logger
}

// Errors returned by this package, wrapped with %w and a detail.
var (
	// ErrLocked: the directory is open in another DB, in this or another process.
	ErrLocked = errors.New("disk: directory locked")
	// ErrFormat: the directory holds an on-disk format this build does not read.
	ErrFormat = errors.New("disk: unknown on-disk format")
	// ErrCorrupt: the engine found corrupt data; the error wraps pebble's.
	ErrCorrupt = errors.New("disk: corrupt data")
	// ErrClosed: the DB is closed.
	ErrClosed = errors.New("disk: closed")
)

// DB is an open directory. Its methods are safe for concurrent use.
type DB struct {
	dir  string
	pdb  *pebble.DB
	lock *os.File
	ev   *events

	mu      sync.Mutex
	queue   []*pebble.Batch // enqueued, not yet taken by the committer
	round   *Ticket         // ticket of the batches in queue
	closing bool
	spare   []*pebble.Batch // committer-only: the other queue buffer
	failed  error           // committer-only: sticky commit error
	wake    chan struct{}   // cap 1: the queue is not empty or closing is set
	// waitWake (cap 1, Power mode only; nil otherwise) is signalled by a
	// Ticket.Wait that blocks: the committer may be lingering for it.
	waitWake chan struct{}
	rounds   atomic.Uint64 // commit rounds (log writes; fsyncs in Power mode)
	batches  atomic.Uint64 // batches committed
	compact  compactState
	exited   chan struct{} // closed when the committer returns

	// life is held shared by reads and exclusively by Close while it closes
	// pebble, so no read runs on a closed engine.
	life      sync.RWMutex
	closed    bool // under life
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it if needed) the store directory dir. It locks the
// directory (a second opener, in this or another process, gets ErrLocked
// naming it), writes the format record into an empty directory and checks it
// otherwise (ErrFormat for a version this build does not read, or for a
// non-empty engine without one), and returns ErrCorrupt, wrapping pebble's
// error, when pebble reports corruption while opening.
func Open(dir string, o Options) (*DB, error) {
	if o.Durability != Crash && o.Durability != Power {
		return nil, fmt.Errorf("disk: unknown durability %d", int(o.Durability))
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	ev := &events{log: log}
	po := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{log},
		EventListener:      ev.listener(),
		FS:                 vfs.Default,
	}
	if o.Durability == Crash {
		po.FS = walNoSyncFS{vfs.Default}
	}
	pdb, err := openPebble(dir, po)
	if err == nil {
		err = checkFormat(pdb)
		if err != nil {
			pdb.Close()
		}
	}
	if err != nil {
		unlockDir(lock)
		return nil, err
	}
	db := &DB{
		dir:    dir,
		pdb:    pdb,
		lock:   lock,
		ev:     ev,
		wake:   make(chan struct{}, 1),
		exited: make(chan struct{}),
	}
	if o.Durability == Power {
		db.waitWake = make(chan struct{}, 1)
	}
	db.compact.init()
	go db.commitLoop()
	go db.compactLoop()
	return db, nil
}

// openPebble is pebble.Open with corruption mapped to ErrCorrupt. A panic in
// pebble while it reads the directory is also reported as ErrCorrupt rather
// than taking the process down.
func openPebble(dir string, po *pebble.Options) (pdb *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			pdb, err = nil, fmt.Errorf("%w: %s: pebble panicked while opening: %v", ErrCorrupt, dir, r)
		}
	}()
	pdb, err = pebble.Open(dir, po)
	if err != nil {
		return nil, engineErr("open "+dir, err)
	}
	return pdb, nil
}

// engineErr wraps a pebble error: ErrCorrupt as well when pebble marks it
// as corruption.
func engineErr(op string, err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, op, err)
	}
	return fmt.Errorf("disk: %s: %w", op, err)
}

func checkFormat(pdb *pebble.DB) error {
	v, closer, err := pdb.Get(formatKey())
	if err == nil {
		_, err = decodeFormat(v)
		closer.Close()
		return err
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return engineErr("read format record", err)
	}
	it, err := pdb.NewIter(nil)
	if err != nil {
		return engineErr("read", err)
	}
	nonEmpty := it.First()
	if err := it.Close(); err != nil {
		return engineErr("read", err)
	}
	if nonEmpty {
		return fmt.Errorf("%w: the directory holds records but no format record (not a Reflect store, or written by a foreign version)", ErrFormat)
	}
	if err := pdb.Set(formatKey(), encodeFormat(formatVersion), pebble.Sync); err != nil {
		return engineErr("write format record", err)
	}
	return nil
}

// Close commits every batch enqueued before it (their tickets then return
// as usual), stops the committer, closes the engine and unlocks the
// directory. Batches enqueued after Close has begun fail with ErrClosed.
// Close is safe to call more than once and concurrently: later calls wait
// for the first and return nil.
func (db *DB) Close() error {
	first := false
	db.closeOnce.Do(func() {
		first = true
		db.mu.Lock()
		db.closing = true
		db.mu.Unlock()
		signal(db.wake)
		<-db.exited
		db.stopCompactor()
		db.life.Lock()
		db.closed = true
		err := db.pdb.Close()
		if err != nil {
			err = engineErr("close", err)
		}
		if uerr := unlockDir(db.lock); err == nil && uerr != nil {
			err = fmt.Errorf("disk: unlock %s: %w", db.dir, uerr)
		}
		db.life.Unlock()
		db.closeErr = err
	})
	if !first {
		return nil
	}
	return db.closeErr
}

// reading runs fn with the engine open, or returns ErrClosed.
func (db *DB) reading(fn func() error) error {
	db.life.RLock()
	defer db.life.RUnlock()
	if db.closed {
		return ErrClosed
	}
	return fn()
}
