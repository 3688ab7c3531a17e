package pubsub

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// stallLoop disconnects the peers whose window for some topic has stayed
// full for Config.StallTimeout: whatever was queued towards them has not
// moved, so they stopped reading (a hung process, or a member that means
// harm). Their queued batches go with the connection's streams, and flow
// control forgets them as the streams close; the node's membership may connect again, and a peer that
// still does not read is disconnected again. Publishers stopped waiting for
// such a peer long before (flow.go). It checks four times per timeout
// while some window is full, and sleeps while none is.
func (p *PubSub) stallLoop() {
	every := max(p.cfg.StallTimeout/4, 10*time.Millisecond)
	tick := time.NewTimer(every)
	defer tick.Stop()
	var peers []peer.ID
	// Peers disconnected within the last timeout: their queues empty as
	// the connection's streams close (gstracer.go, direct.go), not at once.
	recent := map[peer.ID]time.Time{}
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-tick.C:
			for q, at := range recent {
				if now.Sub(at) > p.cfg.StallTimeout {
					delete(recent, q)
				}
			}
			peers = p.flows.stalled(now.Add(-p.cfg.StallTimeout), peers[:0])
			for _, q := range peers {
				if _, ok := recent[q]; ok {
					continue
				}
				recent[q] = now
				p.count.stalled.Add(1)
				p.log.Warn("pubsub: disconnecting a peer that reads nothing", "peer", q,
					"stalledFor", p.cfg.StallTimeout, "total", p.count.stalled.Load())
				_ = p.host.Network().ClosePeer(q)
			}
		}
		if len(recent) == 0 && !p.flows.anyFull() {
			select {
			case <-p.ctx.Done():
				return
			case <-p.flows.full:
			}
		}
		tick.Reset(every)
	}
}
