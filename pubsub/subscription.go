package pubsub

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Subscription is one handler's subscription to a topic: a plain one
// (Subscribe), a queue-group member (Subscribe with WithQueueGroup) or a
// responder (Handle).
type Subscription struct {
	t        *topic
	member   memberKey   // kind "" for a plain subscription
	pattern  string      // a wildcard subscription's pattern (wildcard.go)
	detached atomic.Bool // a wildcard subscription being removed: attach no more
	handler  func(Message)
	maxLen   int // queue bound in messages
	maxBytes int // queue bound in bytes of message data
	wake     chan struct{}
	stop     chan struct{}
	once     sync.Once

	mu     sync.Mutex
	q      []Message // q[head:] waits for the handler
	head   int
	bytes  int
	halted bool // under mu: halt has run, offer takes nothing more

	delivered atomic.Uint64
	dropped   atomic.Uint64
}

func newSubscription(t *topic, handler func(Message), maxLen, maxBytes int) *Subscription {
	return &Subscription{t: t, handler: handler, maxLen: maxLen, maxBytes: maxBytes,
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// Topic returns the topic name.
func (s *Subscription) Topic() string { return s.t.name }

// Delivered returns how many messages the handler has been given.
func (s *Subscription) Delivered() uint64 { return s.delivered.Load() }

// Dropped returns how many messages were dropped because the handler fell
// behind by more than the queue's bound.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Unsubscribe stops delivery. The handler is not called for any message
// after Unsubscribe returns, except the one it may be running. Safe to call
// more than once and from the handler itself.
func (s *Subscription) Unsubscribe() {
	if s.pattern != "" {
		s.t.ps.removePattern(s)
	} else {
		s.t.remove(s)
	}
	s.halt()
}

// halt stops the subscription. What a member (queue group, responder)
// still had queued is not lost silently: see abandon.
func (s *Subscription) halt() {
	s.once.Do(func() {
		close(s.stop)
		s.mu.Lock()
		s.halted = true
		var left []Message
		if s.member.kind != "" {
			left = slices.Clone(s.q[s.head:])
			s.q, s.head, s.bytes = nil, 0, 0
		}
		s.mu.Unlock()
		s.abandon(left)
	})
}

// abandon accounts for messages a stopped member will not handle: a
// request is answered "no responder" (the requester waits for others, or
// learns ErrNoResponders), a queue group's share is counted in
// Stats.InboundNoSubscriber.
func (s *Subscription) abandon(ms []Message) {
	p := s.t.ps
	for _, m := range ms {
		if m.call != nil {
			p.replySoon(m.call, replyNoResponder, "responder stopped")
			continue
		}
		p.count.noSubscriber.Add(1)
	}
}

// stopped reports whether the subscription has stopped.
func (s *Subscription) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// Group returns the queue group of a member or a responder ("" for a
// plain subscription, and for a responder that answers every request).
func (s *Subscription) Group() string { return s.member.group }

// offer queues m without blocking and reports whether it did; over the
// queue's bound it drops m, counted. The queue grows only while the
// handler is behind.
func (s *Subscription) offer(m Message) bool {
	select {
	case <-s.stop:
		return false
	default:
	}
	s.mu.Lock()
	if s.halted { // halt ran since the check above: not queued
		s.mu.Unlock()
		return false
	}
	if len(s.q)-s.head >= s.maxLen || (s.bytes > 0 && s.bytes+len(m.Data) > s.maxBytes) {
		s.mu.Unlock()
		if s.dropped.Add(1) == 1 {
			s.t.ps.log.Warn("pubsub: subscriber too slow, dropping messages", "topic", s.t.name)
		}
		s.t.stats.dropped.Add(1)
		return false
	}
	s.q = append(s.q, m)
	s.bytes += len(m.Data)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// next takes the oldest queued message.
func (s *Subscription) next() (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.q) {
		s.q, s.head = s.q[:0], 0
		return Message{}, false
	}
	m := s.q[s.head]
	s.q[s.head] = Message{}
	s.head++
	s.bytes -= len(m.Data)
	if s.head > 1024 && s.head > len(s.q)/2 { // reclaim the consumed front
		n := copy(s.q, s.q[s.head:])
		clear(s.q[n:])
		s.q, s.head = s.q[:n], 0
	}
	return m, true
}

// run calls the handler for each queued message until the subscription stops.
func (s *Subscription) run() {
	for {
		m, ok := s.next()
		if !ok {
			select {
			case <-s.stop:
				return
			case <-s.wake:
			}
			continue
		}
		if s.stopped() {
			if s.member.kind != "" {
				s.abandon([]Message{m})
			}
			return
		}
		s.handler(m)
		s.delivered.Add(1)
		s.t.stats.delivered.Add(1)
	}
}

// peerID converts author bytes from a batch to a peer id.
func peerID(b []byte) peer.ID { return peer.ID(b) }
