package statuspage

import (
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// sample is one reading of the node's counters, with the topics' rates
// since the reading before.
type sample struct {
	at         time.Time
	node       node.Stats
	pubsub     pubsub.Stats
	store      crdtstore.Stats
	storePeers []crdtstore.PeerSyncStatus
	rates      map[string]Rate
}

// Rate is a topic's traffic per second between two samples.
type Rate struct {
	// Published and Received are messages per second sent and received;
	// PublishedBytes and ReceivedBytes their payload bytes per second.
	Published      float64 `json:"published"`
	Received       float64 `json:"received"`
	PublishedBytes float64 `json:"published_bytes"`
	ReceivedBytes  float64 `json:"received_bytes"`
}

// takeSample reads the counters, computes the rates against the last
// sample and records the sync events it reveals.
func (p *Page) takeSample(now time.Time) {
	s := sample{
		at:     now,
		node:   p.cfg.Node.Stats(),
		pubsub: p.cfg.Node.PubSub().Stats(),
	}
	if p.cfg.Store != nil {
		s.store = p.cfg.Store.Stats()
		s.storePeers = p.cfg.Store.PeerSyncStatus()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s.rates = rates(p.last, s)
	p.last = s
	p.syncEventsLocked(now, s.storePeers)
}

// rates returns each topic's rates from prev to cur (none for a topic
// prev did not have, or without time between them).
func rates(prev, cur sample) map[string]Rate {
	out := make(map[string]Rate, len(cur.pubsub.Topics))
	dt := cur.at.Sub(prev.at).Seconds()
	for name, c := range cur.pubsub.Topics {
		p, ok := prev.pubsub.Topics[name]
		if !ok || dt <= 0 {
			out[name] = Rate{}
			continue
		}
		out[name] = Rate{
			Published: perSecond(p.Published, c.Published, dt),
			Received:  perSecond(p.Received, c.Received, dt),

			PublishedBytes: perSecond(p.PublishedBytes, c.PublishedBytes, dt),
			ReceivedBytes:  perSecond(p.ReceivedBytes, c.ReceivedBytes, dt),
		}
	}
	return out
}

// perSecond is (b-a)/dt, 0 if the counter went back (a topic left and
// joined again between the samples).
func perSecond(a, b uint64, dt float64) float64 {
	if b < a {
		return 0
	}
	return float64(b-a) / dt
}
