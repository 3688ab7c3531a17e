package pubsub

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// topic is one joined topic. Sending: Publish queues messages; one
// publisher goroutine packs what is queued into a batch and hands it to the
// router (router.go), which sends it one way. Receiving: GossipSub's
// validator (validate, below) and the direct streams' readers (direct.go)
// check each batch and hand it to the reorderer (order.go), which delivers
// each publisher's batches in sequence to the queues of this node's
// subscriptions (subscription.go), each drained by its own goroutine.
type topic struct {
	ps   *PubSub
	name string
	wire string // name with Config.TopicPrefix
	gt   *lp2pps.Topic
	// in holds the messages waiting to be published. It is made with the
	// publisher, on the first Publish (Config.PublishQueue entries, 192
	// KiB by default): most topics are only subscribed to or relayed.
	in   atomic.Pointer[chan outMsg]
	stop chan struct{} // closed by shutdown

	stats counters

	// seq numbers this node's batches on the topic, contiguously, so that
	// receivers can put them back in order (order.go). It starts at the
	// clock, so a restarted node does not reuse numbers.
	seq   atomic.Uint64
	order reorderer
	route route // the publisher goroutine's

	subs    atomic.Pointer[[]*Subscription]               // plain subscriptions, copy on write
	members atomic.Pointer[map[memberKey][]*Subscription] // queue-group members and responders, copy on write
	picks   atomic.Uint64                                 // spreads calls over local members (queue.go)
	decode  atomic.Pointer[func([]byte) (any, error)]     // WithValidator's or WithDecoder's, if any

	// qbytes counts the bytes waiting in in; room is closed (and replaced)
	// whenever the publisher takes some, to wake blocked publishers.
	qbytes atomic.Int64
	roomMu sync.Mutex
	room   chan struct{}

	announced  atomic.Bool // announced to neighbours' patterns (wildcard.go)
	subscribed atomic.Bool // lsub is set: announced as subscribed (relay.go)

	mu         sync.Mutex
	publishing bool
	lsub       *lp2pps.Subscription
	closed     bool
}

type counters struct {
	published    atomic.Uint64 // messages sent
	pubBytes     atomic.Uint64 // payload bytes of the messages sent
	batches      atomic.Uint64 // batches sent
	direct       atomic.Uint64 // batches sent on direct streams
	sendFailed   atomic.Uint64 // messages GossipSub refused
	waits        atomic.Uint64 // times the publisher waited for the window
	received     atomic.Uint64 // messages received from other nodes
	recvBytes    atomic.Uint64 // payload bytes of the messages received
	notForwarded atomic.Uint64 // batches every peer had from their author already
	forwarded    atomic.Uint64 // batches left to GossipSub to relay (tests)
	delivered    atomic.Uint64 // messages handed to handlers
	dropped      atomic.Uint64 // messages dropped because a subscription queue was full
}

func newTopic(p *PubSub, name string) *topic {
	t := &topic{
		ps:   p,
		name: name,
		wire: p.cfg.TopicPrefix + name,
		stop: make(chan struct{}),
		room: make(chan struct{}),
	}
	t.route.wire = t.wire
	t.route.viaGossipOnly = name == peersTopic
	t.subs.Store(&[]*Subscription{})
	t.members.Store(&map[memberKey][]*Subscription{})
	t.seq.Store(uint64(time.Now().UnixNano()))
	t.order.init(t.deliver)
	return t
}

// outMsg is one message queued for publishing.
type outMsg struct {
	data []byte
	hdr  []byte // encoded headers, nil for none
}

// size is what the message counts against PublishQueueBytes.
func (m outMsg) size() int64 { return int64(len(m.data) + len(m.hdr)) }

