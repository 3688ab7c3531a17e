package crdtstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/reflectmesh/reflect/internal/coarse"
)

// Syncs: when and with whom they run (on connect, on a gap, every
// SyncInterval), one at a time per peer, and a new replica catching up
// with one peer at a time. The exchange itself is sync_v2.go's (SyncV1
// with peers of earlier releases: sync_v1.go); every read and write has
// the sync deadline, frames are bounded, context frames tightly, and the
// limits of synclimits.go apply.

// peerUp records a joined peer and schedules a sync with it, unless one
// has run or is running already (it may have connected to us first). Of
// two peers, the one with the smaller id starts at once; the other starts
// only if no sync has happened after a short delay, so a pair usually syncs
// once.
func (s *Store) peerUp(p string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	ps := s.peers[p]
	switch {
	case ps == nil:
		ps = &peerState{}
		s.peers[p] = ps
	case ps.up:
		s.mu.Unlock()
		return
	}
	ps.up = true
	s.changedLocked()
	need := !ps.synced && !ps.syncing
	s.mu.Unlock()
	s.creditJoin(p) // its sync on connect is never refused for its rate
	if !need {
		return
	}
	if s.tr.Self() < p {
		s.requestSync(p)
		return
	}
	s.goOwned(func() {
		t := time.NewTimer(300 * time.Millisecond)
		defer t.Stop()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		ps := s.peers[p]
		need := ps != nil && ps.up && !ps.synced && !ps.syncing
		s.mu.Unlock()
		if need {
			s.requestSync(p)
		}
	})
}

// peerDown forgets a peer that left, and what was synced with it.
func (s *Store) peerDown(p string) {
	s.mu.Lock()
	s.forgetPeerLocked(p)
	s.changedLocked()
	s.mu.Unlock()
	s.sweepLimits()
}

// changedLocked wakes WaitSynced callers; s.mu held.
func (s *Store) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// gapDelay is how long a gap may persist before a pull sync.
const gapDelay = 150 * time.Millisecond

// requestSync asks the sync loop to sync with p soon.
func (s *Store) requestSync(p string) {
	select {
	case s.syncCh <- p:
	case <-s.ctx.Done():
	default: // the loop is flooded: periodic syncs will catch up
	}
}

// syncLoop starts requested syncs and, every SyncInterval (jittered), one
// with a random peer.
func (s *Store) syncLoop() {
	var tick <-chan time.Time
	var t *time.Timer
	if s.opts.SyncInterval > 0 {
		t = time.NewTimer(coarse.Delay(jitter(s.opts.SyncInterval)))
		defer t.Stop()
		tick = t.C
	}
	// Peers whose deltas revealed a gap, synced gapDelay later: the missing
	// delta is often only overtaken, not lost (another writer's delta took a
	// faster path), and Join holds the early one until it arrives.
	gaps := map[string]time.Time{}
	gapTimer := time.NewTimer(time.Hour)
	gapTimer.Stop()
	defer gapTimer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.syncCh:
			s.startSync(p)
		case p := <-s.gapCh:
			if _, ok := gaps[p]; !ok {
				gaps[p] = time.Now().Add(gapDelay)
				if len(gaps) == 1 {
					gapTimer.Reset(gapDelay)
				}
			}
		case now := <-gapTimer.C:
			next := time.Duration(0)
			for p, at := range gaps {
				if wait := at.Sub(now); wait > 0 {
					if next == 0 || wait < next {
						next = wait
					}
					continue
				}
				delete(gaps, p)
				s.startSync(p)
			}
			if len(gaps) > 0 {
				gapTimer.Reset(max(next, time.Millisecond))
			}
		case <-tick:
			if peers := s.joined(); len(peers) > 0 {
				s.startSync(peers[rand.IntN(len(peers))])
			}
			t.Reset(coarse.Delay(jitter(s.opts.SyncInterval)))
		}
	}
}

// joined lists the joined peers.
func (s *Store) joined() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for p, ps := range s.peers {
		if ps.up {
			out = append(out, p)
		}
	}
	return out
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}

