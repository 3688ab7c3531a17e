package crdtstore

import (
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// Replica lag and last sync per peer (PeerSyncStatus). The clock is read
// here, in the store; package ormap stays pure.

// peerLag is how far behind this store is with one peer's writes (see
// PeerSyncStatus.Lag); Store.mu guards it.
type peerLag struct {
	newest    int64         // HLC wall time of the newest write of the peer applied here
	lastWrite time.Time     // local time it was applied
	lag       time.Duration // lastWrite − newest, at least 0
	// While behind: the write time of the oldest write of the peer held
	// here (waiting for dots it needs) or revealing missed ones (a gap),
	// and of the newest of those; behind is 0 when caught up. gapRep is
	// the replica whose row has the gap.
	behind, heldMax int64
	gapRep          ormap.ReplicaID
}

// applied records a write of the peer written at wall time t (0 if
// unknown: a delete carries no time) and applied here at now.
func (l *peerLag) applied(t int64, now time.Time) {
	switch {
	case t == 0:
		l.lastWrite = now
	case t > l.newest:
		l.newest, l.lastWrite = t, now
		l.lag = max(0, now.Sub(time.Unix(0, t)))
	}
}

// held records a write of the peer written at t (0 if unknown) that is held
// here or revealed a gap in rep's writes; it reports whether the peer was
// not behind before.
func (l *peerLag) held(t int64, rep ormap.ReplicaID, now time.Time) (started bool) {
	if t == 0 {
		t = now.UnixNano()
	}
	started = l.behind == 0
	if started || t < l.behind {
		l.behind = t
	}
	l.heldMax = max(l.heldMax, t)
	l.gapRep = rep
	return started
}

// caughtUp ends the lag of held and missed writes: they are all here now.
func (l *peerLag) caughtUp(now time.Time) {
	if l.behind == 0 {
		return
	}
	l.applied(l.heldMax, now)
	l.behind, l.heldMax, l.gapRep = 0, 0, ""
}

// at returns the lag at now: how long the oldest held or missed write has
// waited, if any; else the lag of the newest write when it was applied.
func (l *peerLag) at(now time.Time) time.Duration {
	if l.behind != 0 {
		return max(0, now.Sub(time.Unix(0, l.behind)))
	}
	return l.lag
}

// noteDeltaLocked records a delta of peer from's replica, joined (ready)
// or held; gap is HasGap's answer before the join. s.mu held.
func (s *Store) noteDeltaLocked(from string, d ormap.Delta, ready, gap bool) {
	ps := s.peers[from]
	if ps == nil {
		return
	}
	now := s.now()
	t := d.MaxTime().Wall
	if ready {
		ps.lag.applied(t, now)
	}
	if gap && ps.lag.held(t, d.Origin(), now) {
		s.lagging++
	}
	s.checkCaughtUpLocked(now)
}

// noteSyncReplyLocked records the writes a sync reply brought, each by the
// peer of its replica (s.writers); s.mu held.
func (s *Store) noteSyncReplyLocked(d ormap.Delta) {
	now := s.now()
	d.NewestWrites(func(r ormap.ReplicaID, t ormap.Timestamp) {
		if ps := s.peers[s.writers[r]]; ps != nil {
			ps.lag.applied(t.Wall, now)
		}
	})
	s.checkCaughtUpLocked(now)
}

// checkCaughtUpLocked ends the lag of each peer that was behind and has
// nothing held and no gap left; s.mu held. It does nothing unless a peer
// is behind, then costs O(1) per peer.
func (s *Store) checkCaughtUpLocked(now time.Time) {
	if s.lagging == 0 {
		return
	}
	for p, ps := range s.peers {
		l := &ps.lag
		if l.behind != 0 && s.m.PendingFrom(p) == 0 && s.m.Contiguous(l.gapRep) {
			l.caughtUp(now)
			s.lagging--
		}
	}
}

// forgetPeerLocked drops p's state (it left); s.mu held.
func (s *Store) forgetPeerLocked(p string) {
	if ps := s.peers[p]; ps != nil && ps.lag.behind != 0 {
		s.lagging--
	}
	delete(s.peers, p)
}

// noteSyncEnd records the end of a sync exchange with p, in either role:
// its error (nil if it succeeded) and the bytes it moved.
func (s *Store) noteSyncEnd(p string, err error, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	ps := s.peers[p]
	if ps == nil {
		return
	}
	ps.lastSync, ps.lastSyncBytes, ps.lastSyncErr = now, bytes, ""
	if err != nil {
		ps.lastSyncErr = err.Error()
	}
}
