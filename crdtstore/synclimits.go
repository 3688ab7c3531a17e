package crdtstore

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// Limits on what peers can make a store read, hold, compute and send
// through sync streams (issue 11). They hold against peers that do send
// what they declare:
//
//   - A context frame (the request that opens a sync, and the context of
//     a reply) is small: at most contextFrameBytes under contextLimits,
//     about 2.4 MB by default. Only delta and chunk frames may reach
//     MaxSyncFrame (an honest chunk is about chunkBudget).
//   - A frame's buffer grows as its bytes arrive, never to its declared
//     size at once; a body larger than smallFrame needs one of largeReads
//     slots, shared by every sync of the store and waited for within the
//     frame's deadline. Served streams take at most largeReads-1 of
//     them, so that peers opening syncs with us cannot hold up the replies
//     to those we start (a joiner's first sync). So the sync readers of a
//     store hold at most largeReads × MaxSyncFrame in large frames, plus
//     smallFrame per stream being read (at most two per peer: one we
//     started, one served).
//   - A peer has at most one served stream: a new one resets the one
//     running, since a peer starts one sync with us at a time and so has
//     given up on it.
//   - A peer may ask for serveBurst syncs at once, then serveRate per
//     second, plus one each time it (re)joins (its sync on connect); and
//     it may take MaxSyncFrame bytes of replies at once, refilled at
//     MaxSyncFrame per serveBytesWindow. A reply starts only while its
//     budget is not in debt and is charged frame by frame as it is
//     encoded; a reply that started is finished (a joiner takes the whole
//     store), so a peer takes at most MaxSyncFrame plus one whole store
//     plus the refill over any period, and each such reply puts it in debt
//     for as long as the refill takes to repay it. Beyond either limit the
//     request is answered "busy", which honest peers retry shortly — but
//     over the budget only if this replica knows something the request's
//     context lacks: a peer in sync costs a round trip and is always
//     answered.
//
// Each refusal is counted in Stats and logged at Warn, at most once per
// peer per warnEvery.
//
// The state of a peer outlives its connection (reconnecting does not
// refill a budget) until its buckets are full again.
const (
	// contextIntervalsPerReplica bounds a context frame's intervals, per
	// replica the limits allow. An honest context has about one interval
	// per replica (gaps are transient: a sync fills them).
	contextIntervalsPerReplica = 16
	// defaultMaxReplicas is ormap's default Limits.MaxReplicas.
	defaultMaxReplicas = 4096

	// smallFrame is the largest frame body read without a large-read slot.
	smallFrame = 1 << 20
	// largeReads is how many frame bodies larger than smallFrame the sync
	// readers of a store read at once; served streams, one less.
	largeReads = 2
	// frameChunk is a frame buffer's first size and the least it grows by.
	frameChunk = 64 << 10

	// serveBurst and serveRate are a peer's token bucket of served syncs.
	serveBurst = 64
	serveRate  = 20 // per second
	// serveBytesWindow is the time a peer's reply budget (MaxSyncFrame
	// bytes) takes to refill.
	serveBytesWindow = time.Minute

	// warnEvery is the least time between two Warn logs about one peer.
	warnEvery = 10 * time.Second
)

// errFrameLimit marks a frame refused for its declared length.
var errFrameLimit = errors.New("frame over the limit")

// errReadSlot is a frame that found no large-read slot before the deadline.
var errReadSlot = errors.New("crdtstore: no slot to read a large sync frame before the deadline")

// contextLimits are the decoder limits of a context frame, derived from
// the sync limits l: their replicas (ormap's default if unset) and
// contextIntervalsPerReplica intervals per replica (fewer if l says so).
func contextLimits(l ormap.Limits) ormap.Limits {
	reps := l.MaxReplicas
	if reps <= 0 {
		reps = defaultMaxReplicas
	}
	ivs := reps * contextIntervalsPerReplica
	if l.MaxIntervals > 0 {
		ivs = min(ivs, l.MaxIntervals)
	}
	return ormap.Limits{MaxReplicas: reps, MaxIntervals: ivs, MaxFrameBytes: contextFrameBytes(reps, ivs)}
}

