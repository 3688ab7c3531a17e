package pubsub

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Direct streams.
//
// GossipSub hands every message through its event loop, a validation worker
// and protobuf on both sides. Where every node is connected to every other
// (what mDNS discovery builds), none of that is needed: each subscriber gets
// each batch from its author anyway, and nothing is relayed (topology.go).
// So when this node's neighbourhood is closed (every connected peer has
// announced its connections, and all of those are connected to this node
// too: nobody is further away), a topic's publisher writes each batch
// straight to every subscribed peer on a stream of its own (one per peer,
// for all topics), and the receiver delivers it from the stream's reading
// goroutine. In a partial mesh, with signing on, or while one subscribed
// peer's direct stream is not open yet, a batch goes through GossipSub as
// before. Each batch takes exactly one of the two ways, so nothing is
// duplicated; both carry the same per-publisher sequence numbers, so the
// reorderer keeps them in order when the way changes. A receiver that holds
// no state for the publisher yet cannot tell that a direct batch overtook
// the last one sent through GossipSub, so the first batch on a direct
// stream after some went to that peer through GossipSub is preceded by an
// "after" frame naming the last of those; the receiver then holds the
// direct batch until that one arrived (at most the reorderer's wait).
// Streams are opened as soon as a peer is ready, so that is rare. Which
// peers subscribe to what is GossipSub's own view (their subscription RPCs,
// seen by the tracer), so both ways reach the same peers.
//
// A frame on a direct stream:
//
//	length  uvarint (of what follows)
//	kind    byte: frameBatch, frameAfter or frameHello (the first frame of
//	        every stream, so that the stream is negotiated at once)
//	topic   uvarint length + bytes (with Config.TopicPrefix; empty in hello)
//	then    frameBatch: one batch (batch.go), whose author must be the
//	        stream's peer; frameAfter: uvarint sequence number of the last
//	        batch of the topic sent to this peer through GossipSub

// DirectProtocol is the stream protocol of direct batches.
const DirectProtocol = protocol.ID("/reflect/pubsub/direct/1.0.0")

const (
	// directQueue bounds the frames queued towards one peer, like
	// GossipSub's outbound queue: beyond it, frames are dropped and
	// counted (OutboundDropped). The window keeps the publisher from
	// getting there.
	directQueue = 256
	// directCoalesce bounds the bytes of queued frames written with one
	// call (one multiplexer frame, one encryption, one system call).
	directCoalesce = 60 << 10
	// directRetry spaces attempts to open a peer's direct stream.
	directRetry = time.Second
	// directOpenTimeout bounds opening a stream.
	directOpenTimeout = 10 * time.Second
	// directWriteTimeout is the write deadline of a direct stream: a peer
	// that reads nothing for this long is given up on.
	directWriteTimeout = 30 * time.Second
)

// Frame kinds.
const (
	frameBatch = 0
	frameAfter = 1
	frameHello = 2 // the first frame of a stream; carries nothing
)

// helloFrame opens every direct stream: length 2, kind, empty topic.
var helloFrame = []byte{2, frameHello, 0}

var errDirectAuthor = errors.New("batch author is not the stream's peer")

// direct keeps this node's direct streams.
type direct struct {
	ps       *PubSub
	enabled  bool // off with signing: GossipSub signs and verifies
	maxFrame uint64

	mu      sync.Mutex
	subs    map[string]map[peer.ID]struct{} // wire topic → subscribed peers
	out     map[peer.ID]*directPeer         // outbound streams, open or opening
	retry   map[peer.ID]time.Time           // no new attempt before
	in      map[network.Stream]struct{}     // inbound streams being read
	inWG    sync.WaitGroup                  // their readers
	closing bool
}

func newDirect(p *PubSub) *direct {
	return &direct{
		ps:       p,
		enabled:  !p.cfg.Sign,
		maxFrame: uint64(maxWireSize(p.cfg) + 2*maxTopicLen + 16),
		subs:     map[string]map[peer.ID]struct{}{},
		out:      map[peer.ID]*directPeer{},
		retry:    map[peer.ID]time.Time{},
		in:       map[network.Stream]struct{}{},
	}
}

