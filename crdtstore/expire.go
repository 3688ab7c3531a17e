package crdtstore

import (
	"fmt"
	"math"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// expireBatch bounds the entries the expiry timer removes per hold of the
// store's lock; it goes on at once, lock released in between, if more are
// due.
const expireBatch = 1024

// SetTTL stores value under key, like Set, until ttl after its write time:
// then it disappears on every node, each by its own clock, and watchers see
// a Change with Deleted and Origin OriginExpired. A later Set of the key
// (SetTTL or not) replaces the value and its expiry. ttl must be positive
// (else ErrTTL).
//
// The write time is the writer's hybrid-logical-clock time, which is its
// wall clock unless it has seen a peer's clock ahead of its own. Nodes whose
// clocks differ see the value expire at moments that differ as much, and a
// node whose clock is ahead may remove it from the others a little early
// (when it sends them a sync reply). With siblings (concurrent Sets), each
// value expires on its own: the key keeps the others.
func (s *Store) SetTTL(key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: %v is not positive", ErrTTL, ttl)
	}
	return s.set(key, value, ttl)
}

// viewLocked returns the map as of now: expired entries left out. A store
// with no expiring entry does not read the clock. s.mu held; the view is
// valid until s.mu is released.
func (s *Store) viewLocked() ormap.View {
	if _, ok := s.m.NextExpiry(); !ok {
		return s.m.At(math.MinInt64)
	}
	return s.m.At(time.Now().UnixNano())
}

// armLocked wakes the expiry timer if the map's next expiry is earlier than
// the one it waits for; s.mu held.
func (s *Store) armLocked() {
	next, ok := s.m.NextExpiry()
	if !ok || s.armedOK && next >= s.armed {
		return
	}
	s.armed, s.armedOK = next, true
	select {
	case s.expKick <- struct{}{}:
	default:
	}
}

// expireLoop is the expiry timer: it sleeps until the earliest expiry (or
// until armLocked reports an earlier one), then removes what has expired
// and tells the watchers. It never polls: with no expiring entry it waits
// for a kick only.
func (s *Store) expireLoop() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		s.mu.Lock()
		next, ok := s.m.NextExpiry()
		s.armed, s.armedOK = next, ok
		s.mu.Unlock()
		if ok {
			t.Reset(time.Until(time.Unix(0, next)))
		} else {
			t.Stop()
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.expKick:
		case <-t.C:
			s.expireDue()
		}
	}
}

// expireDue removes the entries that have expired, expireBatch at a time.
func (s *Store) expireDue() {
	for more := true; more; {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		now := time.Now().UnixNano()
		var changes []ormap.Change
		changes, more = s.m.Expire(now, expireBatch)
		s.saveLocked() // not waited for: after a crash, the value expires again
		s.notifyChangesLocked(changes, s.m.At(now), OriginExpired)
		s.mu.Unlock()
	}
}

// notifyChangesLocked tells the watchers of changes of the map; v is the
// map at the time they happened. s.mu held.
func (s *Store) notifyChangesLocked(changes []ormap.Change, v ormap.View, origin Origin) {
	if len(s.watchers) == 0 {
		return
	}
	for _, c := range changes {
		e, ok := c.Entry, !c.Deleted
		if ok && e.Expired(v.Now()) {
			e, ok = v.Get(c.Key) // the new best has expired too: the next
		}
		if !ok {
			s.notifyLocked(Change{Entry: Entry{Key: c.Key}, Deleted: true, Origin: origin})
			continue
		}
		s.notifyLocked(Change{Entry: s.entry(c.Key, e, v.Siblings(c.Key)), Origin: origin})
	}
}
