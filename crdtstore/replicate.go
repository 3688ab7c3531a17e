package crdtstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// queueLocked adds a local delta to the ones waiting to be published; s.mu
// held. If too much is waiting (the network is slower than the writers), the
// oldest deltas are dropped: the peers detect the gap on the next delta and
// repair it by sync.
func (s *Store) queueLocked(d ormap.Delta, size int) {
	s.pending = append(s.pending, queued{d, size})
	s.pendSize += size
	for s.pendSize > maxPendingBytes && len(s.pending) > 1 {
		s.pendSize -= s.pending[0].size
		s.pending = s.pending[1:]
		s.stats.deltasDropped.Add(1)
	}
}

// queued is a local delta waiting to be published, with its approximate
// encoded size.
type queued struct {
	d    ormap.Delta
	size int
}

func (s *Store) kickFlusher() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flushLoop publishes local deltas. There is no timer: when the loop is
// idle a write goes out at once, and writes made while it is publishing are
// merged and sent together next (natural batching).
func (s *Store) flushLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
			s.flush()
		}
	}
}

// flush publishes every pending delta, merged into chunks that stay within
// deltaBudget and MaxValueLen by their estimated size (so within what the
// peers accept, MaxDeltaBytes), unless one delta alone is larger. One flush
// runs at a time: a Flush (or Close) that comes while the flusher publishes
// waits for it, so that when it returns every earlier write has been handed
// to the transport, in order.
func (s *Store) flush() {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	pending := s.pending
	s.pending, s.pendSize = nil, 0
	s.mu.Unlock()
	budget := min(deltaBudget, s.opts.MaxValueLen)
	for len(pending) > 0 {
		n, size := 0, 0
		for n < len(pending) && (n == 0 || size+pending[n].size <= budget) {
			size += pending[n].size
			n++
		}
		ds := make([]ormap.Delta, n)
		for i := range ds {
			ds[i] = pending[i].d
		}
		d := mergeAll(ds)
		pending = pending[n:]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.tr.Publish(ctx, ormap.EncodeDelta(d))
		cancel()
		if err != nil {
			s.stats.deltasDropped.Add(1)
			s.log.Debug("crdtstore: publish delta failed; peers will sync", "err", err)
			continue
		}
		s.stats.deltasSent.Add(1)
	}
}

// mergeAll merges deltas pairwise, in O(n log n) rather than the O(n²) of
// folding them one by one into a growing delta.
func mergeAll(ds []ormap.Delta) ormap.Delta {
	switch len(ds) {
	case 0:
		return ormap.Delta{}
	case 1:
		return ds[0]
	}
	mid := len(ds) / 2
	return mergeAll(ds[:mid]).Merge(mergeAll(ds[mid:]))
}

// decodeDelta decodes a delta received from the transport, which calls it
// once per delta before delivery (and, on pub/sub, before relaying): one
// that does not decode, is not the writes of one replica (a sync reply, no
// origin, entries of other replicas: ormap.Delta.CheckOwn), or holds a key
// Set would refuse (checkRemoteKeys), is refused there and reaches neither
// onDelta nor other peers.
func (s *Store) decodeDelta(data []byte) (ormap.Delta, error) {
	s.noteReceived(len(data))
	d, err := ormap.DecodeDelta(data, s.deltaLim)
	if err == nil {
		if err = d.CheckOwn(); err != nil {
			s.stats.deltasForged.Add(1)
		}
	}
	if err == nil {
		err = checkRemoteKeys(d)
	}
	if err != nil {
		s.stats.deltasInvalid.Add(1)
	}
	return d, err
}

// Refusals of a received delta by the causality guard (see doc.go, "Trust").
var (
	errNotBound     = errors.New("crdtstore: the delta's origin replica is not its sender's")
	errPeerReplicas = errors.New("crdtstore: the sender introduced too many replicas")
)

// maxReplicasPerPeer bounds the replica ids one peer may introduce by the
// deltas it publishes (an origin this store did not know, joined at once):
// one per incarnation of its store (a restart makes a new one). Beyond it
// the peer's deltas of new replicas are refused; their writes still arrive
// by sync. It is a share, not the bound: a delta held and joined later is
// not counted, and the replica table's own bound (ormap.Bounds) holds
// whatever the count says.
const maxReplicasPerPeer = 256

// guardState is the causality guard's state; Store.mu guards it.
type guardState struct {
	// introduced counts, per peer, the replicas its deltas made this store
	// know; every count is at most the store's replicas, so the map holds
	// at most ormap.DefaultMaxReplicas peers.
	introduced map[string]int
	lastWarn   time.Time // of warnLocked
	suppressed int       // warnings not logged since lastWarn
}

