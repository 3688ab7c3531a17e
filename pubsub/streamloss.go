package pubsub

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// resetCooldown spaces the connection resets of streamLost per peer.
const resetCooldown = 2 * time.Second

// streamLost handles the end of GossipSub's outbound stream to q. If a
// connection to q remains (a duplicate connection died, or the stream was
// reset), GossipSub forgets q's topics and opens a new stream; but q, whose
// own stream to us may be fine, never repeats its subscriptions, so nothing
// would be sent to q until it reconnects, possibly for a long time (seen
// under packet loss: 40 s without a message). So close the connections to
// q: both sides see it leave, the node's reconnect loop dials again, and
// both say hello afresh. Called on GossipSub's event loop, as GossipSub's
// own check of the connection is.
func (p *PubSub) streamLost(q peer.ID) {
	if p.host.Network().Connectedness(q) != network.Connected {
		return
	}
	// Not p.mu: a goroutine holding it may be waiting for the event loop
	// this runs on (joining a topic, subscribing).
	p.resetMu.Lock()
	defer p.resetMu.Unlock()
	if p.closingFlag.Load() || time.Since(p.resets[q]) < resetCooldown {
		return
	}
	if len(p.resets) > 1024 {
		clear(p.resets)
	}
	p.resets[q] = time.Now()
	p.count.connResets.Add(1)
	p.log.Debug("pubsub: stream to a connected peer lost; resetting its connections", "peer", q)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.host.Network().ClosePeer(q)
	}()
}
