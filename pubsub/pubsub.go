package pubsub

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PubSub publishes and delivers messages on named topics, over GossipSub
// and direct streams. It is safe for concurrent use. Create it with New;
// release it with Close.
type PubSub struct {
	cfg    Config
	log    *slog.Logger
	host   host.Host
	gs     *lp2pps.PubSub
	topo   *topology
	topics *peerTopics
	flows  *flows
	ready  *readiness
	dir    *direct
	router *router
	count  netCounters
	// wires holds the wire names of the joined topics (never left before
	// Close), read without p.mu by inflight on GossipSub's event loop.
	wires    sync.Map
	inflight *inflight
	queued   gauge // messages accepted by Publish, not yet handed to GossipSub or a direct stream

	key       crypto.PrivKey  // the node's, signs forwarded frames (routes.go)
	forgedLog *rate.Sometimes // limits the warnings of forged.go
	subsLog   *rate.Sometimes // limits the warnings of subsRefused

	stopMembers func() // ends the Membership's calls

	flushing chan struct{} // holds one token while a Flush runs
	flush    *lp2pps.Topic
	flushSub *lp2pps.Subscription
	flushSeq atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	calls calls // requests waiting for replies (request.go)

	announcements *topic    // the peer announcements' (topology.go)
	catch         *catchups // catch-ups on announcements (catchup.go)

	regMu      sync.Mutex
	registered map[string]*registration // by registry name (registry.go)

	mu       sync.Mutex
	joined   map[string]*topic          // by user name
	patterns map[string][]*Subscription // wildcard subscriptions by pattern (wildcard.go)

	closing bool // Close has begun
	closed  bool // Close has stopped the topics

	joinedTopic chan struct{}         // a topic was joined: wakes patternLoop
	followFull  atomic.Bool           // maxFollowed was reached (warned once)
	closingFlag atomic.Bool           // closing, for streamLost
	resetMu     sync.Mutex            // guards resets
	resets      map[peer.ID]time.Time // streamLost's last reset per peer

	relayWake chan struct{} // a plain subscription began or ended (relay.go)
	relaySync sync.Mutex    // serialises syncRelays
	relayMu   sync.Mutex    // guards relays
	relays    relayState
}