// onDelta applies a delta published by peer from, if from may send it: its
// origin replica must be from's (replicaOf), not this store's, and a new
// replica must be within from's quota. Join may still refuse it (a dot of
// this replica never minted, beyond the bounds) or hold it until what it
// claims arrives (ormap.Map.JoinFrom, on from's account). A delta that
// reveals missed ones triggers a sync with its sender.
func (s *Store) onDelta(from string, d ormap.Delta) {
	s.stats.deltasReceived.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	origin := d.Origin()
	isNew := !s.m.Knows(origin)
	var err error
	switch {
	case origin == s.m.Replica() || !ownsReplica(from, origin):
		err = errNotBound
		s.stats.deltasForged.Add(1)
	case isNew && s.guard.introduced[from] >= maxReplicasPerPeer:
		err = errPeerReplicas
		s.stats.deltasOverBounds.Add(1)
	}
	gap := false
	if err == nil {
		gap = s.m.HasGap(d)
		ready := !gap || s.m.Ready(d) // HasGap reports a delta not ready
		// The origin is from's (ownsReplica, above): known before the join,
		// so that the changes it notifies name their writer's peer.
		s.learnWriterLocked(origin, from)
		err = s.joinFromLocked(d, OriginRemote, from)
		if err == nil {
			s.noteDeltaLocked(from, d, ready, gap)
		}
		if err == nil && s.m.Knows(origin) { // not if held
			if isNew {
				if s.guard.introduced == nil {
					s.guard.introduced = make(map[string]int)
				}
				s.guard.introduced[from]++
			}
		}
	}
	if err != nil {
		if !errors.Is(err, ormap.ErrBounds) && !errors.Is(err, ormap.ErrForeignDot) { // logged by joinFromLocked
			s.warnLocked("crdtstore: refusing a delta", "from", s.peerText(from), "err", err)
		}
		s.mu.Unlock()
		s.stats.deltasInvalid.Add(1)
		return
	}
	s.mu.Unlock()
	if gap {
		s.stats.gaps.Add(1)
		select {
		case s.gapCh <- from:
		default: // flooded: periodic syncs will catch up
		}
	}
}

// warnLocked logs a refusal at Warn, at most once every 10 seconds (with
// the number of refusals not logged since), else at Debug; s.mu held.
func (s *Store) warnLocked(msg string, args ...any) {
	now := time.Now()
	if now.Sub(s.guard.lastWarn) < 10*time.Second {
		s.guard.suppressed++
		s.log.Debug(msg, args...)
		return
	}
	if s.guard.suppressed > 0 {
		args = append(args, "suppressed", s.guard.suppressed)
	}
	s.guard.lastWarn, s.guard.suppressed = now, 0
	s.log.Warn(msg, args...)
}

// Replica ids are self-certifying: 8 random bytes, then the first 8 bytes
// of SHA-256(replicaTag, the 8 bytes, the peer id of the store's node). Any
// store checks that a delta's origin belongs to the peer that published it
// (pub/sub reports the author), with no table an attacker could fill or
// race: claiming another peer's replica, or minting one for it, takes
// about 2^64 hashes (and the attacker's peer id is fixed by its key).
const (
	replicaNonceLen = 8
	replicaTag      = "reflect/crdtstore/replica/v1\x00"
)

// newReplicaID returns a fresh replica id for the store of peer self.
func newReplicaID(self string) ([]byte, error) {
	rid := make([]byte, replicaNonceLen, replicaIDLen)
	if _, err := rand.Read(rid); err != nil {
		return nil, err
	}
	return append(rid, replicaMAC(self, rid)...), nil
}

func replicaMAC(peer string, nonce []byte) []byte {
	h := sha256.New()
	h.Write([]byte(replicaTag))
	h.Write(nonce)
	h.Write([]byte(peer))
	return h.Sum(nil)[:replicaIDLen-replicaNonceLen]
}

// ownsReplica reports whether replica r is one of peer's (newReplicaID).
func ownsReplica(peer string, r ormap.ReplicaID) bool {
	if len(r) != replicaIDLen {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(r[replicaNonceLen:]), replicaMAC(peer, []byte(r[:replicaNonceLen]))) == 1
}

// maxWriters bounds the replica → peer map: replicas of nodes met since
// Open, a few per restart of each; at most one per replica the map knows,
// plus a few it does not know yet.
const maxWriters = ormap.DefaultMaxReplicas + 64

