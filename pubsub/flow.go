package pubsub

import (
	"slices"
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
//
// A peer that stops reading slows only what goes to it: once its window for
// a topic has stayed full for WindowWait, the topic's publisher no longer
// waits for it (the batches it cannot take are dropped at its queue and
// counted in OutboundDropped) until it reads again; the other subscribers
// get the topic at full speed. One whose window stays full for
// Config.StallTimeout is disconnected (stall.go).

// flowKey is one topic's batches queued towards one peer, one way.
type flowKey struct {
	p      peer.ID
	topic  string // wire name
	direct bool   // the direct stream's queue, else GossipSub's
}

// peerTopic is one topic's window towards one peer (both ways together).
type peerTopic struct {
	p     peer.ID
	topic string
}

// topicWay is one topic's batches queued one way, towards all peers.
type topicWay struct {
	topic  string
	direct bool
}

// flows counts the batches queued towards each peer, per topic and way.
type flows struct {
	window int // ≤ 0: no flow control (counting still serves Flush)

	mu        sync.Mutex
	n         map[flowKey]int
	fullSince map[peerTopic]time.Time // when each full window (both ways) became full
	perWay    map[topicWay]int
	total     int
	room      chan struct{} // closed and replaced when a flow drops below the window
	full      chan struct{} // signalled when a window becomes full (wakes stallLoop)
	emptied   chan struct{} // closed and replaced when total drops to 0
}

func newFlows(window int) *flows {
	return &flows{
		window:    window,
		n:         map[flowKey]int{},
		fullSince: map[peerTopic]time.Time{},
		perWay:    map[topicWay]int{},
		room:      make(chan struct{}),
		full:      make(chan struct{}, 1),
		emptied:   make(chan struct{}),
	}
}

// anyFull reports whether some peer's window for some topic is full.
func (f *flows) anyFull() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fullSince) > 0
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
	other := f.n[flowKey{k.p, k.topic, !k.direct}]
	pt := peerTopic{k.p, k.topic}
	room := f.window > 0 && before+other >= f.window && after+other < f.window
	if room {
		delete(f.fullSince, pt)
	}
	if f.window > 0 && before+other < f.window && after+other >= f.window {
		f.fullSince[pt] = time.Now()
		select {
		case f.full <- struct{}{}:
		default:
		}
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
	if room {
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
// topic (both ways together), leaving out peers whose window has been full
// since before stalled; f.mu held.
func (f *flows) fullLocked(topic string, peers []peer.ID, stalled time.Time) bool {
	for _, p := range peers {
		if f.n[flowKey{p, topic, false}]+f.n[flowKey{p, topic, true}] < f.window {
			continue
		}
		if since, ok := f.fullSince[peerTopic{p, topic}]; ok && since.Before(stalled) {
			continue
		}
		return true
	}
	return false
}

// stalled appends the peers with a window full since before t.
func (f *flows) stalled(t time.Time, out []peer.ID) []peer.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, since := range f.fullSince {
		if since.Before(t) && !slices.Contains(out, k.p) {
			out = append(out, k.p)
		}
	}
	return out
}

// wait blocks while some peer of peers has Config.Window batches of topic
// queued, at most d, or until done is closed. A peer whose window has been
// full for d already is not waited for (it stopped reading: see above). It
// reports whether it had to wait.
func (f *flows) wait(topic string, peers []peer.ID, done <-chan struct{}, d time.Duration) bool {
	if f.window <= 0 {
		return false
	}
	stalled := time.Now().Add(-d)
	f.mu.Lock()
	if !f.fullLocked(topic, peers, stalled) {
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
		if !f.fullLocked(topic, peers, stalled) {
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