// enqueue queues one message for publishing, starting the publisher on
// first use. It blocks while the queue is full.
func (t *topic) enqueue(ctx context.Context, m outMsg) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if !t.publishing {
		t.publishing = true
		in := make(chan outMsg, t.ps.cfg.PublishQueue)
		t.in.Store(&in)
		t.ps.goOwned(t.publishLoop)
	}
	t.mu.Unlock()
	in := *t.in.Load()
	if err := t.reserve(ctx, m.size()); err != nil {
		return err
	}
	t.ps.queued.add(1)
	select {
	case in <- m:
		return nil
	default:
	}
	select {
	case in <- m:
		return nil
	case <-ctx.Done():
		t.ps.queued.add(-1)
		t.release(m.size())
		return ctx.Err()
	case <-t.stop:
		t.ps.queued.add(-1)
		t.release(m.size())
		return ErrClosed
	}
}

// reserve waits until n more bytes fit the publish queue's byte bound (an
// empty queue always takes one message, however large).
func (t *topic) reserve(ctx context.Context, n int64) error {
	limit := int64(t.ps.cfg.PublishQueueBytes)
	for {
		cur := t.qbytes.Load()
		if cur == 0 || cur+n <= limit {
			if t.qbytes.CompareAndSwap(cur, cur+n) {
				return nil
			}
			continue
		}
		t.roomMu.Lock()
		room := t.room
		t.roomMu.Unlock()
		if t.qbytes.Load() != cur {
			continue // it changed meanwhile: look again
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.stop:
			return ErrClosed
		}
	}
}

// release returns n bytes of the publish queue and wakes waiting publishers.
func (t *topic) release(n int64) {
	t.qbytes.Add(-n)
	t.roomMu.Lock()
	close(t.room)
	t.room = make(chan struct{})
	t.roomMu.Unlock()
}

// publishLoop packs whatever is queued into one batch ("natural batching":
// an idle topic sends each message at once; under load, messages that
// arrive while a batch is being sent travel together in the next one).
func (t *topic) publishLoop() {
	var (
		w          batchWriter
		pending    outMsg
		hasPending bool
		maxBatch   = t.ps.cfg.MaxBatchBytes
		in         = *t.in.Load()
	)
	first := true
	for {
		m := pending
		if !hasPending {
			select {
			case m = <-in:
			case <-t.stop:
				return
			}
		}
		if first {
			first = false
			t.awaitPatternSubscribers(t.stop)
		}
		pending, hasPending = outMsg{}, false
		w.reset()
		w.addHeader(m.hdr, m.data)
		taken, payload := m.size(), uint64(len(m.data))
	fill:
		for w.size() < maxBatch {
			select {
			case m := <-in:
				if w.size()+msgCost(m.hdr, m.data) > maxBatch {
					pending, hasPending = m, true
					break fill
				}
				w.addHeader(m.hdr, m.data)
				taken += m.size()
				payload += uint64(len(m.data))
			default:
				break fill
			}
		}
		n := uint64(w.count)
		seq := t.seq.Add(1)
		res, err := t.ps.router.send(&t.route, &w, seq, t.stop)
		if res.waited {
			t.stats.waits.Add(1)
		}
		if err == nil && res.direct {
			t.stats.direct.Add(1)
			if t.ps.cfg.Echo { // GossipSub's validator echoes the other way
				b := w.local(t.ps.router.author, seq)
				if t.vet(b) == nil {
					t.deliver(b)
				}
			}
		}
		t.sendGroups(&w)
		t.ps.queued.add(-int64(n))
		t.release(taken)
		if err != nil {
			t.stats.sendFailed.Add(n)
			t.ps.log.Warn("pubsub: publish failed", "topic", t.name, "messages", n, "err", err)
			continue
		}
		t.stats.published.Add(n)
		t.stats.pubBytes.Add(payload)
		t.stats.batches.Add(1)
	}
}

