package disk

import (
	"context"
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// Scan calls fn for every record, ordered by kind then name, from a
// consistent snapshot. data is valid only during fn. An error from fn stops
// the scan and is returned as is.
func (db *DB) Scan(fn func(kind byte, name string, data []byte) error) error {
	return db.reading(func() error {
		it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{kindFormat + 1}})
		if err != nil {
			return engineErr("scan", err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			k := it.Key()
			v, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return engineErr("scan", err)
			}
			if err := fn(k[0], string(k[1:]), v); err != nil {
				it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return engineErr("scan", err)
		}
		return nil
	})
}

// Get returns a copy of the data of (kind, name), and whether it exists.
func (db *DB) Get(kind byte, name string) ([]byte, bool, error) {
	var out []byte
	var found bool
	err := db.reading(func() error {
		key := append([]byte{kind}, name...)
		v, closer, err := db.pdb.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return engineErr("get", err)
		}
		out, found = append([]byte(nil), v...), true
		return closer.Close()
	})
	return out, found, err
}

// Compact rewrites the whole key space online (reads and commits go on),
// dropping overwritten and deleted records, so the disk holds about the live
// data.
func (db *DB) Compact() error { return db.compactAll(context.Background()) }

// compactAll is Compact, stopped when ctx is done.
func (db *DB) compactAll(ctx context.Context) error {
	return db.reading(func() error {
		it, err := db.pdb.NewIter(nil)
		if err != nil {
			return engineErr("compact", err)
		}
		var first, last []byte
		if it.First() {
			first = append(first, it.Key()...)
			if it.Last() {
				last = append(last, it.Key()...)
			}
		}
		if err := it.Close(); err != nil {
			return engineErr("compact", err)
		}
		if first == nil || last == nil {
			return nil
		}
		// The end bound is exclusive: the smallest key after last.
		if err := db.pdb.Compact(ctx, first, append(last, 0), true); err != nil {
			return engineErr("compact", err)
		}
		return nil
	})
}

// DiskSize is the bytes the engine's files take on disk (sstables, WAL,
// MANIFEST, ...), or 0 once closed.
func (db *DB) DiskSize() int64 {
	var n int64
	db.reading(func() error {
		n = int64(db.pdb.Metrics().DiskSpaceUsage())
		return nil
	})
	return n
}

// Dir is the directory the DB was opened on.
func (db *DB) Dir() string { return db.dir }