// start accepts the peers' direct streams.
func (d *direct) start() {
	if d.enabled {
		d.ps.host.SetStreamHandler(DirectProtocol, d.handle)
	}
}

// learnSubs mirrors a peer's subscription changes (GossipSub's event loop,
// just before GossipSub applies them).
func (d *direct) learnSubs(p peer.ID, subs []*pb.RPC_SubOpts) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, so := range subs {
		t := so.GetTopicid()
		if so.GetSubscribe() {
			m := d.subs[t]
			if m == nil {
				m = map[peer.ID]struct{}{}
				d.subs[t] = m
			}
			m[p] = struct{}{}
		} else if m := d.subs[t]; m != nil {
			delete(m, p)
			if len(m) == 0 {
				delete(d.subs, t)
			}
		}
	}
}

// subscribers calls fn for each peer subscribed to the wire topic.
func (d *direct) subscribers(topic string, fn func(peer.ID)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p := range d.subs[topic] {
		fn(p)
	}
}

// forgetSubs drops a peer's subscriptions, as GossipSub does when its
// stream to the peer closes.
func (d *direct) forgetSubs(p peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for t, m := range d.subs {
		delete(m, p)
		if len(m) == 0 {
			delete(d.subs, t)
		}
	}
}

// ready opens a direct stream to a peer whose pub/sub just became ready,
// so that batches can take it from the start.
func (d *direct) ready(p peer.ID) {
	if !d.enabled {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out[p] == nil {
		d.openLocked(p)
	}
}

// disconnected closes the stream to a peer that left.
func (d *direct) disconnected(p peer.ID) {
	d.mu.Lock()
	w := d.out[p]
	delete(d.out, p)
	delete(d.retry, p)
	d.mu.Unlock()
	if w != nil {
		w.stop()
	}
}

// route returns the direct streams to every peer subscribed to the wire
// topic, reusing buf, and whether the batch may take them: the
// neighbourhood is closed and every one of those streams is open.
func (d *direct) route(topic string, buf []*directPeer) ([]*directPeer, bool) {
	if !d.enabled || !d.ps.topo.closed() {
		return buf[:0], false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out, ok := buf[:0], !d.closing
	for p := range d.subs[topic] {
		w := d.out[p]
		if w == nil {
			d.openLocked(p)
			ok = false
			continue
		}
		if !w.open {
			ok = false
			continue
		}
		out = append(out, w)
	}
	return out, ok
}

// openLocked starts opening a direct stream to p unless an attempt failed
// recently; d.mu held.
func (d *direct) openLocked(p peer.ID) {
	if d.closing || time.Now().Before(d.retry[p]) {
		return
	}
	w := &directPeer{d: d, id: p, key: flow{p: p, direct: true}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	d.out[p] = w
	d.ps.goOwned(w.run)
}

// opened marks w usable; it reports false if w was replaced or stopped.
func (d *direct) opened(w *directPeer) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out[w.id] != w || d.closing {
		return false
	}
	w.open = true
	return true
}

// failed forgets w after its stream failed and schedules the next attempt.
func (d *direct) failed(w *directPeer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out[w.id] == w {
		delete(d.out, w.id)
		d.retry[w.id] = time.Now().Add(directRetry)
	}
}

// close stops every direct stream and waits for the inbound readers.
func (d *direct) close() {
	d.mu.Lock()
	d.closing = true
	out := d.out
	d.out = map[peer.ID]*directPeer{}
	for s := range d.in {
		_ = s.Reset()
	}
	d.mu.Unlock()
	if d.enabled {
		d.ps.host.RemoveStreamHandler(DirectProtocol)
	}
	for _, w := range out {
		w.stop()
	}
	d.inWG.Wait()
}

// directPeer writes frames to one peer's direct stream.
type directPeer struct {
	d    *direct
	id   peer.ID
	key  flow
	open bool // under d.mu: the stream is open and w takes frames

	wake     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	q       [][]byte
	dead    bool
	stream  network.Stream
	scratch []byte
}

// enqueue queues a frame. It reports false if the frame was not queued:
// the stream is gone (the frame is lost with the link) or its queue is
// full (dropped, counted).
func (w *directPeer) enqueue(frame []byte) bool {
	tr := w.d.ps.tr
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return false
	}
	if len(w.q) >= directQueue {
		w.mu.Unlock()
		tr.droppedRPC.Add(1)
		return false
	}
	tr.add(w.key, 1)
	w.q = append(w.q, frame)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// stop ends the writer: it writes nothing more and closes the stream.
func (w *directPeer) stop() {
	w.stopOnce.Do(func() {
		close(w.done)
		w.mu.Lock()
		s := w.stream
		w.mu.Unlock()
		if s != nil {
			_ = s.SetWriteDeadline(time.Now()) // unblock a write stuck on a full window
		}
	})
}

// run opens the stream, then writes what is queued until stopped or the
// stream fails.
func (w *directPeer) run() {
	ps := w.d.ps
	ctx, cancel := context.WithTimeout(ps.ctx, directOpenTimeout)
	s, err := ps.host.NewStream(network.WithNoDial(ctx, "pubsub direct"), w.id, DirectProtocol)
	cancel()
	if err != nil {
		ps.log.Debug("pubsub: no direct stream", "peer", w.id, "err", err)
		w.d.failed(w)
		w.finish(nil)
		return
	}
	// libp2p may negotiate the protocol lazily, with the first write, and
	// the peer resets a stream whose negotiation has not come within 10 s.
	// So write a hello frame now: the stream may stay idle for longer than
	// that, and a batch must not be the first to find out that it is dead.
	_ = s.SetWriteDeadline(time.Now().Add(directOpenTimeout))
	if _, err := s.Write(helloFrame); err != nil {
		ps.log.Debug("pubsub: direct stream refused", "peer", w.id, "err", err)
		_ = s.Reset()
		w.d.failed(w)
		w.finish(nil)
		return
	}
	w.mu.Lock()
	w.stream = s
	w.mu.Unlock()
	if !w.d.opened(w) {
		w.finish(s)
		return
	}
	var deadline time.Time
	for {
		select {
		case <-w.done:
			w.finish(s)
			return
		case <-w.wake:
		}
		w.mu.Lock()
		frames := w.q
		w.q = nil
		w.mu.Unlock()
		for len(frames) > 0 {
			buf, n := w.coalesce(frames)
			if now := time.Now(); deadline.Sub(now) < directWriteTimeout/2 {
				deadline = now.Add(directWriteTimeout)
				_ = s.SetWriteDeadline(deadline)
				select {
				case <-w.done: // stop's deadline may have been overwritten
					ps.tr.add(w.key, -len(frames))
					w.finish(s)
					return
				default:
				}
			}
			_, err := s.Write(buf)
			ps.tr.add(w.key, -n)
			frames = frames[n:]
			if err != nil {
				// What was not written is lost for this peer: count it
				// like GossipSub's drops.
				ps.tr.add(w.key, -len(frames))
				ps.tr.droppedRPC.Add(uint64(n + len(frames)))
				ps.log.Debug("pubsub: direct stream failed", "peer", w.id, "err", err)
				w.d.failed(w)
				_ = s.Reset()
				w.finish(nil)
				return
			}
		}
	}
}

// coalesce returns the bytes of the first frames, up to directCoalesce
// (at least one frame), and how many frames they hold.
func (w *directPeer) coalesce(frames [][]byte) ([]byte, int) {
	if len(frames) == 1 || len(frames[0])+len(frames[1]) > directCoalesce {
		return frames[0], 1
	}
	buf := append(w.scratch[:0], frames[0]...)
	n := 1
	for n < len(frames) && len(buf)+len(frames[n]) <= directCoalesce {
		buf = append(buf, frames[n]...)
		n++
	}
	w.scratch = buf
	return buf, n
}

// finish marks w dead, forgets what is still queued, and closes s (if
// not nil) after the frames written so far.
func (w *directPeer) finish(s network.Stream) {
	w.mu.Lock()
	w.dead = true
	n := len(w.q)
	w.q = nil
	w.mu.Unlock()
	w.d.ps.tr.add(w.key, -n)
	if s != nil {
		_ = s.CloseWrite()
		_ = s.CloseRead()
	}
}

// handle reads a peer's direct stream and delivers its batches.
func (d *direct) handle(s network.Stream) {
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		_ = s.Reset()
		return
	}
	d.in[s] = struct{}{}
	d.inWG.Add(1)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.in, s)
		d.mu.Unlock()
		d.inWG.Done()
	}()
	from := s.Conn().RemotePeer()
	r := bufio.NewReaderSize(s, 16<<10)
	topics := map[string]*topic{}
	after := map[*topic]uint64{}
	for {
		n, err := binary.ReadUvarint(r)
		if err == nil && (n == 0 || n > d.maxFrame) {
			err = fmt.Errorf("%w: direct frame of %d bytes", ErrMalformed, n)
		}
		var frame []byte
		if err == nil {
			frame = make([]byte, n)
			_, err = io.ReadFull(r, frame)
		}
		if err == nil {
			err = d.receive(from, frame, topics, after)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = s.Close()
				return
			}
			if errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrVersion) || errors.Is(err, errDirectAuthor) {
				d.ps.tr.invalid.Add(1)
				d.ps.log.Debug("pubsub: bad direct frame", "from", from, "err", err)
			}
			_ = s.Reset()
			return
		}
	}
}