// claim marks a sync with p as running; false if one with p already is,
// or (deferred) if this replica is still catching up and another sync is
// running: a new replica syncs with one peer at a time, so that it
// downloads the state once, not once per peer.
func (s *Store) claim(p string, initiator bool) (ok, deferred bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.peers[p]
	if ps == nil {
		ps = &peerState{}
		s.peers[p] = ps
	}
	switch {
	case ps.syncing || s.closed:
		return false, false
	case !s.caughtUp && s.running > 0:
		if initiator {
			s.deferred[p] = true
		}
		return false, true
	}
	ps.syncing = true
	s.running++
	return true, false
}

// release ends a sync with p; ok marks p as synced. The first successful
// sync ends the catching up and starts the syncs deferred meanwhile.
func (s *Store) release(p string, ok bool) {
	s.mu.Lock()
	s.running--
	if ps := s.peers[p]; ps != nil {
		ps.syncing = false
		if ok && !ps.synced {
			ps.synced = true
			s.changedLocked()
		}
	}
	if ok {
		s.caughtUp = true
	}
	var next []string
	if s.running == 0 || s.caughtUp {
		for q := range s.deferred {
			next = append(next, q)
		}
		clear(s.deferred)
	}
	s.mu.Unlock()
	for _, q := range next {
		s.requestSync(q)
	}
}

// startSync runs one sync with p on its own goroutine, unless one with p is
// running already (in either direction).
func (s *Store) startSync(p string) {
	if ok, _ := s.claim(p, true); !ok {
		return
	}
	s.goOwned(func() {
		err := s.syncWith(p)
		switch {
		case err == nil:
			s.stats.syncs.Add(1)
		case errors.Is(err, ErrNoStore):
			// Nothing to sync with a peer that has no such store.
		case errors.Is(err, errBusy):
			// The peer is catching up with another: try again shortly.
			s.retryLater(p)
		default:
			s.stats.syncFailures.Add(1)
			// At Warn, at most once every warnEvery: a peer that left
			// mid-sync fails one too.
			s.warnSyncFailure("crdtstore: sync failed", p, err)
		}
		s.release(p, err == nil || errors.Is(err, ErrNoStore))
	})
}

// errBusy is a peer's answer while it is catching up with another peer.
var errBusy = errors.New("crdtstore: peer busy catching up")

// errAnsweredBusy is PeerSyncStatus.LastSyncError of a sync request this
// store answered "busy".
var errAnsweredBusy = errors.New("crdtstore: answered busy")

// retryLater syncs with p after the gap delay (and a jitter, so that two
// new replicas that refused each other do not collide again).
func (s *Store) retryLater(p string) {
	s.goOwned(func() {
		t := time.NewTimer(gapDelay + time.Duration(rand.Int64N(int64(gapDelay))))
		defer t.Stop()
		select {
		case <-s.ctx.Done():
		case <-t.C:
			s.requestSync(p)
		}
	})
}

// syncWith runs the initiator's side of a sync with p.
func (s *Store) syncWith(p string) (err error) {
	// cs counts from the start (its Stream is set once open): the time
	// spent opening the stream shows in PeerSyncStatus too.
	cs := &countingStream{}
	s.noteSyncStart(p, cs)
	defer func() {
		s.noteSyncStop(p, cs)
		s.noteSyncEnd(p, err, int(cs.bytes()))
	}()
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.SyncTimeout)
	defer cancel()
	st, err := s.tr.OpenSync(ctx, p) // wraps ErrNoStore for a peer without the store
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = st.Reset()
		} else {
			_ = st.Close()
		}
	}()
	cs.Stream = st
	defer s.countSync(cs)
	x := s.newExchange(p, cs, false)
	if streamVersion(st) == SyncV1 {
		return x.initiateV1()
	}
	return x.initiateV2()
}

