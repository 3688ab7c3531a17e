package crdtstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sync frames: uvarint length, then the payload, whose first byte is the
// frame kind. Lengths are checked against the limit before anything is
// read, and the body buffer grows only as bytes actually arrive (at most
// doubling, never beyond the declared length), so a peer that declares 2^31
// bytes and sends ten costs us a few kilobytes. A body larger than
// smallFrame also needs a large-read slot of the store's readGate (see
// synclimits.go).
const (
	frameContext   byte = 1 // an ormap-encoded causal context
	frameEqual     byte = 2 // "our contexts are equal" / "nothing to send"
	frameDelta     byte = 3 // an ormap-encoded delta
	frameBusy      byte = 4 // "busy (catching up, or this peer's limits): ask again later"
	frameSyncChunk byte = 5 // an ormap-encoded chunk of a reply (SyncV2)
)

// writeFrame writes one frame.
func writeFrame(w io.Writer, kind byte, payload []byte) error {
	hdr := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+1), uint64(len(payload)+1))
	hdr = append(hdr, kind)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	_, err := w.Write(payload)
	return err
}

// reading is how one sync exchange reads its frames: under gate (nil: no
// accounting and no slots), as the side that served it or the one that
// started it, waiting for a large-read slot until deadline or done.
type reading struct {
	gate     *readGate
	served   bool
	deadline time.Time
	done     <-chan struct{}
}

// frame is a frame read by readFrame. Its buffer stays accounted in the
// gate it was read under until release.
type frame struct {
	kind    byte
	payload []byte
	gate    *readGate
	held    int     // bytes accounted in gate
	slot    bool    // holds a large-read slot
	served  bool    // for a served stream
	keep    *[]byte // where release leaves the buffer for the next frame
}

// release returns the frame's memory and slot to its gate, and its buffer
// to keep if it has one and the buffer is at most smallFrame; the payload
// must not be used afterwards. Safe twice.
func (f *frame) release() {
	if f.keep != nil && cap(f.payload) <= smallFrame {
		*f.keep = f.payload[:0]
	}
	f.keep, f.payload = nil, nil
	if f.gate == nil {
		return
	}
	f.gate.hold(-f.held)
	if f.slot {
		f.gate.release(f.served)
	}
	f.gate, f.held, f.slot = nil, 0, false
}

// readFrame reads one frame of at most limit bytes, into spare (a buffer
// of an earlier frame: the decoders copy what they keep), grown if the
// body needs more. With a gate (rd.gate; nil: no accounting, no slots), its buffer
// is accounted there as it grows, and a body larger than smallFrame first
// waits for a large-read slot; the caller releases the frame. A declared
// length over the limit is an error wrapping ErrProtocol and
// errFrameLimit.
func readFrame(r *bufio.Reader, limit int, rd reading, spare []byte) (f frame, err error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if err == io.EOF {
			return f, io.ErrUnexpectedEOF
		}
		return f, fmt.Errorf("%w: frame length: %w", ErrProtocol, err)
	}
	if n == 0 || n > uint64(limit) {
		return f, fmt.Errorf("%w: %w: %d bytes (limit %d)", ErrProtocol, errFrameLimit, n, limit)
	}
	if f.kind, err = r.ReadByte(); err != nil {
		return f, fmt.Errorf("%w: frame kind: %w", ErrProtocol, err)
	}
	body := int(n - 1)
	g := rd.gate
	f.gate, f.served = g, rd.served
	defer func() {
		if err != nil {
			f.release()
			f = frame{}
		}
	}()
	if g != nil && body > smallFrame {
		if err := g.acquire(rd.served, rd.deadline, rd.done); err != nil {
			return f, err
		}
		f.slot = true
	}
	buf := spare[:0] // grown as below if the body needs more
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(body, frameChunk))
	}
	f.grow(cap(buf))
	for len(buf) < body {
		if len(buf) == cap(buf) {
			next := make([]byte, len(buf), min(body, max(2*cap(buf), frameChunk)))
			copy(next, buf)
			f.grow(cap(next) - cap(buf))
			buf = next
		}
		m, err := io.ReadFull(r, buf[len(buf):min(cap(buf), body)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return f, fmt.Errorf("%w: frame body: got %d of %d bytes: %w", ErrProtocol, len(buf), body, err)
		}
	}
	f.payload = buf
	return f, nil
}

// grow accounts n more buffered bytes.
func (f *frame) grow(n int) {
	if f.gate != nil {
		f.gate.hold(n)
		f.held += n
	}
}
