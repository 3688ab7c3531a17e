package crdtstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Sync frames: uvarint length, then the payload, whose first byte is the
// frame kind. Lengths are checked against the limit before anything is
// read, and the body buffer grows only as bytes actually arrive, so a peer
// that declares 2^31 bytes and sends ten costs us a few kilobytes.
const (
	frameContext byte = 1 // an ormap-encoded causal context
	frameEqual   byte = 2 // "our contexts are equal" / "nothing to send"
	frameDelta   byte = 3 // an ormap-encoded delta
	frameBusy    byte = 4 // "catching up with another peer: ask again later"
)

// syncProtocolVersion is part of the stream protocol id.
const syncProtocolVersion = "1.0.0"

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

// readFrame reads one frame of at most limit bytes.
func readFrame(r *bufio.Reader, limit int) (kind byte, payload []byte, err error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if err == io.EOF {
			return 0, nil, io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("%w: frame length: %w", ErrProtocol, err)
	}
	if n == 0 || n > uint64(limit) {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes (limit %d)", ErrProtocol, n, limit)
	}
	kind, err = r.ReadByte()
	if err != nil {
		return 0, nil, fmt.Errorf("%w: frame kind: %w", ErrProtocol, err)
	}
	var buf bytes.Buffer
	if m, err := io.CopyN(&buf, r, int64(n-1)); err != nil {
		return 0, nil, fmt.Errorf("%w: frame body: got %d of %d bytes: %w", ErrProtocol, m, n-1, err)
	}
	return kind, buf.Bytes(), nil
}
