package node

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/coarse"
)

// dialCandidates runs for the node's life (an owned goroutine): it dials
// the due candidates, at most maxCandidateDials at a time, each dial on a
// goroutine of its own that ends with it. A new candidate or a finished
// dial wakes it; so does the next due time.
func (ms *members) dialCandidates() {
	timer := time.NewTimer(idleWait)
	defer timer.Stop()
	for {
		timer.Reset(ms.startCandidateDials())
		select {
		case <-ms.ctx.Done():
			return
		case <-ms.candWake:
		case <-timer.C:
		}
	}
}

// wakeCandidates tells dialCandidates to look at the table again.
func (ms *members) wakeCandidates() {
	select {
	case ms.candWake <- struct{}{}:
	default:
	}
}

// startCandidateDials forgets the candidates past their time, starts the
// dials that are due and have a slot, and returns how long dialCandidates
// may sleep.
func (ms *members) startCandidateDials() time.Duration {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	expired, untilExpiry := ms.cands.expire(time.Now())
	// Expiry need not be punctual: forget the candidates in batches (a
	// partial mesh's node has dozens, added one by one), not one a wake-up.
	untilExpiry = coarse.Delay(untilExpiry + ms.cands.ttl/expiryBatches)
	if expired > 0 {
		ms.count.candidatesForgotten.Add(uint64(expired))
		ms.log.Debug("node: forgetting candidates not reached in time", "count", expired, "ttl", ms.cands.ttl)
	}
	// Only while the node has room for more peers (degree.go).
	for ms.candDialing < maxCandidateDials && ms.roomLocked(ms.candDialing) && ms.ctx.Err() == nil {
		p, c, wait := ms.cands.next(time.Now())
		if c == nil {
			return min(wait, untilExpiry)
		}
		if ms.fullLocked(p) {
			// A member with no room: it would trim a peer to take us,
			// and that peer would dial someone else (a mesh of 50 kept
			// churning so). Not a candidate: refill may pick it later.
			ms.cands.remove(p)
			continue
		}
		c.dialing = true
		ms.candDialing++
		ms.count.candidateDials.Add(1)
		ai := peer.AddrInfo{ID: p, Addrs: slices.Clone(c.addrs)}
		ms.log.Debug("node: dialling a candidate", "peer", p, "its_peers", ms.degrees[p], "peers", ms.nconn)
		ms.goOwned(func() { ms.dialCandidate(ai) })
	}
	return untilExpiry // every slot busy: a finishing dial wakes us
}

// dialCandidate dials one candidate once. Success makes it a member at
// once (before the connection event, which may come later, or not at all
// for a connection that closed at once); failure schedules a retry or
// forgets it.
func (ms *members) dialCandidate(ai peer.AddrInfo) {
	// Finished even if the node closes meanwhile: see connect.
	err := ms.dialOnce(ms.ctx, ai, true)
	connected := ms.h.Network().Connectedness(ai.ID) == network.Connected
	forgotten, promoted := false, false
	ms.mu.Lock()
	ms.candDialing--
	if c := ms.cands.byID[ai.ID]; c != nil {
		if err == nil || connected {
			ms.cands.remove(ai.ID)
			m := ms.peers[ai.ID]
			if m == nil {
				m = &member{lostAt: time.Now()}
				ms.peers[ai.ID] = m
			}
			if len(m.hints) == 0 {
				m.hints = c.addrs
			}
			promoted = true
		} else {
			retry := jitter(ms.cfg.ReconnectMax << c.attempts)
			forgotten = ms.cands.failed(ai.ID, time.Now(), retry)
		}
	}
	ms.mu.Unlock()
	if promoted {
		ms.dial(ai.ID, false) // nothing unless its connection is gone already
	}
	if err != nil && !connected {
		ms.count.candidateDialsFailed.Add(1)
		ms.log.Debug("node: candidate dial failed", "peer", ai.ID, "err", err)
	}
	if forgotten {
		ms.count.candidatesForgotten.Add(1)
		ms.log.Debug("node: forgetting a candidate that never answered", "peer", ai.ID, "attempts", maxCandidateAttempts)
	}
	ms.wakeCandidates()
}