// validate is GossipSub's validator for the topic, called once per message
// (duplicates are dropped before): the batch must decode, each message must
// fit MaxMessageSize, and with signing on, the author must be the signer.
// It also delivers the messages to this node's subscriptions, in the order
// they pass (one validation worker), and decides whether GossipSub forwards
// the batch (see topology.go): ValidationIgnore means "valid, delivered, do
// not forward".
func (t *topic) validate(_ context.Context, from peer.ID, m *lp2pps.Message) lp2pps.ValidationResult {
	p := t.ps
	b, err := decodeBatch(m.GetData(), p.cfg.MaxMessageSize)
	if err != nil {
		p.log.Debug("pubsub: rejecting message", "topic", t.name, "from", m.ReceivedFrom, "err", err)
		return lp2pps.ValidationReject
	}
	if string(b.author) != string(m.GetFrom()) {
		p.forged(t.name, peerID(b.author), peer.ID(m.GetFrom()))
		return lp2pps.ValidationReject
	}
	if from == p.host.ID() { // our own publish
		if (t.route.viaGossipOnly || p.cfg.Echo) && t.vet(b) == nil {
			if t.route.viaGossipOnly {
				p.topo.hold(p.host.ID(), b.seq, m.Message, time.Now(), b.vals) // for the peers that catch up (catchup.go)
			}
			if p.cfg.Echo {
				t.deliver(b)
			}
		}
		return lp2pps.ValidationAccept
	}
	if err := t.vet(b); err != nil {
		p.log.Debug("pubsub: rejecting message", "topic", t.name, "from", m.ReceivedFrom, "err", err)
		t.refused(b)
		return lp2pps.ValidationReject
	}
	if h := p.dir.testHookReceive.Load(); h != nil {
		(*h)(t.wire, false)
	}
	author := peerID(b.author)
	var covered bool
	if t.route.viaGossipOnly {
		now := time.Now()
		if !t.order.addUnlessSuperseded(b) {
			// An announcement older than one delivered already, relayed
			// late: it would overwrite what its author announced since
			// (topology.go). Or the one we caught up on (catchup.go):
			// delivered, and perhaps to relay.
			if !p.topo.gossipedCaughtUp(author, b.seq) {
				return lp2pps.ValidationIgnore
			}
		} else {
			// Held for the peers that catch up with us (catchup.go).
			p.topo.hold(author, b.seq, m.Message, now, b.vals)
		}
		// A peer announcement says whom its author sent it to: it is
		// judged by what it says itself, not by its predecessor
		// (topology.go).
		covered = p.topo.knownRefresh(author, b.seq, b.vals, now, p.topo.forming(now), p.topo.reachedAll(author, b.vals))
	} else {
		t.order.add(b)
		covered = p.topo.allConnectedTo(author)
	}
	if covered {
		t.stats.notForwarded.Add(1)
		return lp2pps.ValidationIgnore
	}
	t.stats.forwarded.Add(1)
	return lp2pps.ValidationAccept
}

// vet runs the topic's decoder, if any, on every message of b and keeps
// the results in b.vals; it fails on the first message the decoder refuses.
func (t *topic) vet(b *batch) error {
	decode := t.decode.Load()
	if decode == nil {
		return nil
	}
	b.vals = make([]any, len(b.msgs))
	for i, data := range b.msgs {
		v, err := (*decode)(data)
		if err != nil {
			return err
		}
		b.vals[i] = v
	}
	return nil
}

// refused takes the place of a batch the topic's decoder refused in its
// publisher's sequence, without delivering anything: the batches after it
// do not wait for it.
func (t *topic) refused(b *batch) {
	b.msgs, b.vals = nil, nil
	t.order.add(b)
}

// deliver hands a batch's messages to every subscription of the topic.
func (t *topic) deliver(b *batch) {
	subs := *t.subs.Load()
	from := peerID(b.author)
	t.stats.received.Add(uint64(len(b.msgs)))
	var size uint64
	for i, data := range b.msgs {
		size += uint64(len(data))
		m := Message{Topic: t.name, From: from, Data: data, Header: b.header(i)}
		if b.vals != nil {
			m.Decoded = b.vals[i]
		}
		for _, s := range subs {
			s.offer(m)
		}
	}
	t.stats.recvBytes.Add(size)
}