// receive handles one frame: it delivers a batch to the topic's
// subscriptions, or records which batch the next one follows.
func (d *direct) receive(from peer.ID, frame []byte, topics map[string]*topic, after map[*topic]uint64) error {
	if len(frame) < 1 || frame[0] > frameHello {
		return fmt.Errorf("%w: direct frame kind", ErrMalformed)
	}
	kind, frame := frame[0], frame[1:]
	if kind == frameHello {
		return nil
	}
	tl, k := uvarint(frame)
	if k <= 0 || tl > uint64(len(frame)-k) {
		return fmt.Errorf("%w: direct frame topic", ErrMalformed)
	}
	wire, rest := frame[k:k+int(tl)], frame[k+int(tl):]
	t := topics[string(wire)]
	if t == nil {
		name, ok := strings.CutPrefix(string(wire), d.ps.cfg.TopicPrefix)
		if !ok {
			return nil // not this mesh's topic
		}
		d.ps.mu.Lock()
		t = d.ps.topics[name]
		d.ps.mu.Unlock()
		if t == nil {
			return nil // not joined here (any more)
		}
		topics[t.wire] = t
	}
	if kind == frameAfter {
		seq, n := uvarint(rest)
		if n <= 0 || n != len(rest) {
			return fmt.Errorf("%w: direct frame sequence number", ErrMalformed)
		}
		after[t] = seq
		return nil
	}
	b, err := decodeBatch(rest, d.ps.maxMsg)
	if err != nil {
		return err
	}
	if string(b.author) != string(from) {
		return errDirectAuthor
	}
	if err := t.vet(b); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if seq, ok := after[t]; ok {
		delete(after, t)
		t.order.follow(b.author, seq)
	}
	t.order.add(b)
	return nil
}

// encodeAfter encodes a frame saying that the next batch on the wire
// topic follows batch seq.
func encodeAfter(topic string, seq uint64) []byte {
	inner := 1 + uvarintLen(uint64(len(topic))) + len(topic) + uvarintLen(seq)
	out := make([]byte, 0, uvarintLen(uint64(inner))+inner)
	out = binary.AppendUvarint(out, uint64(inner))
	out = append(out, frameAfter)
	out = binary.AppendUvarint(out, uint64(len(topic)))
	out = append(out, topic...)
	return binary.AppendUvarint(out, seq)
}

// encodeFrame encodes the writer's messages as one direct frame on the
// wire topic and returns it with the offset of the batch inside it.
func (w *batchWriter) encodeFrame(topic string, author []byte, seq uint64) ([]byte, int) {
	inner := 1 + uvarintLen(uint64(len(topic))) + len(topic) + w.encodedLen(author, seq)
	out := make([]byte, 0, uvarintLen(uint64(inner))+inner)
	out = binary.AppendUvarint(out, uint64(inner))
	out = append(out, frameBatch)
	out = binary.AppendUvarint(out, uint64(len(topic)))
	out = append(out, topic...)
	off := len(out)
	return w.appendBatch(out, author, seq), off
}
