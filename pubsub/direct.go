package pubsub

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
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
// So the router (router.go) may send a topic's batch straight to every
// subscribed peer on a stream of its own (one per peer, for all topics);
// the receiver checks it as GossipSub's validator would and hands it to the
// topic's reorderer (order.go). This file keeps the streams: one writer
// goroutine per peer with a bounded queue, opened as soon as the peer is
// ready (so that batches can take it from the start) and retried every
// directRetry after a failure; and one reader goroutine per inbound stream.
//
// The same streams carry what is meant for one peer only (calls.go: Send,
// queue groups, requests and replies), with or without signing.
//
// A frame on a direct stream:
//
//	length  uvarint (of what follows)
//	kind    byte: frameBatch, frameHello (the first frame of every stream,
//	        so that the stream is negotiated at once), or one of calls.go's
//	topic   uvarint length + bytes (with Config.TopicPrefix; empty in hello)
//	then    frameBatch: one batch (batch.go), whose author must be the
//	        stream's peer

// directProtocol is the stream protocol of direct batches.
// 1.1.0 added headers (a batch flag) and the call frames (calls.go):
// a 1.0.0 node would reset a stream carrying them, so the two do not
// speak; between them batches go through GossipSub (without headers'
// flag, which 1.0.0 refuses) and calls find no route. 1.2.0 signs
// forwarded frames (routes.go); since then GossipSub messages are signed
// too, which nodes before it refuse, as they refuse those nodes' unsigned
// ones: the versions do not mix.
const directProtocol = protocol.ID("/reflect/pubsub/direct/1.2.0")

const (
	// directQueue bounds the frames queued towards one peer, like
	// GossipSub's outbound queue: beyond it, frames are dropped and
	// counted (OutboundDropped). Flow control keeps publishers from
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
	// directFrameTimeout bounds the reading of one frame once its length
	// has arrived (an idle stream may wait for the next frame for ever).
	directFrameTimeout = 10 * time.Second
)

// Frame kinds. (Kind 1 announced, in earlier versions, which batch the next
// one followed; the batch header's flagSwitched says it now.)
const (
	frameBatch = 0
	frameHello = 2 // the first frame of a stream; carries nothing
)

// helloFrame opens every direct stream: length 2, kind, empty topic.
var helloFrame = []byte{2, frameHello, 0}

var errDirectAuthor = errors.New("batch author is not the stream's peer")

// direct keeps this node's direct streams.
type direct struct {
	host     host.Host
	log      *slog.Logger
	flows    *flows
	count    *netCounters
	forged   func(topic string, author, sender peer.ID)        // counts and logs a forged author (forged.go)
	lookup   func(wire string) *topic                          // a joined topic, or nil
	goOwned  func(func())                                      // runs a goroutine that Close waits for
	ctx      context.Context                                   // ends at Close
	batches  bool                                              // topics' batches may take the streams (off with signing: GossipSub signs and verifies)
	calls    func(from peer.ID, kind byte, frame []byte) error // handles calls.go's frames
	maxMsg   int
	maxFrame uint64

	frameTimeout time.Duration // directFrameTimeout; tests shorten it (under mu)

	// testHookReceive, set by tests only, runs before each received batch
	// goes to its reorderer, with its wire topic and way (direct: true
	// here, false from GossipSub).
	testHookReceive atomic.Pointer[func(topic string, direct bool)]

	mu      sync.Mutex
	out     map[peer.ID]*directPeer     // outbound streams, open or opening
	retry   map[peer.ID]time.Time       // no new attempt before
	in      map[network.Stream]struct{} // inbound streams being read
	inWG    sync.WaitGroup              // their readers
	closing bool
}

func newDirect(p *PubSub) *direct {
	return &direct{
		host:         p.host,
		log:          p.log,
		flows:        p.flows,
		count:        &p.count,
		forged:       p.forged,
		lookup:       p.joinedWire,
		goOwned:      p.goOwned,
		ctx:          p.ctx,
		batches:      !p.cfg.Sign,
		calls:        p.receiveCall,
		maxMsg:       p.cfg.MaxMessageSize,
		maxFrame:     uint64(maxWireSize(p.cfg) + 2*maxTopicLen + 16),
		frameTimeout: directFrameTimeout,
		out:          map[peer.ID]*directPeer{},
		retry:        map[peer.ID]time.Time{},
		in:           map[network.Stream]struct{}{},
	}
}

