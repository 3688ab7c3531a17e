package crdtstore

import (
	"bufio"
	"errors"
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// exchange is one sync stream as the side that started it, or the one
// that serves it, reads and writes it. Each frame read or written has
// Options.SyncTimeout from the moment it starts, so a sync runs as long as
// it makes progress, whatever the store's size.
type exchange struct {
	s      *Store
	p      string
	cs     *countingStream
	r      *bufio.Reader
	served bool
	spare  []byte // the buffer of the last frame read and released, reused
}

func (s *Store) newExchange(p string, cs *countingStream, served bool) *exchange {
	return &exchange{s: s, p: p, cs: cs, r: bufio.NewReader(cs), served: served}
}

// step gives the next frame SyncTimeout from now and returns how to read
// it.
func (x *exchange) step() reading {
	deadline := time.Now().Add(x.s.opts.SyncTimeout)
	_ = x.cs.SetDeadline(deadline)
	return x.s.reading(x.served, deadline)
}

// write writes one frame.
func (x *exchange) write(kind byte, payload []byte) error {
	x.step()
	return writeFrame(x.cs, kind, payload)
}

// request sends the sync request: this replica's context.
func (x *exchange) request() error {
	x.s.mu.Lock()
	mine := x.s.m.Context()
	x.s.mu.Unlock()
	return x.write(frameContext, ormap.EncodeContext(mine))
}

// read reads a frame of at most limit bytes under the store's read gate,
// counting and logging one refused for its length; release it. A frame
// reuses the buffer of the last one released (a sync reply is a run of
// chunks of about the same size: no garbage per chunk).
func (x *exchange) read(limit int) (frame, error) {
	f, err := readFrame(x.r, limit, x.step(), x.spare)
	x.spare = nil
	if errors.Is(err, errFrameLimit) {
		x.s.refuse(x.p, limitFrame)
	}
	f.keep = &x.spare
	return f, err
}

// readDelta reads a delta frame (of at most MaxSyncFrame bytes), or an
// "equal" frame (nothing to join). done releases the frame's memory
// accounting: call it once the delta is joined, whatever the error.
func (x *exchange) readDelta() (d ormap.Delta, equal bool, done func(), err error) {
	f, err := x.read(x.s.opts.MaxSyncFrame)
	done = f.release
	if err != nil {
		return d, false, done, err
	}
	switch f.kind {
	case frameEqual:
		return d, true, done, nil
	case frameBusy:
		return d, false, done, errBusy
	case frameDelta:
	default:
		return d, false, done, fmt.Errorf("%w: frame kind %d, want a delta", ErrProtocol, f.kind)
	}
	if d, err = ormap.DecodeDelta(f.payload, x.s.syncLim); err != nil {
		return d, false, done, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if err = checkRemoteKeys(d); err != nil {
		return d, false, done, err
	}
	return d, false, done, nil
}

// readAnswer reads the initiator's answer to this side's reply: "equal",
// or a delta (SyncV1: its diff; SyncV2: the removals that open its
// reply), as readDelta; "busy" there is a protocol error.
func (x *exchange) readAnswer() (d ormap.Delta, equal bool, done func(), err error) {
	d, equal, done, err = x.readDelta()
	if errors.Is(err, errBusy) {
		err = fmt.Errorf("%w: \"busy\" where an answer belongs", ErrProtocol)
	}
	return d, equal, done, err
}

// readContext reads a context frame: a sync request, or the context that
// ends a reply. It is bounded by contextLimits (and MaxSyncFrame, if
// smaller).
func (x *exchange) readContext() (ormap.Context, error) {
	f, err := x.read(x.s.contextFrameLimit())
	defer f.release()
	if err != nil {
		return ormap.Context{}, err
	}
	if f.kind != frameContext {
		return ormap.Context{}, fmt.Errorf("%w: frame kind %d, want a context", ErrProtocol, f.kind)
	}
	c, err := ormap.DecodeContext(f.payload, contextLimits(x.s.syncLim))
	if err != nil {
		return ormap.Context{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return c, nil
}

// readChunk reads a chunk frame of a SyncV2 reply (at most MaxSyncFrame
// bytes, honest ones about chunkBudget). done releases the frame's memory
// accounting: call it once the chunk is joined, whatever the error.
func (x *exchange) readChunk() (ch ormap.Chunk, done func(), err error) {
	f, err := x.read(x.s.opts.MaxSyncFrame)
	done = f.release
	if err != nil {
		return ch, done, err
	}
	if f.kind != frameSyncChunk {
		return ch, done, fmt.Errorf("%w: frame kind %d, want a chunk", ErrProtocol, f.kind)
	}
	if ch, err = ormap.DecodeChunk(f.payload, x.s.syncLim); err != nil {
		return ch, done, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if err = checkRemoteKeys(ch.Delta()); err != nil {
		return ch, done, err
	}
	return ch, done, nil
}

// joinReply joins d, a sync reply (SyncV1) or the removals that open one
// (SyncV2), from p; a diff comes from its sender's replica.
func (x *exchange) joinReply(d ormap.Delta) error {
	s := x.s
	s.mu.Lock()
	s.learnWriterLocked(d.Origin(), x.p)
	err := s.joinLocked(d, OriginRemote)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	x.cs.keys.Add(int64(d.Len()))
	return nil
}
