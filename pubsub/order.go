package pubsub

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Per-publisher order.
//
// Batches of one publisher on one topic carry consecutive sequence numbers.
// On a fully connected mesh they arrive in order; where a copy is relayed
// (a partial mesh, or the moment before topology announcements arrive) it
// can overtake the direct one. The reorderer holds a batch that arrives
// ahead of its predecessor for at most reorderWait (or until
// reorderMaxHeld are waiting), then delivers what it has in order and skips
// the gap: a lost batch never stalls a publisher's later messages for long.
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
	loose bool     // next came from follow: earlier batches may still come
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
	a := r.authors[string(b.author)]
	if a == nil {
		a = &authorOrder{next: b.seq}
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
	case a.loose: // sent the other way before the batch next follows
		r.deliver(b)
	default: // after its gap was skipped: late, but not lost
		r.stats.late++
		r.deliver(b)
	}
}

// follow records that the next batch of author to arrive follows batch
// seq, which was sent another way (direct.go). If nothing of author has
// been seen yet, batches up to seq may still arrive: they are delivered as
// they come, and later ones wait for seq as for any gap.
func (r *reorderer) follow(author []byte, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.authors[string(author)] == nil {
		r.authors[string(author)] = &authorOrder{next: seq, loose: true}
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
