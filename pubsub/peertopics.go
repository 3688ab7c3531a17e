package pubsub

import (
	"sync"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// peerTopics mirrors GossipSub's view of which peer subscribes to which
// topic, from the same subscription RPCs, seen by the tracer just before
// GossipSub applies them. Both ways (direct streams and GossipSub) send a
// topic's batches to these peers, and flow control waits for them.
// GossipSub's own view is behind its event loop: asking it for every batch
// would cost a round trip through that loop.
//
// It also remembers which peers are ready (ready.go): a subscriber counts
// for WaitSubscribers only once a Publish can reach it.
type peerTopics struct {
	mu      sync.Mutex
	subs    map[string]map[peer.ID]struct{} // wire topic → subscribed peers
	ready   map[peer.ID]struct{}            // peers whose pub/sub is ready
	changed chan struct{}                   // closed and replaced at every change
}

func newPeerTopics() *peerTopics {
	return &peerTopics{subs: map[string]map[peer.ID]struct{}{}, ready: map[peer.ID]struct{}{}, changed: make(chan struct{})}
}

// setReady records that p's pub/sub is ready.
func (pt *peerTopics) setReady(p peer.ID) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.ready[p] = struct{}{}
	pt.changedLocked()
}

// changedLocked wakes the waiters of count; pt.mu held.
func (pt *peerTopics) changedLocked() {
	close(pt.changed)
	pt.changed = make(chan struct{})
}

// learn applies a peer's subscription changes.
func (pt *peerTopics) learn(p peer.ID, subs []*pb.RPC_SubOpts) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	defer pt.changedLocked()
	for _, so := range subs {
		t := so.GetTopicid()
		if so.GetSubscribe() {
			m := pt.subs[t]
			if m == nil {
				m = map[peer.ID]struct{}{}
				pt.subs[t] = m
			}
			m[p] = struct{}{}
		} else if m := pt.subs[t]; m != nil {
			delete(m, p)
			if len(m) == 0 {
				delete(pt.subs, t)
			}
		}
	}
}

// forget drops a peer's subscriptions, as GossipSub does when its stream
// to the peer closes (which also ends the peer's readiness).
func (pt *peerTopics) forget(p peer.ID) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	defer pt.changedLocked()
	delete(pt.ready, p)
	for t, m := range pt.subs {
		delete(m, p)
		if len(m) == 0 {
			delete(pt.subs, t)
		}
	}
}

// of appends the peers subscribed to the wire topic to buf.
func (pt *peerTopics) of(topic string, buf []peer.ID) []peer.ID {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for p := range pt.subs[topic] {
		buf = append(buf, p)
	}
	return buf
}

// readyCount returns how many ready peers subscribe to the wire topic, and
// a channel closed at the next change.
func (pt *peerTopics) readyCount(topic string) (int, <-chan struct{}) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	n := 0
	for p := range pt.subs[topic] {
		if _, ok := pt.ready[p]; ok {
			n++
		}
	}
	return n, pt.changed
}
