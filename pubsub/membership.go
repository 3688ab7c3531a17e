package pubsub

import (
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Membership is the view of the mesh that pub/sub routes by. Its owner
// keeps track of the host's connections (package node owns it: membership,
// discovery and redials live there, in one place); pub/sub reads from it
// which peers are connected, and tells it when a connected peer's pub/sub
// is ready to receive this node's messages, which is what the node counts
// as the peer having joined.
type Membership interface {
	// FollowConnections calls fn(p, true) for every peer connected now,
	// then fn(p, up) for each change of a peer's connectedness, in order,
	// one call at a time, until stop is called (stop waits for a call in
	// progress). A state may be reported twice. fn does not block.
	FollowConnections(fn func(p peer.ID, up bool)) (stop func())
	// PubSubReady reports that connected peer p can receive what this node
	// publishes: its subscriptions have arrived and GossipSub's stream to
	// it is open, so a Publish from now on reaches p's current
	// subscriptions. It is called once per connection session of p, from
	// GossipSub's event loop: it must not block.
	PubSubReady(p peer.ID)
}

// hostConnections is the Membership of a host without an owner (New with a
// nil Membership): pub/sub follows the host's connection events itself and
// nobody listens for readiness.
type hostConnections struct {
	h   host.Host
	sub event.Subscription
}

func newHostConnections(h host.Host) (*hostConnections, error) {
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return nil, fmt.Errorf("pubsub: event bus: %w", err)
	}
	return &hostConnections{h: h, sub: sub}, nil
}

func (hc *hostConnections) FollowConnections(fn func(peer.ID, bool)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer hc.sub.Close()
		// Subscribed before listing: a change meanwhile is reported twice
		// at worst, and fn is idempotent.
		for _, p := range hc.h.Network().Peers() {
			fn(p, true)
		}
		for {
			select {
			case <-done:
				return
			case e, ok := <-hc.sub.Out():
				if !ok {
					return
				}
				ev := e.(event.EvtPeerConnectednessChanged)
				fn(ev.Peer, ev.Connectedness == network.Connected)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

func (*hostConnections) PubSubReady(peer.ID) {}
