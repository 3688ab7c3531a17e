package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/internal/units"
)

// wait-synced: its progress on a terminal, and why it gave up.

// progressEvery is how often wait-synced prints its progress on a
// terminal (a variable for tests).
var progressEvery = time.Second

// maxProgressPeers bounds the peers one progress line names.
const maxProgressPeers = 3

// progressEvent is a line of wait-synced's progress, printed on a terminal
// only (human mode): in -json mode and in scripts nothing changes.
type progressEvent struct {
	Event string `json:"event"`
	Text  string `json:"text"`
}

func (e progressEvent) human() string { return "… " + e.Text }

// waitSynced waits, at most timeout, until the store has synced with every
// peer. On a terminal it prints every second what it waits for. When it
// gives up, its error says why, per peer not synced (crdtstore's
// NotSyncedError).
func (d *demo) waitSynced(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if d.progress {
		done := make(chan struct{})
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			d.showSyncProgress(done)
		}()
		defer func() { close(done); <-stopped }()
	}
	err := d.store.WaitSynced(ctx)
	return syncFailure(err, timeout)
}

// syncFailure is wait-synced's error for WaitSynced's err: on timeout, the
// reason the store gave.
func syncFailure(err error, timeout time.Duration) error {
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var nse *crdtstore.NotSyncedError
	if errors.As(err, &nse) {
		return fmt.Errorf("not synced with every peer after %v: %s", timeout, nse.Reason)
	}
	return fmt.Errorf("not synced with every peer after %v", timeout)
}

// showSyncProgress prints the sync progress every progressEvery until done
// is closed.
func (d *demo) showSyncProgress(done <-chan struct{}) {
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if line := syncProgress(d.store.PeerSyncStatus(), time.Now()); line != "" {
			d.out.event(progressEvent{"progress", line})
		}
	}
}

// syncProgress is a progress line for the peers joined and not synced yet:
//
//	syncing with …abc12345: 12.3 MB (4 s); waiting for …def67890
//
// at most maxProgressPeers of them, then "+N more"; "" for none.
func syncProgress(st []crdtstore.PeerSyncStatus, now time.Time) string {
	var parts []string
	missing := 0
	for _, ps := range st {
		if !ps.Joined || ps.Synced {
			continue
		}
		missing++
		if len(parts) == maxProgressPeers {
			continue
		}
		id := printable(short(ps.Peer))
		switch {
		case !ps.SyncStarted.IsZero():
			parts = append(parts, fmt.Sprintf("syncing with %s: %s keys, %s (%.0f s)", id, units.Count(ps.SyncKeys), units.Bytes(ps.SyncBytes), max(now.Sub(ps.SyncStarted), 0).Seconds()))
		case ps.LastSyncError != "":
			parts = append(parts, fmt.Sprintf("%s: last sync failed: %s", id, printable(ps.LastSyncError)))
		default:
			parts = append(parts, "waiting for "+id)
		}
	}
	if more := missing - len(parts); more > 0 {
		parts = append(parts, fmt.Sprintf("+%d more", more))
	}
	return strings.Join(parts, "; ")
}
