package pubsub

import (
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Subscription is one handler's subscription to a topic.
type Subscription struct {
	t       *topic
	handler func(Message)
	q       chan Message
	stop    chan struct{}
	once    sync.Once

	delivered atomic.Uint64
	dropped   atomic.Uint64
}

func newSubscription(t *topic, handler func(Message), qlen int) *Subscription {
	return &Subscription{t: t, handler: handler, q: make(chan Message, qlen), stop: make(chan struct{})}
}

// Topic returns the topic name.
func (s *Subscription) Topic() string { return s.t.name }

// Delivered returns how many messages the handler has been given.
func (s *Subscription) Delivered() uint64 { return s.delivered.Load() }

// Dropped returns how many messages were dropped because the handler fell
// behind by more than the queue length.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Unsubscribe stops delivery. The handler is not called for any message
// after Unsubscribe returns, except the one it may be running. Safe to call
// more than once and from the handler itself.
func (s *Subscription) Unsubscribe() {
	s.t.remove(s)
	s.halt()
}

func (s *Subscription) halt() { s.once.Do(func() { close(s.stop) }) }

// offer queues m without blocking; a full queue drops it, counted.
func (s *Subscription) offer(m Message) {
	select {
	case <-s.stop:
		return
	default:
	}
	select {
	case s.q <- m:
	default:
		if s.dropped.Add(1) == 1 {
			s.t.ps.log.Warn("pubsub: subscriber too slow, dropping messages", "topic", s.t.name)
		}
		s.t.stats.dropped.Add(1)
	}
}

// run calls the handler for each queued message until the subscription stops.
func (s *Subscription) run() {
	for {
		select {
		case <-s.stop:
			return
		case m := <-s.q:
			select {
			case <-s.stop:
				return
			default:
			}
			s.handler(m)
			s.delivered.Add(1)
			s.t.stats.delivered.Add(1)
		}
	}
}

// peerID converts author bytes from a batch to a peer id.
func peerID(b []byte) peer.ID { return peer.ID(b) }