// contextFrameLimit is the longest context frame the store reads, its
// kind byte included.
func (s *Store) contextFrameLimit() int {
	return min(contextLimits(s.syncLim).MaxFrameBytes+1, s.opts.MaxSyncFrame)
}

// contextFrameBytes bounds the encoding of a context of at most reps
// replicas and ivs intervals: the version and kind bytes; the replica table
// (a count, and per replica a length and at most MaxReplicaIDLen bytes);
// the rows (a count, and per replica an index and an interval count); two
// counters per interval. Every number is a uvarint of at most
// MaxVarintLen64 bytes.
func contextFrameBytes(reps, ivs int) int {
	const uv = binary.MaxVarintLen64
	return 2 + uv + reps*(uv+ormap.MaxReplicaIDLen) + uv + reps*2*uv + ivs*2*uv
}

// readGate bounds the memory the sync readers of a store hold: it counts
// their buffers and hands out the large-read slots. The zero value is
// ready.
type readGate struct {
	buffered atomic.Int64 // bytes of frame buffers held now
	peak     atomic.Int64 // the most buffered ever held
	waits    atomic.Uint64

	mu     sync.Mutex
	large  int           // slots taken
	served int           // of which by served streams
	wake   chan struct{} // closed when a slot is freed; nil if no one waits
}

// hold accounts n more (or, negative, fewer) buffered bytes.
func (g *readGate) hold(n int) {
	if g == nil {
		return
	}
	b := g.buffered.Add(int64(n))
	for {
		p := g.peak.Load()
		if b <= p || g.peak.CompareAndSwap(p, b) {
			return
		}
	}
}

// acquire takes a large-read slot for a served stream or one we started,
// waiting until deadline or done.
func (g *readGate) acquire(served bool, deadline time.Time, done <-chan struct{}) error {
	var t *time.Timer
	for {
		g.mu.Lock()
		if g.large < largeReads && (!served || g.served < largeReads-1) {
			g.large++
			if served {
				g.served++
			}
			g.mu.Unlock()
			if t != nil {
				t.Stop()
			}
			return nil
		}
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		wake := g.wake
		g.mu.Unlock()
		if t == nil {
			g.waits.Add(1)
			t = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-wake:
		case <-t.C:
			return errReadSlot
		case <-done:
			t.Stop()
			return context.Canceled
		}
	}
}

// release frees a large-read slot.
func (g *readGate) release(served bool) {
	g.mu.Lock()
	g.large--
	if served {
		g.served--
	}
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
	g.mu.Unlock()
}

// limit names a limit that refused a peer (for Stats and logs).
type limit int

const (
	limitNone    limit = iota
	limitStreams       // a second served stream reset the first
	limitRate          // served syncs per second
	limitBudget        // reply bytes per serveBytesWindow
	limitFrame         // a frame longer than allowed
	limitCount         // the number of limits
)

var limitNames = [limitCount]string{
	limitStreams: "one served sync stream at a time (the older one reset)",
	limitRate:    "served syncs per second",
	limitBudget:  "bytes of sync replies per minute",
	limitFrame:   "sync frame size",
}

// syncLimits is a store's state for the limits: the read gate, each peer's
// buckets and served stream, and the counts. The zero value is ready.
type syncLimits struct {
	gate    readGate
	refused [limitCount]atomic.Uint64

	mu    sync.Mutex
	peers map[string]*peerLimits
}

// peerLimits is one peer's state.
type peerLimits struct {
	served Stream    // the served stream running, or nil
	gen    uint64    // counts served streams, to end only one's own
	tokens float64   // served syncs it may ask for now
	budget float64   // reply bytes it may take; negative: debt
	at     time.Time // when tokens and budget were last refilled
	warned time.Time // last Warn about it
	quiet  int       // refusals since, not logged
}

