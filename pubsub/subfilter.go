package pubsub

import (
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	// maxTopicsPerPeer bounds the topics one peer may subscribe to, as this
	// node keeps them (peerTopics and GossipSub's own table): beyond it a
	// peer's subscriptions are ignored and counted
	// (Stats.SubscriptionsRefused). A node subscribes to its own topics, its
	// patterns' matches (at most maxFollowed) and a few reserved ones.
	maxTopicsPerPeer = 25_000
	// maxWireTopic bounds a subscribed topic's wire name after the prefix:
	// the longest a node of ours uses (a registry topic holds a topic and a
	// group name).
	maxWireTopic = 2*maxTopicLen + 64
)

// subFilter makes GossipSub keep no subscription the mirror refused
// (peerTopics.learn). GossipSub calls it on its event loop right after the
// tracer's RecvRPC, in which the mirror learnt the same subscriptions, so
// the two tables hold the same ones.
type subFilter struct{ topics *peerTopics }

func (subFilter) CanSubscribe(string) bool { return true }

func (f subFilter) FilterIncomingSubscriptions(p peer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	var kept []*pb.RPC_SubOpts // nil until one is dropped
	dropped := false
	for i, so := range subs {
		if so.GetSubscribe() && !f.topics.has(so.GetTopicid(), p) {
			if !dropped {
				dropped = true
				kept = append(make([]*pb.RPC_SubOpts, 0, len(subs)), subs[:i]...)
			}
			continue
		}
		if dropped {
			kept = append(kept, so)
		}
	}
	if !dropped {
		return subs, nil
	}
	return kept, nil
}

// subsRefused logs, at most once per 10 s, that a peer's subscriptions
// were refused (counted by the tracer in Stats.SubscriptionsRefused).
func (p *PubSub) subsRefused(q peer.ID, n int) {
	p.subsLog.Do(func() {
		p.log.Warn("pubsub: ignoring a peer's subscriptions beyond the limit", "peer", q,
			"refused", n, "limitTopics", maxTopicsPerPeer, "total", p.count.subsRefused.Load())
	})
}
