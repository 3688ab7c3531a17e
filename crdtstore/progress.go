package crdtstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reflectmesh/reflect/internal/units"
)

// Sync progress and failures, as PeerSyncStatus, WaitSynced's error and
// the logs show them.

// ErrNotSynced is wrapped by WaitSynced's error when its context ends
// before the store is synced (see NotSyncedError).
var ErrNotSynced = errors.New("crdtstore: not synced")

// NotSyncedError is WaitSynced's error when its context ends before the
// store has synced with every joined peer. It wraps both ErrNotSynced and
// the context's error (errors.Is(err, context.DeadlineExceeded) holds for
// a deadline), and says why.
type NotSyncedError struct {
	// Reason says why, for each joined peer not synced yet, sorted by peer
	// ("; " between them; at most 5 named, then "+N more"):
	//
	//	peer X: syncing for 3.2 s, 12.0 MB and 95,000 keys so far
	//	peer X: last sync failed 2.0 s ago: <its error>
	//	peer X: not synced yet (no sync started)
	//
	// (or "(no sync started: the first sync runs with another peer)": a
	// new replica downloads the state from one peer at a time).
	// or "no peer joined" while no peer has joined (during
	// Options.DiscoveryGrace). Peers are named as in PeerSyncStatus.
	Reason string
	// Err is the context's error.
	Err error
}

func (e *NotSyncedError) Error() string {
	return fmt.Sprintf("%v (%s): %v", ErrNotSynced, e.Reason, e.Err)
}

// Unwrap returns ErrNotSynced and the context's error.
func (e *NotSyncedError) Unwrap() []error { return []error{ErrNotSynced, e.Err} }

// maxReasons bounds the peers NotSyncedError.Reason names.
const maxReasons = 5

// notSyncedReason says why the store is not synced (NotSyncedError.Reason).
func (s *Store) notSyncedReason() string {
	type pending struct {
		name string
		ps   *peerState
		p    string
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var ps []pending
	for p, st := range s.peers {
		if st.up && !st.synced {
			ps = append(ps, pending{s.peerText(p), st, p})
		}
	}
	if len(ps) == 0 {
		return "no peer joined"
	}
	slices.SortFunc(ps, func(a, b pending) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	for i, q := range ps {
		if i == maxReasons {
			fmt.Fprintf(&b, "; +%d more", len(ps)-maxReasons)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "peer %s: ", q.name)
		st := q.ps
		switch {
		case st.run != nil:
			fmt.Fprintf(&b, "syncing for %s, %s and %s keys so far", seconds(now.Sub(st.runStarted)), units.Bytes(st.run.bytes()), units.Count(st.run.keys.Load()))
		case st.lastSyncErr != "":
			fmt.Fprintf(&b, "last sync failed %s ago: %s", seconds(now.Sub(st.lastSync)), st.lastSyncErr)
		case s.deferred[q.p]:
			b.WriteString("not synced yet (no sync started: the first sync runs with another peer)")
		case !st.lastSync.IsZero():
			fmt.Fprintf(&b, "not synced yet (last sync %s ago)", seconds(now.Sub(st.lastSync)))
		default:
			b.WriteString("not synced yet (no sync started)")
		}
	}
	return b.String()
}

// seconds formats d as "3.2 s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1f s", max(d, 0).Seconds())
}

// countingStream counts the bytes a sync moves. The counts are atomic:
// PeerSyncStatus reads them while the exchange runs.
type countingStream struct {
	Stream
	read, written atomic.Int64
	keys          atomic.Int64 // keys of the entries sent and received
}

func (c *countingStream) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingStream) Write(p []byte) (int, error) {
	n, err := c.Stream.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// bytes returns the bytes moved so far, both directions.
func (c *countingStream) bytes() int64 { return c.read.Load() + c.written.Load() }

func (s *Store) countSync(c *countingStream) {
	s.stats.syncBytesIn.Add(uint64(c.read.Load()))
	s.noteReceived(int(c.read.Load()))
	s.stats.syncBytesOut.Add(uint64(c.written.Load()))
}

// noteSyncStart records cs as the running sync exchange with p (the latest
// one, if one runs each way), from now on.
func (s *Store) noteSyncStart(p string, cs *countingStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.peers[p]; ps != nil {
		ps.run, ps.runStarted = cs, s.now()
	}
}

// noteSyncStop records that the exchange cs with p ended.
func (s *Store) noteSyncStop(p string, cs *countingStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.peers[p]; ps != nil && ps.run == cs {
		ps.run, ps.runStarted = nil, time.Time{}
	}
}

// syncWarn rate-limits the Warn logs of failed sync exchanges, apart from
// the store's other warnings so that those never hide them.
type syncWarn struct {
	mu    sync.Mutex
	last  time.Time
	quiet int // failures logged at Debug since last
}

// warnSyncFailure logs a failed sync exchange with p at Warn, at most once
// every warnEvery per store (at Debug in between; the next Warn says how
// many it left out). Nothing is logged once the store is closing.
func (s *Store) warnSyncFailure(msg, p string, err error) {
	if s.ctx.Err() != nil {
		return
	}
	w := &s.syncWarn
	w.mu.Lock()
	now := time.Now()
	if !w.last.IsZero() && now.Sub(w.last) < warnEvery {
		w.quiet++
		w.mu.Unlock()
		s.log.Debug(msg, "peer", s.peerText(p), "err", err)
		return
	}
	quiet := w.quiet
	w.last, w.quiet = now, 0
	w.mu.Unlock()
	args := []any{"peer", s.peerText(p), "err", err}
	if quiet > 0 {
		args = append(args, "failures_not_logged", quiet)
	}
	s.log.Warn(msg, args...)
}
