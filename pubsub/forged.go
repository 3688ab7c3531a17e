package pubsub

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// forgedWarnEvery bounds how often a forged author is logged at Warn; every
// one is counted (Stats.Forged).
const forgedWarnEvery = 10 * time.Second

// forged counts a batch or call whose claimed author is not the peer that
// signed or sent it (a member impersonating another), and logs it at Warn,
// at most once per forgedWarnEvery. The caller counts it in Invalid too
// (GossipSub's rejections reach Invalid through the tracer).
func (p *PubSub) forged(topic string, author, sender peer.ID) {
	p.count.forged.Add(1)
	p.forgedLog.Do(func() {
		p.log.Warn("pubsub: refusing a message whose author is not its sender (a member impersonating another?)",
			"topic", topic, "author", author, "sender", sender, "forged", p.count.forged.Load())
	})
}

// newForgedLog returns a limiter of warnings: the first, then one per
// forgedWarnEvery.
func newForgedLog() *rate.Sometimes {
	return &rate.Sometimes{First: 1, Interval: forgedWarnEvery}
}