// start accepts the peers' direct streams.
func (d *direct) start() {
	d.host.SetStreamHandler(directProtocol, d.handle)
}

// ready opens a direct stream to a peer whose pub/sub just became ready,
// so that batches can take it from the start.
func (d *direct) ready(p peer.ID) {
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

// streams appends to buf the open direct streams of peers and reports
// whether every one of them has one (it starts opening the missing ones).
func (d *direct) streams(peers []peer.ID, buf []*directPeer) ([]*directPeer, bool) {
	if !d.batches {
		return buf, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ok := !d.closing
	for _, p := range peers {
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
		buf = append(buf, w)
	}
	return buf, ok
}

// openLocked starts opening a direct stream to p unless an attempt failed
// recently; d.mu held.
func (d *direct) openLocked(p peer.ID) {
	if d.closing || time.Now().Before(d.retry[p]) {
		return
	}
	w := &directPeer{d: d, id: p, wake: make(chan struct{}, 1), done: make(chan struct{}), settled: make(chan struct{})}
	d.out[p] = w
	d.goOwned(w.run)
}

// stream returns p's open direct stream, opening it and waiting for it
// if needed, or an error wrapping ErrNoRoute when p cannot be reached
// (not connected, refused, or an attempt failed less than directRetry
// ago).
func (d *direct) stream(ctx context.Context, p peer.ID) (*directPeer, error) {
	for {
		d.mu.Lock()
		if d.closing {
			d.mu.Unlock()
			return nil, ErrClosed
		}
		w := d.out[p]
		if w == nil {
			d.openLocked(p)
			if w = d.out[p]; w == nil {
				d.mu.Unlock()
				return nil, fmt.Errorf("%w: %s", ErrNoRoute, p)
			}
		}
		if w.open {
			d.mu.Unlock()
			return w, nil
		}
		d.mu.Unlock()
		select {
		case <-w.settled: // opened or failed: look again
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// openStream returns p's direct stream if it is open, else nil (and
// starts opening it).
func (d *direct) openStream(p peer.ID) *directPeer {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.out[p]
	if w == nil {
		d.openLocked(p)
		return nil
	}
	if !w.open {
		return nil
	}
	return w
}

// opened marks w usable; it reports false if w was replaced or stopped.
func (d *direct) opened(w *directPeer) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out[w.id] != w || d.closing {
		return false
	}
	w.open = true
	w.settle()
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
	d.host.RemoveStreamHandler(directProtocol)
	for _, w := range out {
		w.stop()
	}
	d.inWG.Wait()
}

// directFrame is one frame queued towards a peer, with its wire topic for
// flow control.
type directFrame struct {
	b     []byte
	topic string
}

// directPeer writes frames to one peer's direct stream.
type directPeer struct {
	d    *direct
	id   peer.ID
	open bool // under d.mu: the stream is open and w takes frames

	wake       chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
	settled    chan struct{} // closed once the stream is open or has failed
	settleOnce sync.Once

	mu      sync.Mutex
	q       []directFrame
	dead    bool
	stream  network.Stream
	scratch []byte
}

// enqueue queues a frame of the wire topic. It reports false if the frame
// was not queued: the stream is gone (the frame is lost with the link) or
// its queue is full (dropped, counted).
func (w *directPeer) enqueue(frame []byte, topic string) bool {
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return false
	}
	if len(w.q) >= directQueue {
		w.mu.Unlock()
		w.d.count.outboundDropped.Add(1)
		return false
	}
	w.d.flows.add(flowKey{p: w.id, topic: topic, direct: true}, 1)
	w.q = append(w.q, directFrame{frame, topic})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// unqueued takes frames out of the flows: written or lost.
func (w *directPeer) unqueued(frames []directFrame) {
	for _, f := range frames {
		w.d.flows.add(flowKey{p: w.id, topic: f.topic, direct: true}, -1)
	}
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
	d := w.d
	ctx, cancel := context.WithTimeout(d.ctx, directOpenTimeout)
	s, err := d.host.NewStream(network.WithNoDial(ctx, "pubsub direct"), w.id, directProtocol)
	cancel()
	if err != nil {
		d.log.Debug("pubsub: no direct stream", "peer", w.id, "err", err)
		d.failed(w)
		w.finish(nil)
		return
	}
	// libp2p may negotiate the protocol lazily, with the first write, and
	// the peer resets a stream whose negotiation has not come within 10 s.
	// So write a hello frame now: the stream may stay idle for longer than
	// that, and a batch must not be the first to find out that it is dead.
	_ = s.SetWriteDeadline(time.Now().Add(directOpenTimeout))
	if _, err := s.Write(helloFrame); err != nil {
		d.log.Debug("pubsub: direct stream refused", "peer", w.id, "err", err)
		_ = s.Reset()
		d.failed(w)
		w.finish(nil)
		return
	}
	w.mu.Lock()
	w.stream = s
	w.mu.Unlock()
	if !d.opened(w) {
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
					w.unqueued(frames)
					w.finish(s)
					return
				default:
				}
			}
			_, err := s.Write(buf)
			w.unqueued(frames[:n])
			if err != nil {
				// What was not written is lost for this peer: count it
				// like GossipSub's drops.
				w.unqueued(frames[n:])
				d.count.outboundDropped.Add(uint64(len(frames)))
				d.log.Debug("pubsub: direct stream failed", "peer", w.id, "err", err)
				d.failed(w)
				_ = s.Reset()
				w.finish(nil)
				return
			}
			frames = frames[n:]
		}
	}
}

// coalesce returns the bytes of the first frames, up to directCoalesce
// (at least one frame), and how many frames they hold.
func (w *directPeer) coalesce(frames []directFrame) ([]byte, int) {
	if len(frames) == 1 || len(frames[0].b)+len(frames[1].b) > directCoalesce {
		return frames[0].b, 1
	}
	buf := append(w.scratch[:0], frames[0].b...)
	n := 1
	for n < len(frames) && len(buf)+len(frames[n].b) <= directCoalesce {
		buf = append(buf, frames[n].b...)
		n++
	}
	w.scratch = buf
	return buf, n
}

// settle wakes those waiting for the stream to open (direct.stream).
func (w *directPeer) settle() { w.settleOnce.Do(func() { close(w.settled) }) }

// finish marks w dead, forgets what is still queued, and closes s (if
// not nil) after the frames written so far.
func (w *directPeer) finish(s network.Stream) {
	defer w.settle()
	w.mu.Lock()
	w.dead = true
	q := w.q
	w.q = nil
	w.mu.Unlock()
	w.unqueued(q)
	// What was still queued is lost for this peer (it left, or we close):
	// counted like the other drops.
	w.d.count.outboundDropped.Add(uint64(len(q)))
	if s != nil {
		_ = s.CloseWrite()
		_ = s.CloseRead()
	}
}

// handle reads a peer's direct stream and hands its batches on.
func (d *direct) handle(s network.Stream) {
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		_ = s.Reset()
		return
	}
	d.in[s] = struct{}{}
	d.inWG.Add(1)
	frameTimeout := d.frameTimeout
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
	for {
		n, err := binary.ReadUvarint(r)
		if err == nil && (n == 0 || n > d.maxFrame) {
			err = fmt.Errorf("%w: direct frame of %d bytes", ErrMalformed, n)
		}
		var frame []byte
		if err == nil {
			// A frame that has begun must end soon, and takes memory as
			// its bytes arrive, not as its length claims: a peer cannot
			// pin memory or this goroutine with half-sent frames.
			_ = s.SetReadDeadline(time.Now().Add(frameTimeout))
			frame, err = readFrame(r, n)
			_ = s.SetReadDeadline(time.Time{})
			if isTimeout(err) { // counted in Invalid below
				err = fmt.Errorf("%w: a frame of %d bytes unfinished after %v", ErrMalformed, n, frameTimeout)
			}
		}
		if err == nil {
			err = d.receive(from, frame, topics)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = s.Close()
				return
			}
			switch {
			case errors.Is(err, errDirectAuthor) || errors.Is(err, errCallAuthor):
				d.count.invalid.Add(1)
				d.forged("", "", from)
			case errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrVersion):
				d.count.invalid.Add(1)
				d.log.Debug("pubsub: bad direct frame", "from", from, "err", err)
			}
			_ = s.Reset()
			return
		}
	}
}