// subscribe adds a subscription: a plain one subscribes to GossipSub on
// the first, a member (key's kind set) registers it (registry.go).
func (t *topic) subscribe(handler func(Message), key memberKey, o options) (*Subscription, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	if o.decode != nil {
		t.decode.Store(&o.decode)
	}
	qlen := o.queue
	if qlen == 0 {
		qlen = t.ps.cfg.QueueLength
	}
	if key.kind != "" {
		old := *t.members.Load()
		if len(old[key]) == 0 {
			if err := t.ps.register(registryName(key.kind, t.name, key.group)); err != nil {
				return nil, err
			}
		}
		s := newSubscription(t, handler, qlen, t.ps.cfg.QueueBytes)
		s.member = key
		m := maps.Clone(old)
		m[key] = append(slices.Clone(old[key]), s)
		t.members.Store(&m)
		t.ps.goOwned(s.run)
		return s, nil
	}
	s := newSubscription(t, handler, qlen, t.ps.cfg.QueueBytes)
	if err := t.attachLocked(s); err != nil {
		return nil, err
	}
	t.ps.goOwned(s.run)
	return s, nil
}

// attach makes the topic deliver to s, a plain or wildcard subscription.
func (t *topic) attach(s *Subscription) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	return t.attachLocked(s)
}

// attachLocked is attach with t.mu held: the first subscription subscribes
// to GossipSub. A subscription already attached, or a wildcard one being
// removed, is left as it is.
func (t *topic) attachLocked(s *Subscription) error {
	if s.detached.Load() || slices.Contains(*t.subs.Load(), s) {
		return nil
	}
	// s delivers before GossipSub announces the subscription: a publisher
	// that sees it may send at once (directly, or as soon as it has the
	// subscription), and a batch that came before s was in the list would
	// reach no one here.
	old := *t.subs.Load()
	subs := append(append(make([]*Subscription, 0, len(old)+1), old...), s)
	t.subs.Store(&subs)
	if t.lsub == nil {
		// The subscription makes GossipSub route the topic to us; the
		// validator delivers, so GossipSub's own delivery is filtered out.
		ls, err := t.gt.Subscribe(lp2pps.WithBufferSize(1), lp2pps.WithMessageFilter(func(*lp2pps.Message) bool { return false }))
		if err != nil {
			t.subs.Store(&old)
			return err
		}
		t.lsub = ls
		t.subscribed.Store(true)
		t.ps.subscriptionsChanged()
	}
	return nil
}

// remove drops s; the last plain one cancels the GossipSub subscription,
// the last member of a group its registration.
func (t *topic) remove(s *Subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.member.kind != "" {
		old := *t.members.Load()
		if !slices.Contains(old[s.member], s) {
			return
		}
		m := maps.Clone(old)
		m[s.member] = slices.DeleteFunc(slices.Clone(old[s.member]), func(x *Subscription) bool { return x == s })
		if len(m[s.member]) == 0 {
			delete(m, s.member)
			if !t.closed {
				t.ps.unregister(registryName(s.member.kind, t.name, s.member.group))
			}
		}
		t.members.Store(&m)
		return
	}
	old := *t.subs.Load()
	subs := make([]*Subscription, 0, len(old))
	for _, x := range old {
		if x != s {
			subs = append(subs, x)
		}
	}
	t.subs.Store(&subs)
	if len(subs) == 0 && t.lsub != nil {
		t.lsub.Cancel()
		t.lsub = nil
		t.subscribed.Store(false)
		t.ps.subscriptionsChanged()
	}
}

// shutdown stops the publisher, the reader and every subscription.
func (t *topic) shutdown() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	close(t.stop)
	if t.lsub != nil {
		t.lsub.Cancel()
		t.lsub = nil
		t.subscribed.Store(false)
	}
	subs := *t.subs.Load()
	t.subs.Store(&[]*Subscription{})
	members := *t.members.Load()
	t.members.Store(&map[memberKey][]*Subscription{})
	t.mu.Unlock()
	t.order.stop()
	for _, s := range subs {
		s.halt()
	}
	for _, ms := range members {
		for _, s := range ms {
			s.halt()
		}
	}
}
