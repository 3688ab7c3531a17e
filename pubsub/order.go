package pubsub

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Per-publisher order.
//
// Batches of one publisher on one topic carry consecutive sequence numbers,
// whichever way they travel (router.go). On a fully connected mesh they
// arrive in order; where a copy is relayed (a partial mesh, or the moment
// before topology announcements arrive) it can overtake the direct one, and
// after a change of way a batch can overtake its predecessor. Every
// received batch, from GossipSub's validator or a direct stream's reader,
// goes through the topic's reorderer, which delivers each publisher's
// batches in sequence: it holds a batch that arrives ahead of its
// predecessor for at most reorderWait (or until reorderMaxHeld are
// waiting), then delivers what it has in order and skips the gap, so a lost
// batch never stalls a publisher's later messages for long.
//
// The first batch of a publisher starts its sequence, unless it carries
// flagSwitched: then its predecessor was sent the other way and may still
// come, so it waits for that one like for any gap (while batches before the
// predecessor are delivered as they come).
const (
	reorderWait    = 100 * time.Millisecond
	reorderMaxHeld = 256
	// reorderRestart: a jump this far ahead is a restarted publisher (its
	// numbers start at its clock), not a gap.
	reorderRestart = 1 << 32
)

type reorderer struct {
	deliver func(*batch)

	mu      sync.Mutex
	authors map[string]*authorOrder
	stats   struct{ held, skipped, late uint64 }
}

type authorOrder struct {
	next  uint64   // the sequence number expected next
	loose bool     // next came from a switched batch: earlier ones may still come
	held  []*batch // batches ahead of next, sorted by seq
	timer *time.Timer
}

func (r *reorderer) init(deliver func(*batch)) {
	r.deliver = deliver
	r.authors = map[string]*authorOrder{}
}

// add delivers b, or holds it until its predecessors arrive.
func (r *reorderer) add(b *batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(b)
}

// addUnlessSuperseded adds b unless it is superseded (a batch at or after
// it was delivered already: see superseded), which it reports by
// returning false. The check and the addition are one step: a batch
// delivered by jump in between cannot let an older one through.
func (r *reorderer) addUnlessSuperseded(b *batch) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.supersededLocked(b) {
		return false
	}
	r.addLocked(b)
	return true
}

// jump delivers b, a batch that came another way than its predecessors
// (a catch-up: catchup.go), as its author's latest: the batches held
// before it are older news and are dropped, and the sequence goes on
// after it. It reports false, delivering nothing, when b is superseded.
func (r *reorderer) jump(b *batch) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.supersededLocked(b) {
		return false
	}
	a := r.authors[string(b.author)]
	if a == nil {
		a = &authorOrder{}
		r.authors[string(b.author)] = a
	}
	i, found := slices.BinarySearchFunc(a.held, b.seq, func(x *batch, s uint64) int { return cmp.Compare(x.seq, s) })
	if found {
		i++ // its copy, held
	}
	a.held = a.held[i:]
	r.deliver(b)
	a.next, a.loose = b.seq+1, false
	r.drainLocked(a)
	return true
}

// addLocked implements add; r.mu held.
func (r *reorderer) addLocked(b *batch) {
	a := r.authors[string(b.author)]
	if a == nil {
		a = &authorOrder{next: b.seq}
		if b.switched && b.seq > 0 {
			a.next, a.loose = b.seq-1, true
		}
		r.authors[string(b.author)] = a
	}
	switch {
	case b.seq == a.next:
		r.deliver(b)
		a.next++
		a.loose = false
		r.drainLocked(a)
	case b.seq > a.next && b.seq-a.next < reorderRestart:
		i, found := slices.BinarySearchFunc(a.held, b.seq, func(x *batch, s uint64) int { return cmp.Compare(x.seq, s) })
		if found {
			return
		}
		a.held = slices.Insert(a.held, i, b)
		r.stats.held++
		if len(a.held) >= reorderMaxHeld {
			r.skipLocked(a)
			return
		}
		if a.timer == nil {
			author := string(b.author)
			a.timer = time.AfterFunc(reorderWait, func() { r.timeout(author) })
		}
	case b.seq > a.next: // a restarted publisher
		r.skipLocked(a)
		a.next = b.seq + 1
		r.deliver(b)
	case a.loose: // sent the other way before the switched batch's predecessor
		r.deliver(b)
	default: // after its gap was skipped: late, but not lost
		r.stats.late++
		r.deliver(b)
	}
}

// drainLocked delivers the held batches that are next in line.
func (r *reorderer) drainLocked(a *authorOrder) {
	for len(a.held) > 0 && a.held[0].seq == a.next {
		r.deliver(a.held[0])
		a.held = a.held[1:]
		a.next++
	}
	if len(a.held) == 0 && a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}

// skipLocked gives up on the gap: it delivers every held batch in order.
func (r *reorderer) skipLocked(a *authorOrder) {
	if len(a.held) == 0 {
		return
	}
	r.stats.skipped += a.held[0].seq - a.next
	a.next = a.held[0].seq
	a.loose = false
	r.drainLocked(a)
	if len(a.held) > 0 {
		r.skipLocked(a)
	}
}

func (r *reorderer) timeout(author string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.authors[author]; a != nil {
		a.timer = nil
		r.skipLocked(a)
	}
}

// forget drops what the reorderer keeps of authors (peer ids, as bytes),
// unless it holds batches of theirs: nodes gone for good (forgetGone), of
// which no batch can come any more, neither relayed (GossipSub keeps
// messages for seconds) nor on a direct stream (there is none).
func (r *reorderer) forget(authors []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range authors {
		if a := r.authors[id]; a != nil && len(a.held) == 0 && a.timer == nil {
			delete(r.authors, id)
		}
	}
}

// skipped returns how many batches were given up on.
func (r *reorderer) skipped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats.skipped
}

// stop cancels the timers (at Close).
func (r *reorderer) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.authors {
		if a.timer != nil {
			a.timer.Stop()
			a.timer = nil
		}
	}
}