// receive handles one frame: a batch is checked as GossipSub's validator
// checks it (topic.go) and goes to the topic's reorderer. A frame that does
// not decode, or a batch of another author, ends the stream (the peer is
// broken or hostile); a batch the topic's own check refuses is skipped.
func (d *direct) receive(from peer.ID, frame []byte, topics map[string]*topic) error {
	if len(frame) < 1 {
		return fmt.Errorf("%w: empty direct frame", ErrMalformed)
	}
	kind, frame := frame[0], frame[1:]
	switch kind {
	case frameHello:
		return nil
	case frameBatch:
	case frameSend, frameRequest, frameReply, frameForward:
		return d.calls(from, kind, frame)
	default:
		return fmt.Errorf("%w: direct frame kind %d", ErrMalformed, kind)
	}
	tl, k := uvarint(frame)
	if k <= 0 || tl > uint64(len(frame)-k) {
		return fmt.Errorf("%w: direct frame topic", ErrMalformed)
	}
	wire, rest := frame[k:k+int(tl)], frame[k+int(tl):]
	t := topics[string(wire)]
	if t == nil {
		if t = d.lookup(string(wire)); t == nil {
			return nil // not joined here (any more), or not this mesh's
		}
		topics[t.wire] = t
	}
	b, err := decodeBatch(rest, d.maxMsg)
	if err != nil {
		return err
	}
	if string(b.author) != string(from) {
		return errDirectAuthor
	}
	if err := t.vet(b); err != nil {
		// The topic refuses the batch; the stream is sound and what
		// follows on it is not lost.
		d.count.invalid.Add(1)
		d.log.Debug("pubsub: refusing a direct batch", "topic", t.name, "from", from, "err", err)
		t.refused(b)
		return nil
	}
	if h := d.testHookReceive.Load(); h != nil {
		(*h)(t.wire, true)
	}
	t.order.add(b)
	return nil
}

