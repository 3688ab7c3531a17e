package pubsub

import (
	"context"
	"sync"
	"sync/atomic"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
)

// topic is one joined GossipSub topic: a publisher goroutine that packs
// queued messages into batches, and a reader goroutine that unpacks received
// batches into the queues of this node's subscriptions.
type topic struct {
	ps   *PubSub
	name string
	gt   *lp2pps.Topic
	in   chan []byte   // messages waiting to be published
	stop chan struct{} // closed by shutdown

	stats counters

	subs atomic.Pointer[[]*Subscription] // copy on write

	mu         sync.Mutex
	publishing bool
	lsub       *lp2pps.Subscription
	closed     bool
}

type counters struct {
	published  atomic.Uint64 // messages handed to GossipSub
	batches    atomic.Uint64 // GossipSub messages sent
	sendFailed atomic.Uint64 // messages GossipSub refused
	waits      atomic.Uint64 // times the publisher waited for the window
	received   atomic.Uint64 // messages received from other nodes
	delivered  atomic.Uint64 // messages handed to handlers
	dropped    atomic.Uint64 // messages dropped because a subscription queue was full
}

func newTopic(p *PubSub, name string, gt *lp2pps.Topic) *topic {
	t := &topic{
		ps:   p,
		name: name,
		gt:   gt,
		in:   make(chan []byte, p.cfg.PublishQueue),
		stop: make(chan struct{}),
	}
	t.subs.Store(&[]*Subscription{})
	return t
}

// enqueue queues one message for publishing, starting the publisher on
// first use. It blocks while the queue is full.
func (t *topic) enqueue(ctx context.Context, data []byte) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if !t.publishing {
		t.publishing = true
		t.ps.goOwned(t.publishLoop)
	}
	t.mu.Unlock()
	t.ps.queued.Add(1)
	select {
	case t.in <- data:
		return nil
	default:
	}
	select {
	case t.in <- data:
		return nil
	case <-ctx.Done():
		t.ps.queued.Add(-1)
		return ctx.Err()
	case <-t.stop:
		t.ps.queued.Add(-1)
		return ErrClosed
	}
}

// publishLoop packs whatever is queued into one batch ("natural batching":
// an idle topic sends each message at once; under load, messages that
// arrive while a batch is being sent travel together in the next one).
func (t *topic) publishLoop() {
	var (
		w        batchWriter
		pending  []byte
		maxBatch = t.ps.cfg.MaxBatchBytes
	)
	for {
		m := pending
		pending = nil
		if m == nil {
			select {
			case m = <-t.in:
			case <-t.stop:
				return
			}
		}
		w.reset()
		w.add(m)
	fill:
		for w.size() < maxBatch {
			select {
			case m := <-t.in:
				if w.size()+len(m)+uvarintLen(uint64(len(m))) > maxBatch {
					pending = m
					break fill
				}
				w.add(m)
			default:
				break fill
			}
		}
		if t.ps.tr.wait(t.stop, t.ps.cfg.WindowWait) {
			t.stats.waits.Add(1)
		}
		n := uint64(w.count)
		data := w.encode(t.ps.author, t.ps.seq.Add(1))
		err := t.gt.Publish(t.ps.ctx, data)
		t.ps.queued.Add(-int64(n))
		if err != nil {
			t.stats.sendFailed.Add(n)
			t.ps.log.Warn("pubsub: publish failed", "topic", t.name, "messages", n, "err", err)
			continue
		}
		t.stats.published.Add(n)
		t.stats.batches.Add(1)
	}
}

// readLoop delivers the batches of one GossipSub subscription until it is
// cancelled.
func (t *topic) readLoop(ls *lp2pps.Subscription) {
	echo := t.ps.cfg.Echo
	for {
		m, err := ls.Next(t.ps.ctx)
		if err != nil {
			return
		}
		b, ok := m.ValidatorData.(*batch)
		if !ok {
			if b, err = decodeBatch(m.GetData(), t.ps.maxMsg); err != nil {
				continue // cannot happen: the validator accepted it
			}
		}
		if !echo && string(b.author) == string(t.ps.author) {
			continue
		}
		subs := *t.subs.Load()
		from := peerID(b.author)
		t.stats.received.Add(uint64(len(b.msgs)))
		for _, data := range b.msgs {
			for _, s := range subs {
				s.offer(Message{Topic: t.name, From: from, Data: data})
			}
		}
	}
}

// subscribe adds a subscription, subscribing to GossipSub on the first.
func (t *topic) subscribe(handler func(Message), o options) (*Subscription, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	if t.lsub == nil {
		ls, err := t.gt.Subscribe(lp2pps.WithBufferSize(1024))
		if err != nil {
			return nil, err
		}
		t.lsub = ls
		t.ps.goOwned(func() { t.readLoop(ls) })
	}
	qlen := o.queue
	if qlen == 0 {
		qlen = t.ps.cfg.QueueLength
	}
	s := newSubscription(t, handler, qlen)
	old := *t.subs.Load()
	subs := append(append(make([]*Subscription, 0, len(old)+1), old...), s)
	t.subs.Store(&subs)
	t.ps.goOwned(s.run)
	return s, nil
}

// remove drops s; the last one cancels the GossipSub subscription.
func (t *topic) remove(s *Subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
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
	}
	subs := *t.subs.Load()
	t.subs.Store(&[]*Subscription{})
	t.mu.Unlock()
	for _, s := range subs {
		s.halt()
	}
}
