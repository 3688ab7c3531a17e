package crdtstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// Sync protocol, on a stream opened by A to B (see doc.go):
//
//	A → B  context C_A
//	B → A  "equal"                          if C_B = C_A: done, one round trip
//	B → A  delta B.Diff(C_A), context C_B   otherwise
//	A → B  "equal" or delta A.Diff(C_B)     after A joined B's delta
//
// Each side joins what it receives; both end with the union of the two
// states. Every read and write has the sync deadline; frames are bounded,
// context frames tightly, and the limits of synclimits.go apply.

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
		t = time.NewTimer(jitter(s.opts.SyncInterval))
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
			t.Reset(jitter(s.opts.SyncInterval))
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

// syncWith runs the initiator's side of the protocol with p.
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
	deadline := time.Now().Add(s.opts.SyncTimeout)
	_ = st.SetDeadline(deadline)
	cs.Stream = st
	defer s.countSync(cs)
	st = cs
	r := bufio.NewReader(st)

	s.mu.Lock()
	mine := s.m.Context()
	s.mu.Unlock()
	if err := writeFrame(st, frameContext, ormap.EncodeContext(mine)); err != nil {
		return err
	}
	rd := s.reading(false, deadline)
	d, equal, done, err := s.readDelta(p, r, rd)
	defer done() // the frame stays accounted until joined
	if err != nil || equal {
		return err
	}
	theirs, err := s.readContext(p, r, rd)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.learnWriterLocked(d.Origin(), p) // a diff comes from its sender's replica
	err = s.joinLocked(d, OriginRemote)
	var back ormap.Delta
	if err == nil {
		back = s.m.Diff(theirs)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if back.IsEmpty() {
		return writeFrame(st, frameEqual, nil)
	}
	return writeFrame(st, frameDelta, ormap.EncodeDelta(back))
}

// readFrameFrom reads a frame from p under the store's read gate,
// counting and logging one refused for its length.
func (s *Store) readFrameFrom(p string, r *bufio.Reader, limit int, rd reading) (frame, error) {
	f, err := readFrame(r, limit, rd)
	if errors.Is(err, errFrameLimit) {
		s.refuse(p, limitFrame)
	}
	return f, err
}

// readDelta reads a delta frame (of at most MaxSyncFrame bytes), or an
// "equal" frame (nothing to join). done releases the frame's memory
// accounting: call it once the delta is joined, whatever the error.
func (s *Store) readDelta(p string, r *bufio.Reader, rd reading) (d ormap.Delta, equal bool, done func(), err error) {
	f, err := s.readFrameFrom(p, r, s.opts.MaxSyncFrame, rd)
	done = f.release
	if err != nil {
		return d, false, done, err
	}
	switch f.kind {
	case frameEqual:
		return d, true, done, nil
	case frameBusy:
		return d, false, done, errBusy
	case frameDelta:
	default:
		return d, false, done, fmt.Errorf("%w: frame kind %d, want a delta", ErrProtocol, f.kind)
	}
	if d, err = ormap.DecodeDelta(f.payload, s.syncLim); err != nil {
		return d, false, done, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if err = checkRemoteKeys(d); err != nil {
		return d, false, done, err
	}
	return d, false, done, nil
}

// readContext reads a context frame: a sync request, or the context of a
// reply. It is bounded by contextLimits (and MaxSyncFrame, if smaller).
func (s *Store) readContext(p string, r *bufio.Reader, rd reading) (ormap.Context, error) {
	lim := contextLimits(s.syncLim)
	f, err := s.readFrameFrom(p, r, s.contextFrameLimit(), rd)
	defer f.release()
	if err != nil {
		return ormap.Context{}, err
	}
	if f.kind != frameContext {
		return ormap.Context{}, fmt.Errorf("%w: frame kind %d, want a context", ErrProtocol, f.kind)
	}
	c, err := ormap.DecodeContext(f.payload, lim)
	if err != nil {
		return ormap.Context{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return c, nil
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
	deadline := time.Now().Add(s.opts.SyncTimeout)
	_ = st.SetDeadline(deadline)
	rd := s.reading(true, deadline)
	cs := &countingStream{Stream: st}
	// A peer over its rate or reply budget is answered "busy".
	if lim := s.allowServe(p); lim != limitNone {
		s.refuse(p, lim)
		s.answerBusy(p, cs, rd)
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
		if s.answerBusy(p, cs, rd) {
			s.stats.syncBusy.Add(1)
		}
		s.noteSyncEnd(p, fmt.Errorf("%w: catching up with another peer", errAnsweredBusy), int(cs.bytes()))
		return
	}
	s.noteSyncStart(p, cs)
	err := s.serveSync(p, cs, rd)
	s.noteSyncStop(p, cs)
	s.countSync(cs)
	s.noteSyncEnd(p, err, int(cs.bytes()))
	if err != nil {
		_ = st.Reset()
		s.stats.syncFailures.Add(1)
		s.warnSyncFailure("crdtstore: serving sync failed", p, err)
	} else {
		_ = st.Close()
		s.stats.syncServed.Add(1)
	}
	if claimed {
		s.release(p, err == nil)
	} else if err == nil {
		s.markSynced(p)
	}
}

// answerBusy reads p's request and answers "busy", closing the stream (or
// resetting it, and returning false, if that fails).
func (s *Store) answerBusy(p string, cs *countingStream, rd reading) bool {
	_, err := s.readContext(p, bufio.NewReader(cs), rd)
	if err == nil {
		err = writeFrame(cs, frameBusy, nil)
	}
	s.countSync(cs)
	if err != nil {
		_ = cs.Reset()
		return false
	}
	_ = cs.Close()
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

// serveSync runs the responder's side of the protocol; the stream has its
// deadline. The reply is charged to p's budget.
func (s *Store) serveSync(p string, st Stream, rd reading) error {
	r := bufio.NewReader(st)
	theirs, err := s.readContext(p, r, rd)
	if err != nil {
		return err
	}
	s.mu.Lock()
	mine := s.m.Context()
	equal := mine.Equal(theirs)
	var d ormap.Delta
	if !equal {
		d = s.m.Diff(theirs)
	}
	s.mu.Unlock()
	if equal {
		return writeFrame(st, frameEqual, nil)
	}
	delta, ctx := ormap.EncodeDelta(d), ormap.EncodeContext(mine)
	s.chargeServe(p, len(delta)+len(ctx))
	if err := writeFrame(st, frameDelta, delta); err != nil {
		return err
	}
	if err := writeFrame(st, frameContext, ctx); err != nil {
		return err
	}
	back, equal, done, err := s.readDelta(p, r, rd)
	defer done()
	if err != nil || equal {
		return err
	}
	s.mu.Lock()
	s.learnWriterLocked(back.Origin(), p)
	err = s.joinLocked(back, OriginRemote)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return nil
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
