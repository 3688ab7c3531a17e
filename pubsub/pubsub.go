package pubsub

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PubSub publishes and delivers messages on named topics over GossipSub.
// It is safe for concurrent use. Create it with New; release it with Close.
type PubSub struct {
	cfg    Config
	log    *slog.Logger
	host   host.Host
	author []byte // our peer id, written into every batch
	gs     *lp2pps.PubSub
	tr     *tracer
	topo   *topology
	dir    *direct
	seq    atomic.Uint64
	maxMsg int          // largest application message accepted
	queued atomic.Int64 // messages accepted by Publish, not yet handed to GossipSub or a direct stream

	flushMu  sync.Mutex // one Flush at a time
	flush    *lp2pps.Topic
	flushSub *lp2pps.Subscription

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	topics map[string]*topic
	closed bool
	resets map[peer.ID]time.Time // streamLost's last reset per peer

	connResets atomic.Uint64
}

// New starts GossipSub on h. The host should already be configured with the
// mesh's private network; the node package does all of that.
func New(h host.Host, cfg Config) (*PubSub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &PubSub{
		cfg:    cfg,
		log:    cfg.Logger,
		host:   h,
		author: []byte(h.ID()),
		topo:   newTopology(h.ID()),
		maxMsg: cfg.MaxMessageSize,
		ctx:    ctx,
		cancel: cancel,
		topics: make(map[string]*topic),
		resets: make(map[peer.ID]time.Time),
	}
	// A peer that becomes ready can receive our announcement: send it again.
	p.tr = newTracer(cfg.Window, func(q peer.ID) {
		p.topo.poke()
		p.dir.ready(q)
		if cfg.OnPeerReady != nil {
			cfg.OnPeerReady(q)
		}
	})
	p.tr.onLost = p.streamLost
	p.dir = newDirect(p)
	p.tr.subs, p.tr.gone = p.dir.learnSubs, p.dir.forgetSubs
	// Sequence numbers start at the clock so that a restarted node with a
	// persisted identity does not reuse message ids peers still remember.
	p.seq.Store(uint64(time.Now().UnixNano()))

	policy := lp2pps.StrictNoSign
	opts := []lp2pps.Option{}
	if cfg.Sign {
		policy = lp2pps.StrictSign
	} else {
		opts = append(opts, lp2pps.WithNoAuthor())
	}
	params := lp2pps.DefaultGossipSubParams()
	// A LAN mesh is small: keep the message cache short so large bursts do
	// not pin memory for seconds (history × heartbeat).
	params.HistoryLength = 3
	params.HistoryGossip = 2
	params.HeartbeatInitialDelay = 50 * time.Millisecond
	opts = append(opts,
		lp2pps.WithMessageSignaturePolicy(policy),
		lp2pps.WithMessageIdFn(messageID),
		// Without flood publish, a message published before the first
		// heartbeat builds the mesh goes nowhere.
		lp2pps.WithFloodPublish(true),
		lp2pps.WithPeerExchange(false),
		lp2pps.WithGossipSubParams(params),
		lp2pps.WithMaxMessageSize(maxWireSize(cfg)),
		lp2pps.WithPeerOutboundQueueSize(256),
		lp2pps.WithValidateQueueSize(4096),
		// One validation worker keeps messages in publisher order; the
		// validator is cheap (it parses a header and frames).
		lp2pps.WithValidateWorkers(1),
		lp2pps.WithRawTracer(p.tr),
		lp2pps.WithLogger(cfg.Logger),
	)
	gs, err := lp2pps.NewGossipSub(ctx, h, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("pubsub: start gossipsub: %w", err)
	}
	p.gs = gs
	p.dir.start()
	// Every node subscribes to the flush topic from the start: besides
	// serving Flush, it makes the hello a node sends each new peer non-empty,
	// and that hello is what tells the peer (OnPeerReady) that we are ready.
	if err := p.joinFlushTopic(); err != nil {
		cancel()
		return nil, err
	}
	if err := p.startTopology(); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

// maxWireSize is GossipSub's limit: one batch plus headers and protobuf framing.
func maxWireSize(cfg Config) int {
	return max(cfg.MaxMessageSize, cfg.MaxBatchBytes) + 4096
}

// messageID takes the id from the topic and the batch header (author and
// the topic's sequence number), which saves hashing every message. Bytes
// that do not parse get a hash so they can still be deduplicated before the
// validator rejects them.
func messageID(m *pb.Message) string {
	if id, _, _, _, err := batchHeader(m.GetData()); err == nil {
		return m.GetTopic() + "\x00" + string(id)
	}
	sum := sha256.Sum256(m.GetData())
	return string(sum[:])
}

// Close stops every subscription and publisher, waits for their goroutines,
// and leaves GossipSub. Messages still queued for publishing are discarded.
// A second Close returns ErrClosed. Close must not be called from a handler.
func (p *PubSub) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	topics := p.topics
	p.topics = nil
	p.mu.Unlock()

	for _, t := range topics {
		t.shutdown()
	}
	p.dir.close()
	p.cancel()
	p.wg.Wait()
	return nil
}

