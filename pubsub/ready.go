package pubsub

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Readiness.
//
// A connected peer can receive what this node publishes once two things
// have happened, in either order: its first RPC arrived (it carries the
// peer's subscriptions, so GossipSub routes the peer's topics to it from
// then on), and GossipSub's outbound stream to it is open (before that,
// GossipSub drops what it routes to the peer). readiness reports that
// moment once per session of the peer: a session ends when GossipSub's
// outbound stream to the peer closes.

// Readiness bits of a peer.
const (
	readyHello  = 1 << iota // its first RPC arrived
	readyStream             // our outbound stream to it is open
	readyBoth   = readyHello | readyStream
)

// readiness tracks the bits per peer and calls onReady when both are set,
// onEnd when the session ends.
type readiness struct {
	onReady func(peer.ID) // on GossipSub's event loop; must not block
	onEnd   func(peer.ID) // likewise

	bits sync.Map   // peer.ID → int: read without the lock on every RPC
	mu   sync.Mutex // serialises updates of bits
}

func newReadiness(onReady, onEnd func(peer.ID)) *readiness {
	return &readiness{onReady: onReady, onEnd: onEnd}
}

// hello records that p's first RPC arrived.
func (r *readiness) hello(p peer.ID) { r.mark(p, readyHello) }

// streamOpened records that GossipSub's outbound stream to p is open.
func (r *readiness) streamOpened(p peer.ID) { r.mark(p, readyStream) }

// streamClosed ends p's session: it must say hello again.
func (r *readiness) streamClosed(p peer.ID) {
	r.mu.Lock()
	r.bits.Delete(p)
	r.mu.Unlock()
	r.onEnd(p)
}

// mark records a bit and calls onReady when p has both.
func (r *readiness) mark(p peer.ID, bit int) {
	if v, ok := r.bits.Load(p); ok && v.(int)&bit != 0 {
		return // the fast path of every RPC
	}
	r.mu.Lock()
	v, _ := r.bits.Load(p)
	old, _ := v.(int)
	r.bits.Store(p, old|bit)
	r.mu.Unlock()
	if old != readyBoth && old|bit == readyBoth {
		r.onReady(p)
	}
}