// learnWriterLocked records that replica r is the store of peer from (the
// node that published r's delta, or answered a sync from r), if r is
// from's (ownsReplica); s.mu held.
func (s *Store) learnWriterLocked(r ormap.ReplicaID, from string) {
	if _, ok := s.writers[r]; ok || !ownsReplica(from, r) {
		return
	}
	if len(s.writers) >= maxWriters {
		for w := range s.writers {
			if !s.m.Knows(w) {
				delete(s.writers, w) // learnt from a delta refused or still held
			}
		}
		if len(s.writers) >= maxWriters {
			return
		}
	}
	s.writers[r] = from
}

// joinLocked joins d, a sync reply, on the sync path; s.mu held. A sync
// reply is a Diff: global, without deps, so it never waits; anything else
// is refused, and so is a reply that claims dots this replica never minted
// or would make the store know more replicas or context intervals than its
// peers decode (ormap.ErrBounds).
func (s *Store) joinLocked(d ormap.Delta, origin Origin) error {
	if d.Keyed() || !d.Deps().IsEmpty() {
		s.stats.deltasForged.Add(1)
		return errNotDiff
	}
	if err := s.joinFromLocked(d, origin, ""); err != nil {
		return err
	}
	s.noteSyncReplyLocked(d)
	return nil
}

// errNotDiff refuses a sync reply that is not a Diff.
var errNotDiff = errors.New("crdtstore: a sync reply that is not a diff")

// joinFromLocked joins d, received from src, moves the clock past it, tells
// the watchers and arms the expiry timer for the expiring values d brought;
// s.mu held. A value that arrives already expired is not stored (see
// ormap.Map.JoinAt).
func (s *Store) joinFromLocked(d ormap.Delta, origin Origin, src string) error {
	return s.applyLocked(d.MaxTime(), origin, src, func(now int64) ([]ormap.Change, error) {
		return s.m.JoinFrom(d, now, src)
	})
}

// joinChunkLocked joins ch, a chunk of a sync reply from p, as
// joinFromLocked joins a delta; s.mu held.
func (s *Store) joinChunkLocked(ch ormap.Chunk, p string) error {
	d := ch.Delta()
	err := s.applyLocked(d.MaxTime(), OriginRemote, p, func(now int64) ([]ormap.Change, error) {
		return s.m.JoinChunk(ch, now)
	})
	if err == nil {
		s.noteSyncReplyLocked(d)
	}
	return err
}

// joinContextLocked joins c, the context that ends a chunked sync reply
// from p, once its removals and every chunk were joined in order (see
// ormap.Map.JoinContext); s.mu held.
func (s *Store) joinContextLocked(c ormap.Context, p string) error {
	err := s.applyLocked(ormap.Timestamp{}, OriginRemote, p, func(now int64) ([]ormap.Change, error) {
		return s.m.JoinContext(c, now)
	})
	if err == nil {
		s.checkCaughtUpLocked(s.now())
	}
	return err
}

// applyLocked runs join (a join into s.m at wall time now, from src),
// moves the clock past maxTime, the newest write it brings, saves it,
// tells the watchers and arms the expiry timer; s.mu held.
func (s *Store) applyLocked(maxTime ormap.Timestamp, origin Origin, src string, join func(now int64) ([]ormap.Change, error)) error {
	now := time.Now().UnixNano()
	dropped := s.m.PendingStats().Dropped
	changes, err := join(now)
	s.stats.pendingDropped.Add(s.m.PendingStats().Dropped - dropped)
	switch {
	case errors.Is(err, ormap.ErrBounds):
		s.stats.deltasOverBounds.Add(1)
		s.warnLocked("crdtstore: refusing a delta beyond the replica or context bounds", "from", s.peerText(src), "err", err)
		return err
	case errors.Is(err, ormap.ErrForeignDot):
		s.stats.deltasForged.Add(1)
		s.warnLocked("crdtstore: refusing a delta that claims this replica's dots", "from", s.peerText(src), "err", err)
		return err
	case err != nil:
		return err
	}
	s.clock.Observe(maxTime, now)
	s.saveLocked() // not waited for: a crash loses it, a sync brings it back
	s.notifyChangesLocked(changes, s.m.At(now), origin)
	s.armLocked()
	return nil
}

// Flush publishes the local changes not yet sent and waits until the
// transport has handed them to the network (for a node: written to every
// peer's connection), or ctx ends. Set and Delete never wait; call Flush
// when a program must know its writes left, e.g. before it exits (Close
// flushes too).
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	s.flush()
	return s.tr.Flush(ctx)
}