// New starts pub/sub on h, which should already be configured with the
// mesh's private network (package node does all of that). m is the
// membership pub/sub routes by and reports ready peers to (package node
// passes its own); with a nil m, pub/sub follows h's connections itself.
func New(h host.Host, m Membership, cfg Config) (*PubSub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if m == nil {
		hc, err := newHostConnections(h)
		if err != nil {
			return nil, err
		}
		m = hc
	}
	if h.Peerstore().PrivKey(h.ID()) == nil {
		return nil, fmt.Errorf("%w: the host's peerstore has no private key for %s (it signs messages)", ErrConfig, h.ID())
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &PubSub{
		cfg:         cfg,
		log:         cfg.Logger,
		key:         h.Peerstore().PrivKey(h.ID()),
		forgedLog:   newForgedLog(),
		subsLog:     newForgedLog(),
		host:        h,
		topo:        newTopology(h.ID()),
		topics:      newPeerTopics(cfg.TopicPrefix),
		flows:       newFlows(cfg.Window),
		ctx:         ctx,
		cancel:      cancel,
		joined:      make(map[string]*topic),
		resets:      make(map[peer.ID]time.Time),
		registered:  make(map[string]*registration),
		patterns:    make(map[string][]*Subscription),
		joinedTopic: make(chan struct{}, 1),
		flushing:    make(chan struct{}, 1),
		relayWake:   make(chan struct{}, 1),
		relays:      relayState{topics: map[string]*relayed{}},
		catch:       newCatchups(),
	}
	p.queued.init()
	p.dir = newDirect(p)
	p.router = &router{ctx: ctx, author: []byte(h.ID()), topo: p.topo, topics: p.topics, dir: p.dir,
		flows: p.flows, windowWait: cfg.WindowWait}
	// A peer that becomes ready gets every batch we send from now on: it
	// counts for WaitSubscribers, we announce it (topology.go), open its
	// direct stream, and it has joined as far as the membership is
	// concerned.
	p.ready = newReadiness(func(q peer.ID) {
		p.topics.setReady(q)
		p.topo.setReady(q, true)
		p.dir.ready(q)
		p.catch.ready(h.ID(), q)
		m.PubSubReady(q)
	}, func(q peer.ID) { p.topo.setReady(q, false) })
	tr := newGossipTracer(p.flows, p.ready, p.topics, p.streamLost, &p.count)
	tr.forged = p.forged
	tr.announceWire = p.cfg.TopicPrefix + peersTopic
	tr.subsRefused = p.subsRefused
	p.inflight = newInflight(&p.wires, p.count.duplicate)
	tr.inflight = p.inflight

	// Every message that goes through GossipSub is signed by its author and
	// verified before GossipSub marks it seen, so no member can publish as
	// another or make another's batches look like duplicates (doc.go,
	// Authorship). Direct streams need no signature: their connection
	// authenticates the author.
	opts := []lp2pps.Option{}
	params := lp2pps.DefaultGossipSubParams()
	// A LAN mesh is small: keep the message cache short so large bursts do
	// not pin memory for seconds (history × heartbeat).
	params.HistoryLength = 3
	params.HistoryGossip = 2
	params.HeartbeatInitialDelay = 50 * time.Millisecond
	// Relays: each node passes a message on to 4 mesh peers for its topic
	// (GossipSub's default is 6), between 3 and 6. Every copy past the
	// first is a duplicate its receiver reads, decrypts and drops; with
	// 6, a mesh of 100 started together received 92,000-100,000 of them
	// before it formed, and its processes used 58-60 s of CPU until then
	// on 2 cores (formed 31-32 s after the first start); with 4, 65,000-
	// 72,000, 49-53 s, formed 26-28 s after it (BENCHMARKS.md). Three
	// relays still leave every node several paths in a mesh whose links
	// are TCP and whose peers hold the network key; what a queue drops,
	// the reorderer and the catch-ups bring back. A full mesh relays
	// nothing (doc.go, Forwarding): there the degree changes nothing.
	params.D, params.Dlo, params.Dhi, params.Dlazy, params.Dout = 4, 3, 6, 4, 1
	opts = append(opts,
		lp2pps.WithMessageSignaturePolicy(lp2pps.StrictSign),
		lp2pps.WithMessageIdFn(messageID),
		lp2pps.WithSubscriptionFilter(subFilter{p.topics}),
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
		lp2pps.WithRawTracer(tr),
		// Copies of a message waiting for validation are dropped before
		// their signatures are verified (inflight.go).
		lp2pps.WithAppSpecificRpcInspector(p.inflight.inspect),
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
	// and that hello is what tells the peer (readiness) that we are ready.
	if err := p.joinFlushTopic(); err != nil {
		cancel()
		return nil, err
	}
	if err := p.startTopology(); err != nil {
		_ = p.Close()
		return nil, err
	}
	p.stopMembers = m.FollowConnections(p.connectionChanged)
	p.goOwned(p.patternLoop)
	p.goOwned(p.relayLoop)
	if cfg.StallTimeout > 0 && cfg.Window > 0 {
		p.goOwned(p.stallLoop)
	}
	return p, nil
}

// maxWireSize is GossipSub's limit: one batch plus headers and protobuf framing.
func maxWireSize(cfg Config) int {
	return max(cfg.MaxMessageSize+MaxHeaderBytes+16, cfg.MaxBatchBytes) + 4096
}

// messageID takes the id from the topic and the batch header (author and
// the topic's sequence number), which saves hashing every message. A batch
// whose author is not the message's signer (a forgery, which the validator
// rejects) gets the signer in its id too: GossipSub marks an id seen before
// the validator runs, and a forged copy must not make the author's own batch
// look like a duplicate. Bytes that do not parse get a hash so they can
// still be deduplicated before the validator rejects them.
func messageID(m *pb.Message) string {
	var b batch
	if _, err := batchHeader(m.GetData(), &b); err == nil {
		if string(b.author) != string(m.GetFrom()) {
			return m.GetTopic() + "\x00" + string(b.id) + "\x00" + string(m.GetFrom())
		}
		return m.GetTopic() + "\x00" + string(b.id)
	}
	sum := sha256.Sum256(m.GetData())
	return string(sum[:])
}

// Close leaves the mesh's topics. It first sends what publishers have
// queued and waits until the peers have received it (at most closeFlush
// plus closeDrain: see Flush and drain.go), so a program that publishes and
// exits does not lose its last messages; then it stops every subscription
// and publisher and waits for their goroutines. A second Close returns
// ErrClosed. Close must not be called from a handler.
func (p *PubSub) Close() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closing = true
	p.closingFlag.Store(true)
	p.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.Background(), closeFlush)
	if err := p.Flush(fctx); err != nil {
		p.log.Warn("pubsub: closing with messages not yet sent", "err", err)
	}
	cancel()
	dctx, cancel := context.WithTimeout(context.Background(), closeDrain)
	p.drain(dctx)
	cancel()

	p.mu.Lock()
	p.closed = true
	topics := p.joined
	p.joined = nil
	patterns := p.patterns
	p.patterns = nil
	p.mu.Unlock()
	for _, subs := range patterns {
		for _, s := range subs {
			s.halt()
		}
	}

	if p.stopMembers != nil {
		p.stopMembers()
	}
	for _, t := range topics {
		t.shutdown()
	}
	p.stopCatchups()
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

// topic returns the topic named name, joining it on first use. A
// wildcard pattern is not a topic (only Subscribe takes one).
func (p *PubSub) topic(name string, reserved bool) (*topic, error) {
	if err := checkTopic(name, reserved); err != nil {
		return nil, err
	}
	if isPattern(name) {
		return nil, fmt.Errorf("%w: %q is a wildcard pattern, not a topic", ErrTopic, name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if t, ok := p.joined[name]; ok {
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
	p.wires.Store(full, struct{}{})
	t.route.gossip = func(ctx context.Context, data []byte) error { return gt.Publish(ctx, data) }
	p.joined[name] = t
	select {
	case p.joinedTopic <- struct{}{}: // wildcard.go announces it if a pattern matches
	default:
	}
	if subs := p.patternSubsLocked(name); len(subs) > 0 {
		// Attached without p.mu: subscribing waits for GossipSub's event
		// loop, which may be waiting for p.mu.
		p.mu.Unlock()
		defer p.mu.Lock()
		for _, s := range subs {
			if err := t.attach(s); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// joinedWire returns the joined topic with the wire name, or nil.
func (p *PubSub) joinedWire(wire string) *topic {
	name, ok := strings.CutPrefix(wire, p.cfg.TopicPrefix)
	if !ok {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.joined[name]
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
	t, hdr, err := p.prepare(name, data, o)
	if err != nil {
		return err
	}
	return t.enqueue(ctx, outMsg{data: data, hdr: hdr})
}

// prepare checks an outgoing message's size and headers (encoding them)
// and returns its topic, joined on first use: what Publish, Send and
// Request share.
func (p *PubSub) prepare(name string, data []byte, o options) (*topic, []byte, error) {
	if len(data) > p.cfg.MaxMessageSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), p.cfg.MaxMessageSize)
	}
	hdr, err := encodeHeader(o.header)
	if err != nil {
		return nil, nil, err
	}
	t, err := p.topic(name, o.reserved)
	if err != nil {
		return nil, nil, err
	}
	return t, hdr, nil
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
	if isPattern(topic) {
		if o.group != "" {
			return nil, fmt.Errorf("%w: a queue group on the pattern %q", ErrTopic, topic)
		}
		if err := checkTopic(topic, false); err != nil {
			return nil, err
		}
		return p.subscribePattern(topic, handler, o)
	}
	if o.group != "" {
		if err := checkGroup(o.group); err != nil {
			return nil, err
		}
	}
	t, err := p.topic(topic, o.reserved)
	if err != nil {
		return nil, err
	}
	var key memberKey
	if o.group != "" {
		key = memberKey{regQueue, o.group}
	}
	return t.subscribe(handler, key, o)
}

// Topics lists the topics this node has joined (user names, sorted by the
// caller if needed): those it subscribed to, published on, waited for, and
// those it relays on a partial mesh (relay.go).
func (p *PubSub) Topics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.joined))
	for name := range p.joined {
		out = append(out, name)
	}
	return out
}

// ListPeers returns the nodes subscribed to topic that this node knows
// of, sorted: neighbours (from their subscriptions) and, on a partial
// mesh, the nodes beyond them (from their announcements). Nodes that only
// relay the topic are left out.
func (p *PubSub) ListPeers(topic string) []peer.ID {
	ps := p.topics.subscribers(p.cfg.TopicPrefix+topic, nil)
	for _, q := range p.topo.farSubscribers(topic) {
		if !slices.Contains(ps, q) {
			ps = append(ps, q)
		}
	}
	slices.Sort(ps)
	return ps
}

// WaitSubscribers blocks until at least n other nodes are known to be
// subscribed to topic and ready to receive from this one (see Membership's
// PubSubReady), or ctx ends. A message broadcast before a node's
// subscription has reached the publisher does not reach that node, so a
// program that must not miss the first messages waits here first. On a
// partial mesh, a subscriber beyond the neighbours counts a little over a
// second after its announcement came, once the relays between carry the
// topic (relay.go), if a neighbour carries it (subscribes to it or relays
// it).
//
// With WithQueueGroup, it waits for n nodes with members of that queue
// group on topic instead (on a partial mesh, those beyond the neighbours
// are learnt from their announcements).
func (p *PubSub) WaitSubscribers(ctx context.Context, topic string, n int, opts ...Option) error {
	t, err := p.topic(topic, true)
	if err != nil {
		return err
	}
	if o := applyOptions(opts); o.group != "" {
		return p.waitMembers(ctx, regQueue, topic, o.group, n)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		updated := p.topo.updates()
		near, carriers, changed := p.topics.readySubscribers(t.wire)
		have := len(near)
		var settling <-chan time.Time
		if carriers > 0 && have < n {
			far, next := p.topo.settledFarSubscribers(topic, time.Now())
			for _, q := range far {
				if !slices.Contains(near, q) {
					have++
				}
			}
			if next > 0 {
				if timer == nil {
					timer = time.NewTimer(next)
				} else {
					timer.Reset(next)
				}
				settling = timer.C
			}
		}
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pubsub: waiting for %d subscribers of %q, have %d: %w", n, topic, have, ctx.Err())
		case <-p.ctx.Done():
			return ErrClosed
		case <-changed:
		case <-updated:
		case <-settling:
		}
	}
}

// MaxMessageSize returns the largest message Publish accepts.
func (p *PubSub) MaxMessageSize() int { return p.cfg.MaxMessageSize }
