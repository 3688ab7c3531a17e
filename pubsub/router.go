package pubsub

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Routing.
//
// Every batch a topic's publisher sends takes exactly one of two ways:
//
//   - Direct streams (direct.go): written straight to each subscribed peer.
//     Taken when this node's neighbourhood is closed (topology.go: every
//     peer it is connected to has announced its connections, and all of
//     those are its peers too — nobody needs a relay, as in a full mesh)
//     and has been for closedHold (sendsDirect), signing is off, and every
//     subscribed peer's direct stream is open.
//   - GossipSub otherwise: a partial mesh (bootstrap peers, a broken link)
//     needs its relaying, a signed mesh its signatures, and a peer whose
//     direct stream is still opening its queue.
//
// Both ways reach the subscribers GossipSub knows of (peertopics.go);
// GossipSub also sends to the peers that only relay the topic (relay.go).
// Before choosing, the publisher waits until each of them has room in its
// window for the topic (flow.go).
//
// Order per publisher survives a change of way. A topic's batches carry
// consecutive sequence numbers on both ways, and a receiver's reorderer
// (order.go) puts them back in order: a batch that arrives before its
// predecessor waits for it. Only a receiver that has nothing of the
// publisher yet cannot tell that a predecessor is missing; so the first
// batch after a change carries flagSwitched when its predecessor may still
// arrive after it, and such a receiver then waits for the predecessor
// instead of starting its sequence there. The predecessor may arrive later
//
//   - always when it went through GossipSub: a receiver hands a GossipSub
//     message through its event loop and a validation queue, a direct
//     frame straight from the stream's reader, so a direct batch overtakes
//     a GossipSub one sent just before it;
//   - when it went on direct streams, only while it is still queued there:
//     once written to the connections, it is ahead of anything GossipSub
//     writes later and faster on the receiving side.
//
// Without the flag (a change after a direct batch that left), a receiver
// that was not subscribed when the predecessor left — a peer that just
// joined, whose arrival is what made the way change — starts at once
// instead of waiting for a batch that was never meant for it. Nobody polls:
// the publisher never waits for a way to drain, the receivers' wait is
// bounded (reorderWait) and ends when the predecessor arrives.

// router sends the batches of every topic. It holds no per-topic state:
// each topic's publisher goroutine owns its route.
type router struct {
	ctx        context.Context // ends at Close
	author     []byte          // our peer id, in every batch header
	topo       *topology
	topics     *peerTopics
	dir        *direct
	flows      *flows
	windowWait time.Duration
}

// route is one topic's routing state, used only by its publisher goroutine.
type route struct {
	wire          string                                       // the topic's wire name
	viaGossipOnly bool                                         // never on direct streams (the peer announcements: topology.go)
	gossip        func(ctx context.Context, data []byte) error // publishes through GossipSub
	sent          bool                                         // a batch has been sent
	direct        bool                                         // the way of the last batch
	peers         []peer.ID                                    // subscribers and relays
	subs          []peer.ID                                    // subscribers, when some peers only relay
	streams       []*directPeer
	turns         map[string]uint64 // next turn per queue group (queue.go)
}

// sendResult says how a batch went.
type sendResult struct {
	direct bool // on direct streams
	waited bool // the publisher waited for a window
}

// send sends the writer's batch, sequence number seq, one way, after
// waiting for the subscribers' windows (at most windowWait, or until stop
// is closed).
func (r *router) send(rt *route, w *batchWriter, seq uint64, stop <-chan struct{}) (sendResult, error) {
	var res sendResult
	rt.peers = r.topics.of(rt.wire, rt.peers[:0])
	res.waited = r.flows.wait(rt.wire, rt.peers, stop, r.windowWait)
	rt.streams = rt.streams[:0]
	if !rt.viaGossipOnly && r.topo.sendsDirect(time.Now()) {
		// Relays (relay.go) need nothing on the direct way: nobody is
		// beyond a closed neighbourhood.
		rt.subs = r.topics.withoutRelays(rt.wire, rt.peers, rt.subs[:0])
		rt.streams, res.direct = r.dir.streams(rt.subs, rt.streams)
	}
	var flags byte
	if rt.sent && res.direct != rt.direct && (!rt.direct || r.flows.queued(rt.wire, true)) {
		flags = flagSwitched
	}
	switch {
	case res.direct && len(rt.streams) > 0:
		frame, _ := w.encodeFrame(rt.wire, r.author, seq, flags)
		for _, s := range rt.streams {
			s.enqueue(frame, rt.wire)
		}
	case res.direct:
		// Nobody subscribes (a topic of queue groups only, or none yet):
		// nothing to encode.
	default:
		if err := rt.gossip(r.ctx, w.encode(r.author, seq, flags)); err != nil {
			return res, err
		}
	}
	rt.sent, rt.direct = true, res.direct
	return res, nil
}
