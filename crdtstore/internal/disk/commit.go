package disk

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Batch is a set of writes committed atomically. Build it with Put and
// Delete, then hand it to Enqueue; it must not be used after that.
type Batch struct {
	pb *pebble.Batch
}

// NewBatch returns an empty batch.
func (db *DB) NewBatch() *Batch { return &Batch{pb: db.pdb.NewBatch()} }

func (b *Batch) check(kind byte) {
	if b.pb == nil {
		panic("disk: Batch used after Enqueue")
	}
	if kind == kindFormat {
		panic(fmt.Sprintf("disk: kind %d is reserved", kindFormat))
	}
}

// Put sets (kind, name) to data. It copies name and data. Kind 0 is reserved.
func (b *Batch) Put(kind byte, name string, data []byte) {
	b.check(kind)
	op := b.pb.SetDeferred(1+len(name), len(data))
	op.Key[0] = kind
	copy(op.Key[1:], name)
	copy(op.Value, data)
	op.Finish()
}

// Delete removes (kind, name). Kind 0 is reserved.
func (b *Batch) Delete(kind byte, name string) {
	b.check(kind)
	op := b.pb.DeleteDeferred(1 + len(name))
	op.Key[0] = kind
	copy(op.Key[1:], name)
	op.Finish()
}

// Len is the number of Puts and Deletes in b.
func (b *Batch) Len() int {
	if b.pb == nil {
		return 0
	}
	return int(b.pb.Count())
}

// Ticket is the receipt of an Enqueue. Batches committed in the same round
// share one.
type Ticket struct {
	done chan struct{}
	err  error // set before done is closed
	// waiters counts the Wait calls that blocked before done; wake (Power
	// mode only) is the committer's, signalled by each of them.
	waiters atomic.Int32
	wake    chan struct{}
}

func newTicket(wake chan struct{}) *Ticket {
	return &Ticket{done: make(chan struct{}), wake: wake}
}

// Wait blocks until the batch is committed with the DB's durability, and
// returns nil, or the error that prevented it (ErrClosed if it was enqueued
// after Close began).
func (t *Ticket) Wait() error {
	if t.wake != nil {
		select {
		case <-t.done:
			return t.err
		default:
		}
		t.waiters.Add(1)
		signal(t.wake)
	}
	<-t.done
	return t.err
}

// Enqueue appends b to the commit queue and returns at once. Batches reach
// the log in the order of their Enqueue calls, across goroutines: a caller
// that enqueues under its own lock fixes the order, and may Wait outside it.
// A batch is never overwritten by one enqueued before it.
func (db *DB) Enqueue(b *Batch) *Ticket {
	pb := b.pb
	if pb == nil {
		panic("disk: Batch enqueued twice")
	}
	b.pb = nil
	db.mu.Lock()
	if db.closing {
		db.mu.Unlock()
		pb.Close()
		t := newTicket(nil)
		t.err = fmt.Errorf("%w: batch enqueued after Close", ErrClosed)
		close(t.done)
		return t
	}
	db.queue = append(db.queue, pb)
	if db.round == nil {
		db.round = newTicket(db.waitWake)
	}
	t := db.round
	db.mu.Unlock()
	signal(db.wake)
	return t
}

// signal wakes the committer waiting on wake (cap 1), if it waits.
func signal(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// commitLoop is the only goroutine that writes batches: each round it takes
// the whole queue, merges it into one pebble batch in queue order and
// commits it with pebble.Sync (over the WAL no-fsync FS in Crash mode), so
// concurrent committers share one write (and one fsync in Power mode). In
// Power mode it may first linger (see lingerFor). It returns when Close has
// been called and the queue is empty.
func (db *DB) commitLoop() {
	defer close(db.exited)
	var (
		timer    = time.NewTimer(time.Hour)
		expect   int32         // Power: callers waiting when the last round ended
		last     time.Duration // Power: how long the last round's commit took
		lingered *Ticket       // the queued round lingering started for
		since    time.Time     // when it started
	)
	timer.Stop()
	for {
		db.mu.Lock()
		q, t, closing := db.queue, db.round, db.closing
		if len(q) == 0 {
			db.mu.Unlock()
			if closing {
				return
			}
			<-db.wake
			continue
		}
		if db.waitWake != nil && !closing && expect > 0 {
			if lingered != t {
				lingered, since = t, time.Now()
			}
			if wait := lingerFor(t.waiters.Load(), expect, last, time.Since(since)); wait > 0 {
				db.mu.Unlock()
				timer.Reset(wait)
				select {
				case <-db.wake:
				case <-db.waitWake:
				case <-timer.C:
				}
				timer.Stop()
				continue
			}
		}
		db.queue, db.round = db.spare[:0], nil
		db.mu.Unlock()
		size := 0
		for _, pb := range q {
			size += pb.Len()
		}
		t0 := time.Now()
		t.err = db.commit(q)
		last = time.Since(t0)
		db.rounds.Add(1)
		db.batches.Add(uint64(len(q)))
		db.committed(size)
		// Before done is closed: the waiters released now, and those
		// already waiting on the next round.
		expect, lingered = t.waiters.Load(), nil
		db.mu.Lock()
		if db.round != nil {
			expect += db.round.waiters.Load()
		}
		db.mu.Unlock()
		close(t.done)
		clear(q)
		db.spare = q
	}
}

// maxLinger bounds a linger whatever the fsync takes.
const maxLinger = time.Millisecond

// lingerFor is how much longer the committer of a Power-mode DB waits
// before it takes the queue, having lingered for `lingered` already: 0 once
// `waiting` (the callers blocked in Wait on the queued batches) reaches
// `expect` (those blocked when the last round ended: the writers it
// released plus the ones already queued), else what is left of half the
// last commit's duration (at most maxLinger).
//
// Why: writers that wait for their commit and then write again (a request
// loop) come back just after their round ends, while the committer has
// already taken the queue of those that arrived during the fsync. Without
// the linger they split into two cohorts taking turns (measured with 16
// writers: rounds of 1+15, 4+12, 8+8 batches, 8 per fsync on average), so
// each writer waits for two fsyncs. Lingering a fraction of an fsync lets
// them share one. A batch is never committed before its fsync covers it:
// the guarantee is unchanged; only the next round starts a little later.
func lingerFor(waiting, expect int32, last, lingered time.Duration) time.Duration {
	if waiting >= expect {
		return 0
	}
	return max(0, min(last/2, maxLinger)-lingered)
}

// maxMerge bounds the bytes one round merges into its first batch; the
// rest of the queue goes in a further commit of the same round.
const maxMerge = 4 << 20

func (db *DB) commit(q []*pebble.Batch) error {
	defer func() {
		for _, pb := range q {
			pb.Close()
		}
	}()
	if db.failed != nil {
		return db.failed
	}
	for len(q) > 0 {
		head, n := q[0], 1
		for ; n < len(q) && head.Len() < maxMerge; n++ {
			if err := head.Apply(q[n], nil); err != nil {
				db.failed = fmt.Errorf("disk: merge batches: %w", err)
				return db.failed
			}
		}
		if err := db.pdb.Apply(head, pebble.Sync); err != nil {
			db.failed = engineErr("commit", err)
			return db.failed
		}
		// Close the merged batches now, keep the rest for the next commit.
		for _, pb := range q[:n] {
			pb.Close()
		}
		clear(q[:n])
		q = q[n:]
	}
	return nil
}