// go runs f on a goroutine owned by p: Close waits for it.
func (p *PubSub) goOwned(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// checkTopic validates a user topic name.
func checkTopic(name string, reserved bool) error {
	switch {
	case name == "" || len(name) > maxTopicLen || !utf8.ValidString(name):
		return fmt.Errorf("%w: %q", ErrTopic, name)
	case strings.HasPrefix(name, ReservedPrefix) && !reserved:
		return fmt.Errorf("%w: %q", ErrReservedTopic, name)
	}
	return nil
}

// topic returns the topic named name, joining it on first use.
func (p *PubSub) topic(name string, reserved bool) (*topic, error) {
	if err := checkTopic(name, reserved); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if t, ok := p.topics[name]; ok {
		return t, nil
	}
	t := newTopic(p, name)
	full := t.wire
	if err := p.gs.RegisterTopicValidator(full, t.validate, lp2pps.WithValidatorInline(true)); err != nil {
		return nil, fmt.Errorf("pubsub: register validator for %q: %w", name, err)
	}
	gt, err := p.gs.Join(full)
	if err != nil {
		_ = p.gs.UnregisterTopicValidator(full)
		return nil, fmt.Errorf("pubsub: join %q: %w", name, err)
	}
	t.gt = gt
	p.topics[name] = t
	return t, nil
}

// Publish sends data to every subscriber of topic on the other nodes (and
// to local subscribers when Config.Echo is set). It returns once the message
// is queued; if the queue is full it blocks until there is room or ctx ends
// (backpressure, never a silent drop). The caller may reuse data afterwards.
func (p *PubSub) Publish(ctx context.Context, topic string, data []byte, opts ...Option) error {
	return p.publish(ctx, topic, append([]byte(nil), data...), opts)
}

// publish queues data, which the caller hands over.
func (p *PubSub) publish(ctx context.Context, name string, data []byte, opts []Option) error {
	o := applyOptions(opts)
	if len(data) > p.maxMsg {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), p.maxMsg)
	}
	t, err := p.topic(name, o.reserved)
	if err != nil {
		return err
	}
	return t.enqueue(ctx, data)
}

// Subscribe calls handler for every message published on topic by other
// nodes, in order per publisher, on a goroutine of its own. A slow handler
// never delays other subscriptions or the mesh: when its queue is full, new
// messages for it are dropped and counted (Subscription.Dropped, Stats).
func (p *PubSub) Subscribe(topic string, handler func(Message), opts ...Option) (*Subscription, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	o := applyOptions(opts)
	t, err := p.topic(topic, o.reserved)
	if err != nil {
		return nil, err
	}
	return t.subscribe(handler, o)
}

// Topics lists the topics this node has joined (user names, sorted by the
// caller if needed).
func (p *PubSub) Topics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.topics))
	for name := range p.topics {
		out = append(out, name)
	}
	return out
}

// ListPeers returns the peers subscribed to topic that this node knows of.
func (p *PubSub) ListPeers(topic string) []peer.ID {
	return p.gs.ListPeers(p.cfg.TopicPrefix + topic)
}

