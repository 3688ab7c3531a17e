package pubsub

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Wire format of one batch, the unit both ways carry (a GossipSub message,
// or the body of a direct frame):
//
//	version   byte  (batchVersion)
//	flags     byte  (flagSwitched, flagHeaders; other bits must be 0)
//	author    uvarint length + bytes (the publisher's peer id)
//	seq       uvarint (the publisher's sequence number on the topic)
//	count     uvarint (number of messages, ≥ 1)
//	count ×   with flagHeaders: uvarint length + headers (header.go),
//	          then uvarint length + bytes (one application message each)
//
// A batch none of whose messages has headers is sent without flagHeaders,
// so headers cost nothing where they are not used.
//
// The bytes from version to the end of seq identify the batch: they are the
// GossipSub message id, so no hash of the payload is needed.
const (
	batchVersion = 1

	// flagSwitched marks a batch whose predecessor (seq-1) was sent the
	// other way and may reach the receiver after it (router.go): a
	// receiver that has nothing of the author yet waits for that
	// predecessor rather than starting its sequence here (order.go).
	flagSwitched = 1 << 0
	// flagHeaders says that every message is preceded by its headers
	// (possibly empty).
	flagHeaders = 1 << 1
	knownFlags  = flagSwitched | flagHeaders

	// maxAuthorLen bounds the author field: a libp2p peer id is an identity
	// multihash of a public key (38 bytes for Ed25519) or a SHA-256 multihash.
	maxAuthorLen = 128
)

// batch is a decoded batch. Messages alias the input buffer.
type batch struct {
	author   []byte
	seq      uint64
	switched bool   // flagSwitched
	id       []byte // header bytes that identify the batch
	msgs     [][]byte
	hdrs     []Header // one per message, nil if no message has headers
	vals     []any    // the topic's decoder's results, one per message (nil without one)
}

// header returns message i's headers.
func (b *batch) header(i int) Header {
	if b.hdrs == nil {
		return nil
	}
	return b.hdrs[i]
}

// payloadBytes returns the bytes of the batch's messages (their data).
func (b *batch) payloadBytes() uint64 {
	var n uint64
	for _, m := range b.msgs {
		n += uint64(len(m))
	}
	return n
}

// batchWriter accumulates messages into one encoded batch.
type batchWriter struct {
	count   int
	bodyLen int
	msgs    [][]byte
	hdrs    [][]byte // encoded headers, one per message
	nhdr    int      // messages with headers
}

// reset empties the writer for the next batch.
func (w *batchWriter) reset() {
	w.msgs = w.msgs[:0]
	w.hdrs = w.hdrs[:0]
	w.count = 0
	w.bodyLen = 0
	w.nhdr = 0
}

// add appends one message without headers.
func (w *batchWriter) add(m []byte) { w.addHeader(nil, m) }

// addHeader appends one message with its encoded headers (nil for none).
func (w *batchWriter) addHeader(hdr, m []byte) {
	w.msgs = append(w.msgs, m)
	w.hdrs = append(w.hdrs, hdr)
	w.count++
	w.bodyLen += uvarintLen(uint64(len(m))) + len(m)
	if len(hdr) > 0 {
		w.nhdr++
		w.bodyLen += len(hdr) // its length prefix is counted in size
	}
}

// msgCost is what one message adds to a batch's size().
func msgCost(hdr, m []byte) int {
	return uvarintLen(uint64(len(m))) + len(m) + len(hdr)
}

// headerBytes is the size of the headers' length prefixes (present only
// when some message has headers).
func (w *batchWriter) headerBytes() int {
	if w.nhdr == 0 {
		return 0
	}
	n := 0
	for _, h := range w.hdrs {
		n += uvarintLen(uint64(len(h)))
	}
	return n
}

// flags returns the flags the batch's encoding needs besides extra.
func (w *batchWriter) flags(extra byte) byte {
	if w.nhdr > 0 {
		return extra | flagHeaders
	}
	return extra
}

// size is the encoded size of the messages added so far (without header).
func (w *batchWriter) size() int { return w.bodyLen }

// encode returns a freshly allocated encoded batch. The result is never
// reused by the writer: GossipSub keeps it in its message cache.
func (w *batchWriter) encode(author []byte, seq uint64, flags byte) []byte {
	return w.appendBatch(make([]byte, 0, w.encodedLen(author, seq)), author, seq, flags)
}

// encodedLen is the size of the encoded batch.
func (w *batchWriter) encodedLen(author []byte, seq uint64) int {
	return 2 + uvarintLen(uint64(len(author))) + len(author) + uvarintLen(seq) +
		uvarintLen(uint64(w.count)) + w.bodyLen + w.headerBytes()
}

// appendBatch appends the encoded batch to out.
func (w *batchWriter) appendBatch(out, author []byte, seq uint64, flags byte) []byte {
	flags = w.flags(flags)
	out = append(out, batchVersion, flags)
	out = binary.AppendUvarint(out, uint64(len(author)))
	out = append(out, author...)
	out = binary.AppendUvarint(out, seq)
	out = binary.AppendUvarint(out, uint64(w.count))
	for i, m := range w.msgs {
		if flags&flagHeaders != 0 {
			out = binary.AppendUvarint(out, uint64(len(w.hdrs[i])))
			out = append(out, w.hdrs[i]...)
		}
		out = binary.AppendUvarint(out, uint64(len(m)))
		out = append(out, m...)
	}
	return out
}

// local returns the writer's batch as a receiver would decode it, for
// delivery to this node's own subscriptions (Config.Echo).
func (w *batchWriter) local(author []byte, seq uint64) *batch {
	b := &batch{author: author, seq: seq, msgs: slices.Clone(w.msgs)}
	if w.nhdr > 0 {
		b.hdrs = make([]Header, len(w.hdrs))
		for i, h := range w.hdrs {
			b.hdrs[i], _ = decodeHeader(h) // encoded by us: valid
		}
	}
	return b
}

// encodeBatch encodes msgs as one batch (used by tests and fuzzing).
func encodeBatch(author []byte, seq uint64, msgs ...[]byte) []byte {
	var w batchWriter
	for _, m := range msgs {
		w.add(m)
	}
	return w.encode(author, seq, 0)
}

// batchHeader parses the header into b (author, seq, switched, id) and
// returns the offset of the count field.
func batchHeader(data []byte, b *batch) (off int, err error) {
	if len(data) < 2 {
		return 0, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	if data[0] != batchVersion {
		return 0, fmt.Errorf("%w: version %d", ErrVersion, data[0])
	}
	if data[1]&^knownFlags != 0 {
		return 0, fmt.Errorf("%w: flags %#x", ErrMalformed, data[1])
	}
	b.switched = data[1]&flagSwitched != 0
	if data[1]&flagHeaders != 0 {
		b.hdrs = []Header{} // filled by decodeBatch
	}
	off = 2
	alen, n := uvarint(data[off:])
	if n <= 0 || alen == 0 || alen > maxAuthorLen || alen > uint64(len(data)-off-n) {
		return 0, fmt.Errorf("%w: author length", ErrMalformed)
	}
	off += n
	b.author = data[off : off+int(alen)]
	off += int(alen)
	b.seq, n = uvarint(data[off:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: sequence number", ErrMalformed)
	}
	off += n
	b.id = data[:off]
	return off, nil
}

// decodeBatch decodes a batch whose messages may each be at most maxMsg
// bytes. It never allocates from a size the input declares: the message
// count is bounded by the bytes that remain.
func decodeBatch(data []byte, maxMsg int) (*batch, error) {
	b := &batch{}
	off, err := batchHeader(data, b)
	if err != nil {
		return nil, err
	}
	count, n := uvarint(data[off:])
	if n <= 0 || count == 0 {
		return nil, fmt.Errorf("%w: message count", ErrMalformed)
	}
	off += n
	rest := len(data) - off
	// Every message takes at least one byte (its length), so a count
	// larger than the remaining bytes is a lie.
	if count > uint64(rest) {
		return nil, fmt.Errorf("%w: count %d exceeds %d remaining bytes", ErrMalformed, count, rest)
	}
	b.msgs = make([][]byte, 0, count)
	if b.hdrs != nil {
		b.hdrs = make([]Header, 0, count)
	}
	for i := uint64(0); i < count; i++ {
		if b.hdrs != nil {
			l, n := uvarint(data[off:])
			if n <= 0 || l > uint64(len(data)-off-n) {
				return nil, fmt.Errorf("%w: message %d headers length", ErrMalformed, i)
			}
			off += n
			h, err := decodeHeader(data[off : off+int(l)])
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
			b.hdrs = append(b.hdrs, h)
			off += int(l)
		}
		l, n := uvarint(data[off:])
		if n <= 0 {
			return nil, fmt.Errorf("%w: message %d length", ErrMalformed, i)
		}
		off += n
		if l > uint64(len(data)-off) {
			return nil, fmt.Errorf("%w: message %d length %d exceeds remaining bytes", ErrMalformed, i, l)
		}
		if l > uint64(maxMsg) {
			return nil, fmt.Errorf("%w: message %d is %d bytes, limit %d", ErrTooLarge, i, l, maxMsg)
		}
		b.msgs = append(b.msgs, data[off:off+int(l):off+int(l)])
		off += int(l)
	}
	if off != len(data) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(data)-off)
	}
	return b, nil
}

// uvarint reads a canonical (shortest-form) uvarint; n ≤ 0 on error. An
// overlong encoding is refused so that every batch has exactly one encoding
// and one message id.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 0 && n != uvarintLen(v) {
		return 0, -1
	}
	return v, n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
