package main

import (
	"errors"
	"log/slog"
)

// close closes the store (publishing its last writes), then the node, which
// sends everything still queued, waits until the peers have received it, and
// leaves (peers see "left").
func (d *demo) close(_ *slog.Logger) error {
	err := d.store.Close()
	err = errors.Join(err, d.node.Close()) // also stops the peer events and subscriptions
	d.watchMu.Lock()
	watching := d.watcher != nil
	d.watchMu.Unlock()
	if watching {
		<-d.watchDone // the store's Close closed the watcher's channel
	}
	return err
}
