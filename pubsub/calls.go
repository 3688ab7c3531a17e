package pubsub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Calls: what goes to one peer only.
//
// Send, queue groups and request/reply address chosen peers, not a topic's
// subscribers: each such message goes on the direct stream to its peer
// (direct.go), whose connection authenticates the sender, signed mesh or
// not. A stream delivers in order, so these frames carry no sequence
// number and skip the reorderer. Frames after the common length and kind:
//
//	frameSend     topic, group, batch
//	              The batch's messages go to the peer's subscriptions of
//	              topic: its plain ones for group "" (Send), else one
//	              member of group on that node (queue.go).
//	frameRequest  topic, group, id uvarint, timeout-ms uvarint, batch of one
//	              The message goes to one of the node's responders of
//	              group on topic (request.go); the answer comes back in a
//	              frameReply with the same id. timeout-ms (0: none) bounds
//	              the responder's context.
//	frameReply    id uvarint, status byte, then a batch of one message
//	              (replyOK) or an error text (the other statuses)
//
// topic, group and text are uvarint length + bytes; topic carries
// Config.TopicPrefix; batches are as on the other ways (batch.go), whose
// author must be the stream's peer; their sequence number is 0.
const (
	frameSend    = 3
	frameRequest = 4
	frameReply   = 5
)

// Reply statuses.
const (
	replyOK          = 0 // the responder's answer
	replyError       = 1 // the responder's handler failed: ErrRemote
	replyNoResponder = 2 // no responder of the group on topic there (any more)
	replyBusy        = 3 // the responder's queue was full: ErrBusy
	maxReplyStatus   = replyBusy
)

// maxErrorText bounds an error text in a reply.
const maxErrorText = 1024

// appendString appends a uvarint length and s.
func appendString(out []byte, s string) []byte {
	out = binary.AppendUvarint(out, uint64(len(s)))
	return append(out, s...)
}

// strLen is the encoded size of s.
func strLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// readString reads a uvarint-length-prefixed string of at most limit bytes.
func readString(b []byte, limit int, what string) (string, []byte, error) {
	l, n := uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) || l > uint64(limit) {
		return "", nil, fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	return string(b[n : n+int(l)]), b[n+int(l):], nil
}

// readUvarint reads one canonical uvarint.
func readUvarint(b []byte, what string) (uint64, []byte, error) {
	v, n := uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	return v, b[n:], nil
}

// frameStart returns a buffer for a frame whose content after the length
// is inner bytes, with the length written.
func frameStart(inner int) []byte {
	out := make([]byte, 0, uvarintLen(uint64(inner))+inner)
	return binary.AppendUvarint(out, uint64(inner))
}

// encodeSendFrame encodes the writer's messages as a frameSend.
func encodeSendFrame(wire, group string, author []byte, w *batchWriter) []byte {
	out := frameStart(1 + strLen(wire) + strLen(group) + w.encodedLen(author, 0))
	out = append(out, frameSend)
	out = appendString(out, wire)
	out = appendString(out, group)
	return w.appendBatch(out, author, 0, 0)
}

// encodeRequestFrame encodes one request.
func encodeRequestFrame(wire, group string, id, timeoutMs uint64, author []byte, w *batchWriter) []byte {
	out := frameStart(1 + strLen(wire) + strLen(group) + uvarintLen(id) + uvarintLen(timeoutMs) + w.encodedLen(author, 0))
	out = append(out, frameRequest)
	out = appendString(out, wire)
	out = appendString(out, group)
	out = binary.AppendUvarint(out, id)
	out = binary.AppendUvarint(out, timeoutMs)
	return w.appendBatch(out, author, 0, 0)
}

// encodeReplyFrame encodes a reply: the writer's one message for replyOK,
// else text.
func encodeReplyFrame(id uint64, status byte, author []byte, w *batchWriter, text string) []byte {
	if status == replyOK {
		out := frameStart(1 + uvarintLen(id) + 1 + w.encodedLen(author, 0))
		out = append(out, frameReply)
		out = binary.AppendUvarint(out, id)
		out = append(out, status)
		return w.appendBatch(out, author, 0, 0)
	}
	text = truncateText(text, maxErrorText)
	out := frameStart(1 + uvarintLen(id) + 1 + strLen(text))
	out = append(out, frameReply)
	out = binary.AppendUvarint(out, id)
	out = append(out, status)
	return appendString(out, text)
}

// truncateText cuts s to at most n bytes on a rune boundary, and makes it
// valid UTF-8.
func truncateText(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // replaces invalid bytes
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// callFrame is a decoded frameSend, frameRequest or frameReply.
type callFrame struct {
	kind      byte
	wire      string
	group     string
	id        uint64
	timeoutMs uint64
	status    byte
	text      string
	b         *batch // nil in a reply that is not replyOK
}

// errCallAuthor reports a call frame whose batch's author is not the
// stream's peer.
var errCallAuthor = errors.New("call author is not the stream's peer")

// decodeCallFrame decodes a call frame's content after its kind. Messages
// may be maxMsg bytes at most; the batch's author must be from.
func decodeCallFrame(kind byte, frame []byte, from peer.ID, maxMsg int) (*callFrame, error) {
	c := &callFrame{kind: kind}
	var err error
	rest := frame
	switch kind {
	case frameSend, frameRequest:
		if c.wire, rest, err = readString(rest, 2*maxTopicLen, "call topic"); err != nil {
			return nil, err
		}
		if c.group, rest, err = readString(rest, maxTopicLen, "call group"); err != nil {
			return nil, err
		}
		if kind == frameRequest {
			if c.id, rest, err = readUvarint(rest, "request id"); err != nil {
				return nil, err
			}
			if c.timeoutMs, rest, err = readUvarint(rest, "request timeout"); err != nil {
				return nil, err
			}
		}
	case frameReply:
		if c.id, rest, err = readUvarint(rest, "reply id"); err != nil {
			return nil, err
		}
		if len(rest) < 1 || rest[0] > maxReplyStatus {
			return nil, fmt.Errorf("%w: reply status", ErrMalformed)
		}
		c.status, rest = rest[0], rest[1:]
		if c.status != replyOK {
			if c.text, rest, err = readString(rest, maxErrorText, "reply text"); err != nil {
				return nil, err
			}
			if len(rest) != 0 || !utf8.ValidString(c.text) {
				return nil, fmt.Errorf("%w: reply text", ErrMalformed)
			}
			return c, nil
		}
	default:
		return nil, fmt.Errorf("%w: call frame kind %d", ErrMalformed, kind)
	}
	if c.b, err = decodeBatch(rest, maxMsg); err != nil {
		return nil, err
	}
	if string(c.b.author) != string(from) {
		return nil, errCallAuthor
	}
	if c.b.switched || (kind != frameSend && len(c.b.msgs) != 1) {
		return nil, fmt.Errorf("%w: call batch", ErrMalformed)
	}
	return c, nil
}

// receiveCall handles a call frame from a direct stream. A frame that does
// not decode ends the stream, as a bad batch does.
func (p *PubSub) receiveCall(from peer.ID, kind byte, frame []byte) error {
	if kind == frameForward {
		return p.forward(from, frame)
	}
	c, err := decodeCallFrame(kind, frame, from, p.cfg.MaxMessageSize)
	if err != nil {
		return err
	}
	switch kind {
	case frameSend:
		p.receiveSend(from, c)
	case frameRequest:
		p.receiveRequest(from, c)
	case frameReply:
		p.receiveReply(from, c)
	}
	return nil
}
