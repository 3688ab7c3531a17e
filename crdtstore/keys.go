package crdtstore

import (
	"fmt"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// checkRemoteKeys refuses a received delta or sync reply holding a key this
// store would refuse from its own application (checkKey: empty, or not
// UTF-8), so that every key a Get, List or watcher returns is one Set could
// have written, whichever node wrote it. (The decoder bounds their length.)
func checkRemoteKeys(d ormap.Delta) error {
	for _, k := range d.Keys() {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("%w: a remote key: %w", ErrProtocol, err)
		}
	}
	return nil
}
