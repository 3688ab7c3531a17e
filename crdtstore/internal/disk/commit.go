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
// the whole queue, merges it into one pebble batch in queue order and
// commits it with pebble.Sync (over the WAL no-fsync FS in Crash mode), so
// concurrent committers share one write (and one fsync in Power mode). It
// returns when Close has been called and the queue is empty.
func (db *DB) commitLoop() {
	defer close(db.exited)
	for {
		db.mu.Lock()
		q, t, closing := db.queue, db.round, db.closing
		if len(q) > 0 {
			db.queue, db.round = db.spare[:0], nil
		}
		db.mu.Unlock()
		if len(q) == 0 {
			if closing {
				return
			}
			<-db.wake
			continue
		}
		t.err = db.commit(q)
		close(t.done)
		clear(q)
		db.spare = q
	}
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
