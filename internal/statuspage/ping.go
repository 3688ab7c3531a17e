package statuspage

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// pingLoop measures the round-trip time to the connected peers (the
// graph's link labels): a round at once, then one every pingEvery, of at
// most pingsPerRound peers, going on where the last round stopped.
func (p *Page) pingLoop() {
	defer p.wg.Done()
	var next int // where the next round starts in the sorted peer list
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		peers := p.cfg.Node.Neighbours()
		next = p.pingRound(peers, next)
		t.Reset(pingEvery)
	}
}

// pingRound pings up to pingsPerRound of peers from index next on, one at
// a time, and returns where the next round starts.
func (p *Page) pingRound(peers []peer.ID, next int) int {
	if len(peers) == 0 {
		return 0
	}
	next %= len(peers)
	n := min(len(peers), pingsPerRound)
	for i := range n {
		if p.ctx.Err() != nil {
			break
		}
		q := peers[(next+i)%len(peers)]
		if _, err := p.cfg.Node.Ping(p.ctx, q); err != nil {
			p.log.Debug("statuspage: ping", "peer", q, "err", err)
		}
	}
	return (next + n) % len(peers)
}
