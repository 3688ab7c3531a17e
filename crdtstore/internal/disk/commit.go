package disk

import (
	"fmt"

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
}

func newTicket() *Ticket { return &Ticket{done: make(chan struct{})} }

// Wait blocks until the batch is committed with the DB's durability, and
// returns nil, or the error that prevented it (ErrClosed if it was enqueued
// after Close began).
func (t *Ticket) Wait() error {
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
		t := newTicket()
		t.err = fmt.Errorf("%w: batch enqueued after Close", ErrClosed)
		close(t.done)
		return t
	}
	db.queue = append(db.queue, pb)
	if db.round == nil {
		db.round = newTicket()
	}
	t := db.round
	db.mu.Unlock()
	db.signal()
	return t
}

func (db *DB) signal() {
	select {
	case db.wake <- struct{}{}:
	default:
	}
}

// commitLoop is the only goroutine that writes batches: each round it takes
// the whole queue, merges it into one pebble batch (up to maxMerge bytes;
// more make further batches) in queue order and applies it with pebble.Sync
// over the WAL no-fsync FS in Crash mode. It does not wait for the log
// write and fsync: it hands the round to syncLoop and applies the next one,
// so the rounds queued meanwhile share pebble's next log write and fsync
// (group commit, pipelined). pebble writes the log in apply order, so the
// order of the queue is the order on disk. commitLoop returns when Close has
// been called and the queue is empty.
func (db *DB) commitLoop() {
	defer close(db.applied)
	for {
		db.mu.Lock()
		q, t, closing := db.queue, db.round, db.closing
		if len(q) > 0 {
			db.queue, db.round = nil, nil
		}
		db.mu.Unlock()
		if len(q) == 0 {
			if closing {
				return
			}
			<-db.wake
			continue
		}
		db.applied <- db.apply(q, t)
	}
}

// maxMerge bounds the bytes merged into one pebble batch.
const maxMerge = 4 << 20

// inflight is a round applied to the memtable and queued in pebble's log,
// waiting for its log write (and fsync).
type inflight struct {
	t     *Ticket
	all   []*pebble.Batch // every batch of the round, to close
	heads []*pebble.Batch // the ones applied (the others were merged into them)
	err   error           // apply error
}

func (db *DB) apply(q []*pebble.Batch, t *Ticket) inflight {
	r := inflight{t: t, all: q}
	if err := db.failure(); err != nil {
		r.err = err
		return r
	}
	for len(q) > 0 {
		head, n := q[0], 1
		for ; n < len(q) && head.Len() < maxMerge; n++ {
			if err := head.Apply(q[n], nil); err != nil {
				r.err = db.fail(fmt.Errorf("disk: merge batches: %w", err))
				return r
			}
		}
		if err := db.pdb.ApplyNoSyncWait(head, pebble.Sync); err != nil {
			r.err = db.fail(engineErr("commit", err))
			return r
		}
		r.heads = append(r.heads, head)
		q = q[n:]
	}
	return r
}

// syncLoop waits, in order, for each applied round to be written to the log
// (and fsynced in Power mode), then releases its ticket. It returns after
// commitLoop has returned and every round is released.
func (db *DB) syncLoop() {
	defer close(db.exited)
	for r := range db.applied {
		err := r.err
		for _, h := range r.heads {
			if serr := h.SyncWait(); serr != nil && err == nil {
				err = db.fail(engineErr("commit", serr))
			}
		}
		for _, pb := range r.all {
			pb.Close()
		}
		r.t.err = err
		close(r.t.done)
	}
}

// fail records the first commit error: after it every batch fails with it.
func (db *DB) fail(err error) error {
	db.failed.CompareAndSwap(nil, &err)
	return *db.failed.Load()
}

func (db *DB) failure() error {
	if p := db.failed.Load(); p != nil {
		return *p
	}
	return nil
}
