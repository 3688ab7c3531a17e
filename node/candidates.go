package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// mDNS candidates.
//
// A peer found by mDNS is only a hint: anyone on the LAN can advertise
// under the mesh's service name (it is visible in every advert) with any
// peer id and address. Until it connects, which takes the network key, it
// is a candidate, kept apart from the members (peers that were connected,
// bootstrap peers, peers given to Connect):
//
//   - the table holds at most maxCandidates; a new advert replaces a
//     candidate that has failed a dial, or is dropped if none has;
//   - one goroutine dials them, at most maxCandidateDials at a time, with
//     slots of their own: the members' redials never wait for a candidate;
//   - a candidate whose dial fails is retried after a backoff and forgotten
//     after maxCandidateAttempts failures, or candidateTTL after its advert,
//     whichever comes first (a flood of adverts outnumbers the dial slots);
//   - a candidate that connects becomes a member; an advert naming a member
//     only adds hint addresses to it and can neither replace its addresses
//     nor remove it.
const (
	maxCandidates        = 256
	maxCandidateDials    = 4
	maxCandidateAttempts = 3
	candidateTTL         = time.Minute
	// maxAdvertAddrs bounds the addresses taken from one advert.
	maxAdvertAddrs = 8
	// expiryBatches: a candidate may be forgotten up to its time-to-live
	// divided by expiryBatches late (10 s of candidateTTL), so that the
	// dialer wakes to forget every candidate of those 10 s at once.
	expiryBatches = 6
	// idleWait is how long the candidate dialer sleeps with nothing due;
	// a new candidate or a finished dial wakes it sooner.
	idleWait = time.Hour
)

// candidate is a peer found by mDNS that has not connected yet.
type candidate struct {
	addrs    []ma.Multiaddr
	added    time.Time // when the advert was taken into the table
	due      time.Time // when to dial next
	attempts int       // failed dials
	dialing  bool
}

// candidateTable holds the candidates. It has no clock and no goroutine of
// its own: members drives it under its lock.
type candidateTable struct {
	byID map[peer.ID]*candidate
	ttl  time.Duration // candidateTTL; shorter in tests
}

func newCandidateTable() candidateTable {
	return candidateTable{byID: make(map[peer.ID]*candidate), ttl: candidateTTL}
}

// addResult says what add did with an advert.
type addResult int

const (
	candUpdated addResult = iota // known already: its addresses replaced
	candAdded                    // taken into the table
	candEvicted                  // taken in place of a candidate that had failed
	candDropped                  // table full of candidates not yet tried: ignored
)

// add takes p into the table, to be dialled at due.
func (t *candidateTable) add(p peer.ID, addrs []ma.Multiaddr, now, due time.Time) addResult {
	if c := t.byID[p]; c != nil {
		c.addrs = addrs
		return candUpdated
	}
	res := candAdded
	if len(t.byID) >= maxCandidates {
		victim, ok := t.evictable()
		if !ok {
			return candDropped
		}
		delete(t.byID, victim)
		res = candEvicted
	}
	t.byID[p] = &candidate{addrs: addrs, added: now, due: due}
	return res
}

// evictable returns the candidate a new advert may replace: one not being
// dialled that has failed, the most failures first, then the oldest.
func (t *candidateTable) evictable() (peer.ID, bool) {
	var best peer.ID
	var bc *candidate
	for p, c := range t.byID {
		if c.dialing || c.attempts == 0 {
			continue
		}
		if bc == nil || c.attempts > bc.attempts || (c.attempts == bc.attempts && c.added.Before(bc.added)) {
			best, bc = p, c
		}
	}
	return best, bc != nil
}

// expire forgets the candidates not being dialled whose advert is older
// than the table's ttl, and returns how many it forgot and how long until
// the next one expires (or idleWait).
func (t *candidateTable) expire(now time.Time) (int, time.Duration) {
	forgotten, wait := 0, idleWait
	for p, c := range t.byID {
		if c.dialing {
			continue
		}
		left := c.added.Add(t.ttl).Sub(now)
		if left <= 0 {
			delete(t.byID, p)
			forgotten++
			continue
		}
		wait = min(wait, left)
	}
	return forgotten, wait
}

// next returns the candidate to dial now: due and not being dialled, the
// fewest failures first, then the most recently advertised (a burst of
// forged adverts does not delay a peer advertised after it). With none due
// it returns how long until one is, or idleWait.
func (t *candidateTable) next(now time.Time) (peer.ID, *candidate, time.Duration) {
	var best peer.ID
	var bc *candidate
	wait := idleWait
	for p, c := range t.byID {
		if c.dialing {
			continue
		}
		if d := c.due.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		if bc == nil || c.attempts < bc.attempts || (c.attempts == bc.attempts && c.added.After(bc.added)) {
			best, bc = p, c
		}
	}
	if bc != nil {
		return best, bc, 0
	}
	return "", nil, wait
}

// failed records a failed dial of p: it is retried after retry, or
// forgotten (removed, forgotten true) after maxCandidateAttempts failures.
func (t *candidateTable) failed(p peer.ID, now time.Time, retry time.Duration) (forgotten bool) {
	c := t.byID[p]
	if c == nil {
		return false
	}
	c.dialing = false
	c.attempts++
	if c.attempts >= maxCandidateAttempts {
		delete(t.byID, p)
		return true
	}
	c.due = now.Add(retry)
	return false
}

// remove takes p out of the table and returns it, or nil.
func (t *candidateTable) remove(p peer.ID) *candidate {
	c := t.byID[p]
	delete(t.byID, p)
	return c
}
