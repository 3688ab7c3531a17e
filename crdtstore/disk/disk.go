// Package disk is the on-disk engine of crdtstore's Options.Dir. Import it
// for its side effect in the program that keeps a store on disk:
//
//	import _ "github.com/reflectmesh/reflect/crdtstore/disk"
//
// Without it, crdtstore.Open with a Dir fails with crdtstore.ErrConfig. The
// engine is an embedded pebble database (github.com/cockroachdb/pebble/v2);
// it is its own package so that a program whose stores live in memory only
// does not carry it: 14 MB less program, and, where the kernel keeps the
// whole program resident, less memory per process (7–14 MB measured on
// Linux 6.18 with a 100,000-key store).
//
// The format on disk, the commit order and the durability are described
// under Persistence in the crdtstore documentation.
package disk

import (
	"github.com/reflectmesh/reflect/crdtstore/internal/disk"
	"github.com/reflectmesh/reflect/crdtstore/internal/engine"
)

func init() { engine.Register(open) }

func open(dir string, o engine.Options) (engine.DB, error) {
	dur := disk.Crash
	if o.Fsync {
		dur = disk.Power
	}
	db, err := disk.Open(dir, disk.Options{Durability: dur, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return pebbleDB{db}, nil
}

// pebbleDB is internal/disk's DB as an engine.DB.
type pebbleDB struct{ *disk.DB }

func (d pebbleDB) NewBatch() engine.Batch { return d.DB.NewBatch() }

func (d pebbleDB) Enqueue(b engine.Batch) engine.Ticket { return d.DB.Enqueue(b.(*disk.Batch)) }
