package pubsub

import (
	"context"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Send delivers data to the plain subscriptions of topic on one peer only
// (not to its queue-group members or responders), on the direct stream to
// that peer (calls.go). It returns once the message is queued towards the
// peer, waiting for the stream to open and for room in the peer's window
// (at most until ctx ends). It fails with ErrNoSubscriber when the peer is
// connected and does not subscribe to topic (WaitSubscribers waits for
// that), with ErrNoRoute when the peer is neither connected nor reachable
// through announced links, or its stream fails; nothing is sent then. On a
// partial mesh the message is relayed to a peer beyond the neighbours. Messages sent to one peer arrive in
// the order they were sent. Sending to this node's own id delivers to its
// own subscriptions.
func (p *PubSub) Send(ctx context.Context, to peer.ID, topic string, data []byte, opts ...Option) error {
	o := applyOptions(opts)
	t, hdr, err := p.prepare(topic, data, o)
	if err != nil {
		return err
	}
	var w batchWriter
	w.addHeader(hdr, slices.Clone(data))
	if to == p.host.ID() {
		if len(*t.subs.Load()) == 0 {
			return fmt.Errorf("%w: this node, topic %q", ErrNoSubscriber, topic)
		}
		b := w.local(p.router.author, 0)
		if err := t.vet(b); err != nil {
			return err
		}
		t.deliver(b)
		return nil
	}
	// A neighbour's subscriptions are known; a node beyond them gets the
	// message if it is reachable (counted there if it does not subscribe).
	if p.topo.neighbour(to) && !slices.Contains(p.topics.subscribers(t.wire, nil), to) {
		return fmt.Errorf("%w: %s, topic %q", ErrNoSubscriber, to, topic)
	}
	if err := p.sendFrame(ctx, to, t.wire, encodeSendFrame(t.wire, "", p.router.author, &w)); err != nil {
		return err
	}
	t.stats.published.Add(1)
	t.stats.pubBytes.Add(uint64(len(data)))
	return nil
}

// callFlow is the flow-control key of a topic's calls towards a peer: a
// window of its own, so that calls neither eat the topic's broadcast
// window nor look like queued broadcast batches to the router.
func callFlow(wire string) string { return wire + "\x00calls" }

// sendFrame queues a call frame towards one peer, counted in the calls'
// flow of the wire topic (callFlow): it waits for the peer's stream and
// for room in its window (at most WindowWait, as publishers do) or until
// ctx ends.
func (p *PubSub) sendFrame(ctx context.Context, to peer.ID, wire string, frame []byte) error {
	if !p.topo.neighbour(to) {
		// Beyond the neighbours: through the next hop (routes.go).
		next, ok := p.topo.nextHop(to)
		if !ok {
			return fmt.Errorf("%w: %s: not connected, and no announced path", ErrNoRoute, to)
		}
		fw, err := p.encodeForward(to, frame)
		if err != nil {
			return err
		}
		frame, to = fw, next
	}
	s, err := p.dir.stream(ctx, to)
	if err != nil {
		return err
	}
	wire = callFlow(wire)
	p.flows.wait(wire, []peer.ID{to}, ctx.Done(), p.cfg.WindowWait)
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.enqueue(frame, wire) {
		return fmt.Errorf("%w: %s: stream closed or its queue full", ErrNoRoute, to)
	}
	return nil
}

// receiveSend delivers a frameSend's messages: to the plain subscriptions
// for group "", else to one member of the group each.
func (p *PubSub) receiveSend(from peer.ID, c *callFrame) {
	t := p.joinedWire(c.wire)
	if t == nil {
		p.count.noSubscriber.Add(uint64(len(c.b.msgs)))
		p.log.Debug("pubsub: message sent for a topic not joined here", "from", from)
		return
	}
	if err := t.vet(c.b); err != nil {
		p.count.invalid.Add(1)
		p.log.Debug("pubsub: refusing a sent batch", "topic", t.name, "from", from, "err", err)
		return
	}
	if c.group == "" {
		if len(*t.subs.Load()) == 0 {
			p.count.noSubscriber.Add(uint64(len(c.b.msgs)))
			return
		}
		t.deliver(c.b)
		return
	}
	t.deliverGroup(c.group, c.b)
}
