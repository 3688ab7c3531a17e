package crdtstore

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/internal/engine"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// Persistence (Options.Dir): the store keeps one record per key (all its
// entries, siblings included) and one per row of the causal context in an
// embedded engine (package disk, on pebble), plus its replica id. Package
// ormap tracks which keys and rows each operation changed (TakeRecords);
// after every change, under s.mu, the store enqueues those records in one
// batch, so batches reach the engine's log in the order the changes were
// made. A local write waits, outside s.mu, until its batch is committed
// (Options.Fsync: fsynced) before it returns and before its delta is
// queued for publishing: what a peer saw of this node survives a crash.
// Remote deltas, sync replies and expiries are saved the same way without
// waiting (a crash loses them; the next sync brings them again). Reads
// never touch the disk: the whole store is in memory, read from the
// records at Open.

// metaKind is the kind of the store's own records in the engine; the map's
// records use ormap.RecordKey and ormap.RecordRow.
const metaKind = 'm'

// metaReplica names the record holding the replica id.
const metaReplica = "replica"

// restored is what openDisk read from Options.Dir.
type restored struct {
	db  engine.DB
	m   *ormap.Map
	rid []byte
	// resumed reports that the replica id on disk is this node's, so the
	// store writes on as that replica; false for a new directory or one
	// written under another peer identity (the data is kept; the store
	// writes as a new replica).
	resumed bool
	stats   ormap.RestoreStats
	took    time.Duration
}

// openDisk opens dir and reads the store saved there for the transport
// peer self; a fresh replica id is made if none is saved or the saved one
// is not self's.
func openDisk(dir string, fsync bool, self string, o Options) (*restored, error) {
	start := time.Now()
	db, err := engine.Open(dir, engine.Options{Fsync: fsync, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDisk, err)
	}
	r := &restored{db: db}
	fail := func(err error) (*restored, error) {
		return nil, errors.Join(fmt.Errorf("%w: %s: %w", ErrDisk, dir, err), db.Close())
	}
	saved, ok, err := db.Get(metaKind, metaReplica)
	if err != nil {
		return fail(err)
	}
	if ok && ownsReplica(self, ormap.ReplicaID(saved)) {
		r.rid, r.resumed = bytes.Clone(saved), true
	} else {
		if r.rid, err = newReplicaID(self); err != nil {
			return fail(err)
		}
		if ok {
			o.Logger.Warn("crdtstore: the data in Dir was written under another peer id: keeping it, writing as a new replica (keep the node's identity with node.Config.IdentityFile to resume)", "store", o.Name, "dir", dir)
		}
	}
	var scanErr error
	records := func(yield func(ormap.Record) bool) {
		stop := errors.New("stop")
		err := db.Scan(func(kind byte, name string, data []byte) error {
			if kind == metaKind {
				return nil
			}
			if !yield(ormap.Record{Kind: ormap.RecordKind(kind), Name: name, Data: bytes.Clone(data)}) {
				return stop
			}
			return nil
		})
		if err != nil && err != stop {
			scanErr = err
		}
	}
	m, st, err := ormap.Restore(ormap.ReplicaID(r.rid), iter.Seq[ormap.Record](records))
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return fail(err)
	}
	r.m, r.stats = m, st
	db.SetLive(int64(m.Bytes())) // automatic compaction: see internal/disk's DB.SetLive
	if !r.resumed {
		b := db.NewBatch()
		b.Put(metaKind, metaReplica, r.rid)
		if err := db.Enqueue(b).Wait(); err != nil {
			return fail(err)
		}
	}
	r.took = time.Since(start)
	return r, nil
}

// saveLocked enqueues the records of the changes made to s.m since the
// last call; s.mu held. It returns the batch's ticket, nil without a
// disk or without a change.
func (s *Store) saveLocked() engine.Ticket {
	if s.db == nil {
		return nil
	}
	b := s.db.NewBatch()
	s.m.TakeRecords(func(r ormap.Record) {
		if r.Data == nil {
			b.Delete(byte(r.Kind), r.Name)
		} else {
			b.Put(byte(r.Kind), r.Name, r.Data)
		}
	})
	if b.Len() == 0 {
		return nil
	}
	t := s.db.Enqueue(b)
	s.db.SetLive(int64(s.m.Bytes()))
	return t
}

// saved waits for t (nil: nothing to wait for) and reports a failure as
// ErrDisk, logging the first.
func (s *Store) saved(t engine.Ticket) error {
	if t == nil {
		return nil
	}
	err := t.Wait()
	if err == nil {
		return nil
	}
	if s.diskFailed.CompareAndSwap(false, true) {
		s.log.Error("crdtstore: cannot save to Dir: changes from now on may be lost at a restart", "err", err)
	}
	return fmt.Errorf("%w: %w", ErrDisk, err)
}

// resumeLocked starts s on what openDisk restored: the clock past every
// restored write, so that a new write of a key orders after the old ones.
func (s *Store) resumeLocked(rs *restored) {
	s.clock.Observe(rs.stats.MaxTime, rs.stats.MaxTime.Wall) // never ahead of itself: always observed
	s.log.Debug("crdtstore: restored from Dir", "dir", s.opts.Dir, "keys", rs.stats.Keys, "entries", rs.stats.Entries,
		"resumed_replica", rs.resumed, "repaired_dots", rs.stats.RepairedDots, "took", rs.took)
	s.armLocked() // restored values with a TTL
}

// closeDisk closes the engine, after every goroutine that saves has ended.
func (s *Store) closeDisk() error {
	if s.db == nil {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("%w: close: %w", ErrDisk, err)
	}
	return nil
}
