package pubsub

import (
	"sync"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Lock order. GossipSub calls the tracer on its event loop, and pub/sub
// calls GossipSub (Join, Subscribe, Cancel, Publish) while holding p.mu,
// t.mu or regMu, and waits for the event loop's answer. So the tracer, and
// whatever it calls (flows, readiness, the subscription mirror, the
// direct streams' d.mu, the Membership, streamLost's resetMu), must never
// take p.mu, t.mu or regMu, or call back into GossipSub.

// gossipTracer is pub/sub's window into GossipSub: it implements
// GossipSub's RawTracer and hands each event to the part of pub/sub that
// needs it — queue accounting to flow control (flow.go), hellos and
// streams to readiness (ready.go), subscription RPCs to the subscription
// mirror (peertopics.go), the loss of a stream to onLost, drops and
// rejections to the counters. GossipSub calls it synchronously, mostly
// from its event loop: every method only takes a short lock.
type gossipTracer struct {
	flows  *flows
	ready  *readiness
	topics *peerTopics
	onLost func(peer.ID) // GossipSub's outbound stream to a peer closed
	count  *netCounters
	forged func(topic string, author, sender peer.ID) // counts and logs a forged author (forged.go)
	// subsRefused logs subscriptions the mirror refused (subfilter.go).
	subsRefused func(p peer.ID, n int)
	// inflight forgets a message turned away before validation, so that
	// its next copy is taken (inflight.go).
	inflight *inflight
	// announceWire is the wire name of the peer announcements' topic: its
	// drops count apart (Stats.AnnouncementsDropped).
	announceWire string

	// GossipSub pushes an RPC on a peer's queue before it reports it
	// (SendRPC), so the peer's writer may report it written
	// (SendRPCCompleted) first. queued holds the RPCs reported and not yet
	// written, early those written before they were reported. (Counting
	// alone lost such an RPC's completion and left the flow one batch
	// short for ever: Flush then hung, the window shrank.)
	mu     sync.Mutex
	queued map[sentRPC]struct{}
	early  map[sentRPC]struct{}
}

// sentRPC is one RPC towards one peer (GossipSub sends the same RPC to
// several peers).
type sentRPC struct {
	rpc *lp2pps.RPC
	p   peer.ID
}

// maxEarly bounds the RPCs remembered as written before they were
// reported. An RPC of a closed queue that was being written when the queue
// closed is reported written but never sent again: it would stay for ever.
const maxEarly = 1024

func newGossipTracer(f *flows, r *readiness, pt *peerTopics, onLost func(peer.ID), c *netCounters) *gossipTracer {
	return &gossipTracer{flows: f, ready: r, topics: pt, onLost: onLost, count: c,
		queued: map[sentRPC]struct{}{}, early: map[sentRPC]struct{}{}}
}

var _ lp2pps.RawTracer = (*gossipTracer)(nil)

// account adds d to the flows of every published message of rpc.
func (g *gossipTracer) account(rpc *lp2pps.RPC, p peer.ID, d int) {
	for _, m := range rpc.GetPublish() {
		g.flows.add(flowKey{p: p, topic: m.GetTopic()}, d)
	}
}

func (g *gossipTracer) SendRPC(rpc *lp2pps.RPC, p peer.ID) {
	if len(rpc.GetPublish()) == 0 {
		return
	}
	k := sentRPC{rpc, p}
	g.mu.Lock()
	_, written := g.early[k]
	if written {
		delete(g.early, k)
	} else {
		g.queued[k] = struct{}{}
	}
	g.mu.Unlock()
	if !written {
		g.account(rpc, p, 1)
	}
}

func (g *gossipTracer) SendRPCCompleted(rpc *lp2pps.RPC, p peer.ID, _ time.Duration) {
	if len(rpc.GetPublish()) == 0 {
		return
	}
	k := sentRPC{rpc, p}
	g.mu.Lock()
	_, reported := g.queued[k]
	if reported {
		delete(g.queued, k)
	} else {
		if len(g.early) >= maxEarly { // completions of RPCs of closed queues
			clear(g.early)
		}
		g.early[k] = struct{}{}
	}
	g.mu.Unlock()
	if reported {
		g.account(rpc, p, -1)
	}
}

func (g *gossipTracer) DropRPC(rpc *lp2pps.RPC, _ peer.ID) {
	for _, m := range rpc.GetPublish() {
		if g.announceWire != "" && m.GetTopic() == g.announceWire {
			g.count.announcesDropped.Add(1)
		} else {
			g.count.outboundDropped.Add(1)
		}
	}
}

func (g *gossipTracer) RejectMessage(m *lp2pps.Message, reason string) {
	switch reason {
	case lp2pps.RejectValidationQueueFull, lp2pps.RejectValidationThrottled:
		g.count.throttled.Add(1)
		if g.inflight != nil {
			g.inflight.forget(m.Message)
		}
	case lp2pps.RejectValidationFailed:
		g.count.invalid.Add(1)
	case lp2pps.RejectMissingSignature, lp2pps.RejectInvalidSignature:
		// GossipSub checked the signature before anything else: the
		// message is not its claimed author's.
		g.count.invalid.Add(1)
		g.forged(m.GetTopic(), peer.ID(m.GetFrom()), m.ReceivedFrom)
	}
}

func (g *gossipTracer) UndeliverableMessage(*lp2pps.Message) { g.count.undeliverable.Add(1) }

func (g *gossipTracer) DuplicateMessage(m *lp2pps.Message) { g.count.duplicate(m.GetTopic()) }

// RecvRPC runs on GossipSub's event loop just before it applies the RPC's
// subscriptions, in the same step: anything published after the mirror
// learnt them, or after readiness reported the peer, sees them in
// GossipSub too.
func (g *gossipTracer) RecvRPC(rpc *lp2pps.RPC) {
	if subs := rpc.GetSubscriptions(); len(subs) > 0 {
		if n := g.topics.learn(rpc.From(), subs); n > 0 {
			g.count.subsRefused.Add(uint64(n))
			g.subsRefused(rpc.From(), n)
		}
	}
	g.ready.hello(rpc.From())
}

func (g *gossipTracer) OnNewOutboundStream(p peer.ID, _ protocol.ID) { g.ready.streamOpened(p) }

// OnClosedOutboundStream runs on GossipSub's event loop when its stream to
// p closes, before GossipSub decides whether p is gone or the stream is to
// be reopened: p's queue and its subscriptions are forgotten either way.
func (g *gossipTracer) OnClosedOutboundStream(p peer.ID) {
	g.mu.Lock()
	for k := range g.queued {
		if k.p == p {
			delete(g.queued, k)
		}
	}
	for k := range g.early {
		if k.p == p {
			delete(g.early, k)
		}
	}
	g.mu.Unlock()
	g.flows.reset(p, false)
	g.topics.forget(p)
	g.onLost(p)
	g.ready.streamClosed(p)
}

func (g *gossipTracer) Join(string)                     {}
func (g *gossipTracer) Leave(string)                    {}
func (g *gossipTracer) Graft(peer.ID, string)           {}
func (g *gossipTracer) Prune(peer.ID, string)           {}
func (g *gossipTracer) ValidateMessage(*lp2pps.Message) {}
func (g *gossipTracer) DeliverMessage(*lp2pps.Message)  {}
func (g *gossipTracer) ThrottlePeer(peer.ID)            {}