// onSync serves a sync stream opened by p.
func (s *Store) onSync(p string, st Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = st.Reset()
		return
	}
	s.wg.Add(1) // Close waits for served syncs too
	s.mu.Unlock()
	defer s.wg.Done()
	// One served stream per peer: a new one resets the one running.
	gen := s.admitServed(p, st)
	defer s.endServed(p, gen)
	cs := &countingStream{Stream: st}
	x := s.newExchange(p, cs, true)
	// A peer over its rate is answered "busy"; over its reply budget, it
	// is unless the request finds the two in sync (see serveV2).
	lim := s.allowServe(p)
	if lim == limitRate {
		s.refuse(p, lim)
		s.answerBusy(x)
		s.noteSyncEnd(p, fmt.Errorf("%w: over the sync limit: %s", errAnsweredBusy, limitNames[lim]), int(cs.bytes()))
		return
	}
	// A sync the other way may run; serving anyway is harmless. But a
	// replica catching up with another peer answers "busy": the state it
	// would answer from is about to change completely.
	claimed, busy := s.claim(p, false)
	if busy {
		// Sync with it ourselves as soon as we are caught up.
		s.mu.Lock()
		s.deferred[p] = true
		s.mu.Unlock()
		if s.answerBusy(x) {
			s.stats.syncBusy.Add(1)
		}
		s.noteSyncEnd(p, fmt.Errorf("%w: catching up with another peer", errAnsweredBusy), int(cs.bytes()))
		return
	}
	s.noteSyncStart(p, cs)
	var err error
	if streamVersion(st) == SyncV1 {
		err = x.serveV1(lim == limitBudget)
	} else {
		err = x.serveV2(lim == limitBudget)
	}
	s.noteSyncStop(p, cs)
	s.countSync(cs)
	s.noteSyncEnd(p, err, int(cs.bytes()))
	switch {
	case errors.Is(err, errAnsweredBudget):
		_ = st.Close()
	case err != nil:
		_ = st.Reset()
		s.stats.syncFailures.Add(1)
		s.warnSyncFailure("crdtstore: serving sync failed", p, err)
	default:
		_ = st.Close()
		s.stats.syncServed.Add(1)
	}
	ok := err == nil
	if claimed {
		s.release(p, ok)
	} else if ok {
		s.markSynced(p)
	}
}

// answerBusy reads p's request and answers "busy", closing the stream (or
// resetting it, and returning false, if that fails).
func (s *Store) answerBusy(x *exchange) bool {
	_, err := x.readContext()
	if err == nil {
		err = x.write(frameBusy, nil)
	}
	s.countSync(x.cs)
	if err != nil {
		_ = x.cs.Reset()
		return false
	}
	_ = x.cs.Close()
	return true
}

func (s *Store) markSynced(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.peers[p]; ps != nil && !ps.synced {
		ps.synced = true
		s.changedLocked()
	}
}

// Synced reports whether this replica has synced with every joined peer
// since it joined. With no peer joined it is true once
// Options.DiscoveryGrace has passed since Open.
func (s *Store) Synced() bool {
	ok, _, _ := s.syncedState()
	return ok
}

// syncedState returns Synced, a channel closed at the next change of the
// peers' state, and how much of the discovery grace is left if nothing
// else is missing.
func (s *Store) syncedState() (ok bool, changed <-chan struct{}, grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	joined := 0
	for _, ps := range s.peers {
		if !ps.up {
			continue
		}
		if !ps.synced {
			return false, s.changed, 0
		}
		joined++
	}
	if joined == 0 {
		if left := s.opts.DiscoveryGrace - time.Since(s.opened); left > 0 {
			return false, s.changed, left
		}
	}
	return true, s.changed, 0
}

// WaitSynced blocks until Synced is true or ctx ends. After it returns nil,
// this replica holds at least everything its peers held when they
// connected.
//
// If ctx ends first, the error is a *NotSyncedError: it wraps
// ErrNotSynced and ctx.Err() (errors.Is(err, context.DeadlineExceeded)
// holds for a deadline), and says why, per peer not synced: a sync that
// is still running (for how long, how many bytes so far), the last sync's
// failure, or no sync started yet; or that no peer joined. It returns
// ErrClosed if the store closes.
func (s *Store) WaitSynced(ctx context.Context) error {
	graceEnd := time.NewTimer(time.Hour)
	graceEnd.Stop()
	defer graceEnd.Stop()
	for {
		ok, changed, grace := s.syncedState()
		if ok {
			return nil
		}
		var wake <-chan time.Time
		if grace > 0 {
			graceEnd.Reset(grace)
			wake = graceEnd.C
		}
		select {
		case <-changed:
		case <-wake:
		case <-ctx.Done():
			if ok, _, _ := s.syncedState(); ok {
				return nil
			}
			return &NotSyncedError{Reason: s.notSyncedReason(), Err: ctx.Err()}
		case <-s.ctx.Done():
			return ErrClosed
		}
	}
}

// reading returns how a sync exchange, served or started by this store,
// reads its frames until deadline.
func (s *Store) reading(served bool, deadline time.Time) reading {
	return reading{gate: &s.lim.gate, served: served, deadline: deadline, done: s.ctx.Done()}
}
