package crdtstore

import (
	"context"
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
// that does not decode is refused there and reaches neither onDelta nor
// other peers.
func (s *Store) decodeDelta(data []byte) (ormap.Delta, error) {
	d, err := ormap.DecodeDelta(data, s.deltaLim)
	if err != nil {
		s.stats.deltasInvalid.Add(1)
	}
	return d, err
}

// onDelta applies a delta published by peer from. A delta Join refuses
// changes nothing. A delta that reveals missed ones triggers a sync with its
// sender.
func (s *Store) onDelta(from string, d ormap.Delta) {
	s.stats.deltasReceived.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	gap := s.m.HasGap(d)
	s.learnWriterLocked(d.Origin(), from)
	if err := s.joinLocked(d, OriginRemote); err != nil {
		s.mu.Unlock()
		s.stats.deltasInvalid.Add(1)
		s.log.Debug("crdtstore: refusing delta", "from", from, "err", err)
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

// maxWriters bounds the replica → peer map: replicas of nodes met since
// Open, a few per restart of each.
const maxWriters = 4096

// learnWriterLocked records that replica r is the store of peer from (the
// node that published r's delta); s.mu held.
func (s *Store) learnWriterLocked(r ormap.ReplicaID, from string) {
	if _, ok := s.writers[r]; ok || r == "" {
		return
	}
	if len(s.writers) >= maxWriters {
		clear(s.writers)
		s.writers[s.m.Replica()] = s.tr.Self()
	}
	s.writers[r] = from
}

// joinLocked joins d, moves the clock past it, tells the watchers and arms
// the expiry timer for the expiring values d brought; s.mu held. A value
// that arrives already expired is not stored (see ormap.Map.JoinAt).
func (s *Store) joinLocked(d ormap.Delta, origin Origin) error {
	now := time.Now().UnixNano()
	changes, err := s.m.JoinAt(d, now)
	if err != nil {
		return err
	}
	s.clock.Observe(d.MaxTime(), now)
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
