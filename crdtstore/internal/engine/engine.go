// Package engine is what a persistent crdtstore needs of its on-disk
// engine, and nothing of any engine: crdtstore depends on this package
// only, so a program that keeps its stores in memory does not link one.
// Package crdtstore/disk registers the engine (pebble, internal/disk) when
// a program imports it.
package engine

import (
	"errors"
	"log/slog"
	"sync/atomic"
)

// Options configure Open.
type Options struct {
	// Fsync: a committed batch survives a power loss, not only the crash
	// of the process.
	Fsync bool
	// Logger receives the engine's log lines.
	Logger *slog.Logger
}

// Batch is a set of writes committed atomically: records (kind, name) →
// data. It must not be used after Enqueue.
type Batch interface {
	Put(kind byte, name string, data []byte)
	Delete(kind byte, name string)
	Len() int
}

// Ticket is an enqueued batch; Wait returns once it is committed.
type Ticket interface {
	Wait() error
}

// DB is an open directory (see internal/disk for the contract: batches
// commit in Enqueue order; Scan returns records by kind, then name).
type DB interface {
	Get(kind byte, name string) ([]byte, bool, error)
	Scan(fn func(kind byte, name string, data []byte) error) error
	// SetLive tells the engine how many bytes the store holds, for its
	// automatic compaction.
	SetLive(n int64)
	NewBatch() Batch
	Enqueue(b Batch) Ticket
	Close() error
}

// OpenFunc opens dir.
type OpenFunc func(dir string, o Options) (DB, error)

// ErrNone is returned by Open when no engine is registered.
var ErrNone = errors.New("no disk engine")

var registered atomic.Pointer[OpenFunc]

// Register makes open the engine of every later Open.
func Register(open OpenFunc) { registered.Store(&open) }

// Registered reports whether an engine is registered.
func Registered() bool { return registered.Load() != nil }

// Open opens dir with the registered engine.
func Open(dir string, o Options) (DB, error) {
	open := registered.Load()
	if open == nil {
		return nil, ErrNone
	}
	return (*open)(dir, o)
}
