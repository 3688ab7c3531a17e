package crdtstore

import (
	"fmt"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// Sync protocol SyncV2, on a stream opened by A to B (see doc.go):
//
//	A → B  context C_A
//	B → A  "equal"                   if C_B = C_A: done, one round trip
//	B → A  reply to C_A              otherwise
//	A → B  "equal" or reply to C_B0  after A joined B's reply
//
// A reply to a context c (ormap's chunked sync) is the removals R (a delta
// frame: a Diff without entries), chunk frames in key order (each about
// chunkBudget bytes), the last one marked, then the context C_0 the reply was
// computed from. The receiver joins each piece as it arrives, so each side
// holds one chunk at a time, and a reply cut off anywhere loses nothing.

// chunkBudget is the size a reply's chunks aim at (ormap.DiffChunk's
// budget): half of smallFrame, so that reading one seldom needs a
// large-read slot; or half of MaxSyncFrame if that is smaller.
const chunkBudget = smallFrame / 2

func (s *Store) chunkBudget() int { return min(chunkBudget, s.opts.MaxSyncFrame/2) }

// initiateV2 runs the initiator's side of SyncV2.
func (x *exchange) initiateV2() error {
	if err := x.request(); err != nil {
		return err
	}
	removals, equal, done, err := x.readDelta()
	if err != nil || equal {
		done()
		return err
	}
	theirs, err := x.receiveReply(removals, done)
	if err != nil {
		return err
	}
	return x.answer(theirs, func(int) {})
}

// serveV2 runs the responder's side of SyncV2. The reply is charged to p's
// budget; overBudget (the budget is in debt) refuses every request but one
// this replica is in sync with.
func (x *exchange) serveV2(overBudget bool) error {
	s := x.s
	theirs, err := x.readContext()
	if err != nil {
		return err
	}
	s.mu.Lock()
	mine := s.m.Context()
	s.mu.Unlock()
	switch {
	case mine.Equal(theirs):
		return x.write(frameEqual, nil)
	case overBudget && !mine.SubsetOf(theirs):
		return x.refuseOverBudget()
	}
	if err := x.sendReply(theirs, func(n int) { s.chargeServe(x.p, n) }); err != nil {
		return err
	}
	removals, equal, done, err := x.readAnswer()
	if err != nil || equal {
		done()
		return err
	}
	_, err = x.receiveReply(removals, done)
	return err
}

// answer sends the reply to c, or "equal" if this replica knows nothing
// that c lacks; charge is told each frame's size before it is written.
func (x *exchange) answer(c ormap.Context, charge func(int)) error {
	s := x.s
	s.mu.Lock()
	none := s.m.Context().SubsetOf(c)
	s.mu.Unlock()
	if none {
		return x.write(frameEqual, nil)
	}
	return x.sendReply(c, charge)
}

// sendReply sends the reply to context c: the removals, the chunks, the
// start context. Between chunks the store is free: writes and deltas
// interleave (ormap's chunked sync allows it).
func (x *exchange) sendReply(c ormap.Context, charge func(int)) error {
	s := x.s
	send := func(kind byte, b []byte) error {
		charge(len(b))
		return x.write(kind, b)
	}
	s.mu.Lock()
	removals, start := s.m.DiffStart(c)
	s.mu.Unlock()
	if err := send(frameDelta, ormap.EncodeDelta(removals)); err != nil {
		return err
	}
	for from := ""; ; {
		s.mu.Lock()
		ch := s.m.DiffChunk(c, start, from, s.chunkBudget())
		s.mu.Unlock()
		// Encoded outside the lock: the chunk's values are immutable.
		if err := send(frameSyncChunk, ormap.EncodeChunk(ch)); err != nil {
			return err
		}
		x.cs.keys.Add(int64(ch.Len()))
		if ch.Done() {
			break
		}
		from = ch.Next()
	}
	return send(frameContext, ormap.EncodeContext(start))
}

// receiveReply joins a reply whose removals were read (done releases their
// frame), then its chunks and its context, which it returns.
func (x *exchange) receiveReply(removals ormap.Delta, done func()) (ormap.Context, error) {
	s := x.s
	err := x.joinReply(removals)
	done()
	if err != nil {
		return ormap.Context{}, err
	}
	var seq ormap.ChunkSeq
	for !seq.Done() {
		ch, done, err := x.readChunk()
		if err == nil {
			if err = seq.Accept(ch); err != nil {
				err = fmt.Errorf("%w: %w", ErrProtocol, err)
			}
		}
		if err == nil {
			s.mu.Lock()
			err = s.joinChunkLocked(ch, x.p)
			s.mu.Unlock()
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrProtocol, err)
			}
		}
		done()
		if err != nil {
			return ormap.Context{}, err
		}
		x.cs.keys.Add(int64(ch.Len()))
	}
	c, err := x.readContext()
	if err != nil {
		return c, err
	}
	s.mu.Lock()
	err = s.joinContextLocked(c, x.p)
	s.mu.Unlock()
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return c, nil
}

// refuseOverBudget answers "busy" to a request over p's reply budget.
func (x *exchange) refuseOverBudget() error {
	x.s.refuse(x.p, limitBudget)
	if err := x.write(frameBusy, nil); err != nil {
		return err
	}
	return errAnsweredBudget
}

// errAnsweredBudget is serving's result when it answered "busy" for the
// peer's reply budget.
var errAnsweredBudget = fmt.Errorf("%w: over the sync limit: %s", errAnsweredBusy, limitNames[limitBudget])
