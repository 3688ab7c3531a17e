package pubsub

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Flow control.
//
// A batch handed to GossipSub or to a direct stream waits in a queue towards
// each receiving peer until it is written to the peer's connection. The
// queues are bounded (GossipSub's, and directQueue) and drop what does not
// fit, so a topic's publisher keeps at most Config.Window of its batches
// queued towards each peer: before sending, it waits until every subscribed
// peer has room for the topic (at most Config.WindowWait, then it sends
// anyway and the queue's drops are counted).
//
// The window is per peer and topic: a slow peer slows only the topics it
// subscribes to, and on each of them only that topic's publisher; a topic
// whose batches are few (the store's deltas) never waits behind a busy one
// (a chat topic) queued towards the same peer.

// flowKey is one topic's batches queued towards one peer, one way.
type flowKey struct {
	p      peer.ID
	topic  string // wire name
	direct bool   // the direct stream's queue, else GossipSub's
}

// topicWay is one topic's batches queued one way, towards all peers.
type topicWay struct {
	topic  string
	direct bool
}

// flows counts the batches queued towards each peer, per topic and way.
type flows struct {
	window int // ≤ 0: no flow control (counting still serves Flush)

	mu      sync.Mutex
	n       map[flowKey]int
	perWay  map[topicWay]int
	total   int
	room    chan struct{} // closed and replaced when a flow drops below the window
	emptied chan struct{} // closed and replaced when total drops to 0
}

func newFlows(window int) *flows {
	return &flows{
		window:  window,
		n:       map[flowKey]int{},
		perWay:  map[topicWay]int{},
		room:    make(chan struct{}),
		emptied: make(chan struct{}),
	}
}

// add changes the count of k by d (queued: +1, written or dropped: -1).
func (f *flows) add(k flowKey, d int) {
	if d == 0 {
		return
	}
	f.mu.Lock()
	f.addLocked(k, d)
	f.mu.Unlock()
}

func (f *flows) addLocked(k flowKey, d int) {
	before := f.n[k]
	after := max(before+d, 0)
	if after == before {
		return
	}
	if after == 0 {
		delete(f.n, k)
	} else {
		f.n[k] = after
	}
	tw := topicWay{k.topic, k.direct}
	if w := f.perWay[tw] + after - before; w > 0 {
		f.perWay[tw] = w
	} else {
		delete(f.perWay, tw)
	}
	f.total += after - before
	if f.window > 0 && before >= f.window && after < f.window {
		close(f.room)
		f.room = make(chan struct{})
	}
	if f.total == 0 {
		close(f.emptied)
		f.emptied = make(chan struct{})
	}
}

// reset forgets what is queued towards p one way (the queue is gone).
func (f *flows) reset(p peer.ID, direct bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, c := range f.n {
		if k.p == p && k.direct == direct {
			f.addLocked(k, -c)
		}
	}
}

// fullLocked reports whether some peer of peers has a full window for
// topic (both ways together); f.mu held.
func (f *flows) fullLocked(topic string, peers []peer.ID) bool {
	for _, p := range peers {
		if f.n[flowKey{p, topic, false}]+f.n[flowKey{p, topic, true}] >= f.window {
			return true
		}
	}
	return false
}

// wait blocks while some peer of peers has Config.Window batches of topic
// queued, at most d, or until done is closed. It reports whether it had to
// wait.
func (f *flows) wait(topic string, peers []peer.ID, done <-chan struct{}, d time.Duration) bool {
	if f.window <= 0 {
		return false
	}
	f.mu.Lock()
	if !f.fullLocked(topic, peers) {
		f.mu.Unlock()
		return false
	}
	room := f.room
	f.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-room:
		case <-timer.C:
			return true
		case <-done:
			return true
		}
		f.mu.Lock()
		if !f.fullLocked(topic, peers) {
			f.mu.Unlock()
			return true
		}
		room = f.room
		f.mu.Unlock()
	}
}

// queued reports whether batches of topic are still queued one way.
func (f *flows) queued(topic string, direct bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.perWay[topicWay{topic, direct}] > 0
}

// empty returns whether nothing is queued towards any peer, and if
// something is, a channel closed the next time nothing is.
func (f *flows) empty() (bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total == 0, f.emptied
}