// peerLimitsLocked returns p's state, refilled to now; s.lim.mu held.
func (s *Store) peerLimitsLocked(p string, now time.Time) *peerLimits {
	l := &s.lim
	pl := l.peers[p]
	if pl == nil {
		if l.peers == nil {
			l.peers = map[string]*peerLimits{}
		}
		pl = &peerLimits{tokens: serveBurst, budget: float64(s.opts.MaxSyncFrame), at: now}
		l.peers[p] = pl
		return pl
	}
	dt := now.Sub(pl.at).Seconds()
	if dt > 0 {
		pl.tokens = min(serveBurst, pl.tokens+dt*serveRate)
		pl.budget = min(float64(s.opts.MaxSyncFrame), pl.budget+dt*float64(s.opts.MaxSyncFrame)/serveBytesWindow.Seconds())
		pl.at = now
	}
	return pl
}

// admitServed records st as p's served stream and resets the one running
// before, if any. It returns the generation to pass to endServed.
func (s *Store) admitServed(p string, st Stream) uint64 {
	s.lim.mu.Lock()
	pl := s.peerLimitsLocked(p, time.Now())
	old := pl.served
	pl.gen++
	pl.served = st
	gen := pl.gen
	s.lim.mu.Unlock()
	if old != nil {
		_ = old.Reset()
		s.refuse(p, limitStreams)
	}
	return gen
}

// endServed ends p's served stream of generation gen, unless a newer one
// replaced it.
func (s *Store) endServed(p string, gen uint64) {
	s.lim.mu.Lock()
	if pl := s.lim.peers[p]; pl != nil && pl.gen == gen {
		pl.served = nil
	}
	s.lim.mu.Unlock()
}

// allowServe takes one of p's served-sync tokens and checks its reply
// budget; it returns the limit that refuses, or limitNone.
func (s *Store) allowServe(p string) limit {
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	pl := s.peerLimitsLocked(p, time.Now())
	switch {
	case pl.tokens < 1:
		return limitRate
	case pl.budget <= 0:
		pl.tokens--
		return limitBudget
	}
	pl.tokens--
	return limitNone
}

// chargeServe charges n reply bytes to p's budget.
func (s *Store) chargeServe(p string, n int) {
	s.lim.mu.Lock()
	s.peerLimitsLocked(p, time.Now()).budget -= float64(n)
	s.lim.mu.Unlock()
}

// creditJoin gives p one served sync more (up to the burst): the sync on
// connect of a peer that (re)joined is never refused for its rate.
func (s *Store) creditJoin(p string) {
	s.lim.mu.Lock()
	pl := s.peerLimitsLocked(p, time.Now())
	pl.tokens = min(serveBurst, pl.tokens+1)
	s.lim.mu.Unlock()
}

// sweepLimits forgets the peers whose state is as a new peer's would be:
// no served stream, full buckets, no Warn for warnEvery (refusals not
// logged yet stay counted in Stats).
func (s *Store) sweepLimits() {
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	now := time.Now()
	for p := range s.lim.peers {
		pl := s.peerLimitsLocked(p, now)
		if pl.served == nil && pl.tokens >= serveBurst && pl.budget >= float64(s.opts.MaxSyncFrame) && now.Sub(pl.warned) >= warnEvery {
			delete(s.lim.peers, p)
		}
	}
}

// refuse counts a refusal of p by lim and logs it at Warn, at most once
// per peer per warnEvery (with the refusals not logged since).
func (s *Store) refuse(p string, lim limit) {
	s.lim.refused[lim].Add(1)
	s.lim.mu.Lock()
	pl := s.peerLimitsLocked(p, time.Now())
	pl.quiet++
	if time.Since(pl.warned) < warnEvery {
		s.lim.mu.Unlock()
		return
	}
	n := pl.quiet
	pl.quiet = 0
	pl.warned = time.Now()
	s.lim.mu.Unlock()
	s.log.Warn("crdtstore: sync limit refused a peer", "peer", peerName(p), "limit", limitNames[lim], "refusals", n)
}

// peerName is p as logs show it: a libp2p peer id in its text form, any
// other transport's id as it is.
func peerName(p string) string {
	if id, err := peer.IDFromBytes([]byte(p)); err == nil {
		return id.String()
	}
	return p
}