// isTimeout reports a deadline's error (yamux's does not wrap
// os.ErrDeadlineExceeded, it says Timeout).
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &t) && t.Timeout()
}

// frameFirst is the first allocation for a frame being read: a full batch
// of the default size (DefaultMaxBatchBytes) and the frame of a 64 KiB
// message fit it with their headers, so the common frames are read into
// one buffer of their size, with no copy. A peer that sends half a frame
// holds at most this much of our memory until frameTimeout ends it.
const frameFirst = DefaultMaxBatchBytes + 8<<10

// readFrame reads an n-byte frame into a buffer of exactly n bytes,
// allocated as the bytes arrive (at most doubling), never n at once.
func readFrame(r io.Reader, n uint64) ([]byte, error) {
	buf := make([]byte, min(n, frameFirst))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if uint64(got) == n {
			return buf, nil
		}
		next := make([]byte, min(n, 2*uint64(len(buf))))
		copy(next, buf)
		buf = next
	}
}

// encodeFrame encodes the writer's messages as one direct frame on the
// wire topic and returns it with the offset of the batch inside it.
func (w *batchWriter) encodeFrame(topic string, author []byte, seq uint64, flags byte) ([]byte, int) {
	inner := 1 + uvarintLen(uint64(len(topic))) + len(topic) + w.encodedLen(author, seq)
	out := make([]byte, 0, uvarintLen(uint64(inner))+inner)
	out = binary.AppendUvarint(out, uint64(inner))
	out = append(out, frameBatch)
	out = binary.AppendUvarint(out, uint64(len(topic)))
	out = append(out, topic...)
	off := len(out)
	return w.appendBatch(out, author, seq, flags), off
}