// WaitSubscribers blocks until at least n other nodes are known to be
// subscribed to topic, or ctx ends. A message broadcast before a node's
// subscription has reached the publisher does not reach that node, so a
// program that must not miss the first messages waits here first.
func (p *PubSub) WaitSubscribers(ctx context.Context, topic string, n int) error {
	if _, err := p.topic(topic, true); err != nil {
		return err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if len(p.ListPeers(topic)) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pubsub: waiting for %d subscribers of %q: %w", n, topic, ctx.Err())
		case <-p.ctx.Done():
			return ErrClosed
		case <-tick.C:
		}
	}
}

// flushTopic is a topic every node joins for Flush's barrier messages,
// which are published locally only and never leave the node.
const flushTopic = ReservedPrefix + "flush"

// Flush waits until every message published so far has been handed to
// GossipSub or the direct streams, routed, and written to the connections
// of the peers it was routed to, or until ctx ends. Node.Close calls it
// (bounded) so that a program that broadcasts and exits does not lose its
// last messages.
func (p *PubSub) Flush(ctx context.Context) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	wait := func(done func() bool) error {
		for !done() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("pubsub: flush: %w", ctx.Err())
			case <-p.ctx.Done():
				return ErrClosed
			case <-tick.C:
			}
		}
		return nil
	}
	// 1. Every publisher has handed its batches to GossipSub's queue or
	// to the direct streams' queues.
	if err := wait(func() bool { return p.queued.Load() == 0 }); err != nil {
		return err
	}
	// 2. GossipSub's event loop has routed them: it takes messages from
	// that queue in order, so once a local-only barrier message published
	// now comes out, everything before it has been routed to peers.
	if err := p.barrier(ctx); err != nil {
		return err
	}
	// 3. The routed batches have been written to the connections (the
	// tracer counts both ways).
	return wait(func() bool { return p.tr.totalInflight() == 0 })
}

func (p *PubSub) joinFlushTopic() error {
	t, err := p.gs.Join(p.cfg.TopicPrefix + flushTopic)
	if err != nil {
		return fmt.Errorf("pubsub: join %s: %w", flushTopic, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return fmt.Errorf("pubsub: subscribe %s: %w", flushTopic, err)
	}
	p.flush, p.flushSub = t, sub
	return nil
}

// barrier publishes a local-only message and waits until it is delivered.
func (p *PubSub) barrier(ctx context.Context) error {
	seq := p.seq.Add(1)
	if err := p.flush.Publish(ctx, encodeBatch(p.author, seq, nil), lp2pps.WithLocalPublication(true)); err != nil {
		return fmt.Errorf("pubsub: flush: %w", err)
	}
	for {
		m, err := p.flushSub.Next(ctx)
		if err != nil {
			return fmt.Errorf("pubsub: flush: %w", err)
		}
		if _, _, s, _, err := batchHeader(m.GetData()); err == nil && s == seq {
			return nil
		}
	}
}

// MaxMessageSize returns the largest message Publish accepts.
func (p *PubSub) MaxMessageSize() int { return p.maxMsg }

// resetCooldown spaces the connection resets of streamLost per peer.
const resetCooldown = 2 * time.Second

// streamLost handles the end of GossipSub's outbound stream to q. If a
// connection to q remains (a duplicate connection died, or the stream was
// reset), GossipSub forgets q's topics and opens a new stream; but q, whose
// own stream to us may be fine, never repeats its subscriptions, so nothing
// would be sent to q until it reconnects, possibly for a long time (seen
// under packet loss: 40 s without a message). So close the connections to
// q: both sides see it leave, the node's reconnect loop dials again, and
// both say hello afresh. Called on GossipSub's event loop, as GossipSub's
// own check of the connection is.
func (p *PubSub) streamLost(q peer.ID) {
	if p.host.Network().Connectedness(q) != network.Connected {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || time.Since(p.resets[q]) < resetCooldown {
		return
	}
	if len(p.resets) > 1024 {
		clear(p.resets)
	}
	p.resets[q] = time.Now()
	p.connResets.Add(1)
	p.log.Debug("pubsub: stream to a connected peer lost; resetting its connections", "peer", q)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.host.Network().ClosePeer(q)
	}()
}
