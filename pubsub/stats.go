package pubsub

import (
	"sync"
	"sync/atomic"
)

// netCounters count, for the whole node, what the network did to batches
// on both ways (GossipSub's through its tracer, direct streams').
type netCounters struct {
	outboundDropped  atomic.Uint64 // batches dropped because a peer's queue was full or its stream failed
	announcesDropped atomic.Uint64 // peer announcements GossipSub dropped (no queue to the peer yet, or a full one)
	throttled        atomic.Uint64 // inbound batches dropped before validation
	undeliverable    atomic.Uint64 // inbound batches our reader was too slow for
	invalid          atomic.Uint64 // inbound batches that failed validation
	duplicates       atomic.Uint64 // inbound copies of batches already seen
	// topicDups counts duplicates per wire topic (*atomic.Uint64 by wire
	// name). GossipSub drops copies on topics we do not subscribe to before
	// it looks for duplicates, so only our own topics ever get an entry.
	topicDups    sync.Map
	connResets   atomic.Uint64 // connections closed by streamLost
	noSubscriber atomic.Uint64 // messages sent here with nobody to take them
	unroutable   atomic.Uint64 // forwarded frames this node could not pass on
	forged       atomic.Uint64 // inbound batches and calls whose author was not their sender
	subsRefused  atomic.Uint64 // subscriptions of peers beyond maxTopicsPerPeer
	stalled      atomic.Uint64 // peers disconnected by stallLoop
	catchUps     atomic.Uint64 // catch-ups completed, both ways (catchup.go)
	caughtUp     atomic.Uint64 // announcements learnt in them
}

// TopicStats counts one topic's traffic on this node.
type TopicStats struct {
	// Published counts messages sent; Batches the network messages they
	// travelled in, DirectBatches those of them sent on direct streams
	// rather than through GossipSub (see the package documentation).
	Published     uint64 `json:"published"`
	Batches       uint64 `json:"batches"`
	DirectBatches uint64 `json:"direct_batches"`
	// PublishedBytes counts the payload bytes (Message.Data, without
	// headers or framing) of the messages Published counts.
	PublishedBytes uint64 `json:"published_bytes"`
	// SendFailed counts messages GossipSub refused to publish (the node was
	// closing, or an internal error), and queue-group shares no member
	// node could take; they were not sent.
	SendFailed uint64 `json:"send_failed"`
	// Waits counts how often the publisher paused for a peer's queue to
	// drain (flow control).
	Waits uint64 `json:"waits"`
	// Received counts messages received from other nodes (and this one,
	// with Echo), Delivered those handed to handlers, Dropped those lost
	// because a subscription's queue was full.
	Received  uint64 `json:"received"`
	Delivered uint64 `json:"delivered"`
	Dropped   uint64 `json:"dropped"`
	// ReceivedBytes counts the payload bytes of the messages Received
	// counts (once per message, however many subscriptions take it).
	ReceivedBytes uint64 `json:"received_bytes"`
	// NotForwarded counts received batches this node did not relay because
	// every peer of it had them from their author directly.
	NotForwarded uint64 `json:"not_forwarded"`
	// Duplicates counts received copies of the topic's batches already
	// seen (GossipSub's; their sum over the topics is
	// Stats.InboundDuplicates), to tell which topic the idle traffic of a
	// mesh comes from.
	Duplicates uint64 `json:"duplicates"`
	// SkippedBatches counts batches of other nodes never received here: a
	// later batch of the same publisher waited for them in vain (about
	// 100 ms) and was delivered without them.
	SkippedBatches uint64 `json:"skipped_batches"`
}

// Stats is a snapshot of this node's counters.
type Stats struct {
	// Topics holds each joined topic's counters, and each wildcard
	// pattern's (Delivered and Dropped of its subscriptions only: their
	// messages count, bytes included, under the topics they came on).
	Topics map[string]TopicStats `json:"topics"`
	// OutboundDropped counts batches dropped because a peer's outbound
	// queue (GossipSub's or the direct stream's) was full, or GossipSub
	// had not opened one yet; each was lost for that peer.
	OutboundDropped uint64 `json:"outbound_dropped"`
	// AnnouncementsDropped counts peer announcements (the membership's
	// own messages, this node's or relayed) that GossipSub dropped for a
	// peer; they are not in OutboundDropped. Mostly it happens as a peer
	// connects: GossipSub takes the subscriptions the peer sent before it
	// has opened its own queue towards the peer, and drops what it routes
	// there meanwhile. Nothing is lost for good: once that queue is open
	// the peer counts as ready, and this node announces again, to it too.
	// A few while a mesh forms is normal; more, with OutboundDropped
	// growing too, means a peer's queue is full.
	AnnouncementsDropped uint64 `json:"announcements_dropped"`
	// InboundThrottled counts received batches dropped before validation
	// because the validation queue was full.
	InboundThrottled uint64 `json:"inbound_throttled"`
	// InboundUndeliverable counts received batches dropped because this
	// node's reader fell behind.
	InboundUndeliverable uint64 `json:"inbound_undeliverable"`
	// Invalid counts received batches rejected by validation. A batch
	// that does not decode, or claims another author, on a direct stream
	// also closes that stream; one a topic's validator refuses does not.
	// A direct-stream frame left unfinished for 10 s counts here too (its
	// stream is reset: a frame takes memory only as its bytes arrive).
	Invalid uint64 `json:"invalid"`
	// Forged counts the batches and calls of Invalid whose claimed author
	// was not the peer that signed or sent them: a member impersonating
	// another (see Authorship in the package documentation). Each is also
	// logged at Warn, at most once per 10 s.
	Forged uint64 `json:"forged"`
	// SubscriptionsRefused counts peers' topic subscriptions this node
	// ignored: beyond 25,000 topics for one peer, or a topic name longer
	// than any node uses. Logged at Warn, at most once per 10 s.
	SubscriptionsRefused uint64 `json:"subscriptions_refused"`
	// StalledPeers counts the peers this node disconnected because they
	// read nothing of a topic for Config.StallTimeout (stall.go).
	StalledPeers uint64 `json:"stalled_peers"`
	// InboundDuplicates counts received copies of batches already seen,
	// or still being validated: GossipSub copies relayed by more than one
	// peer (in a settled fully connected mesh, where nothing is relayed,
	// only the rare copy GossipSub asks for after a peer's gossip while it
	// still validates its own). TopicStats.Duplicates tells the topics
	// apart.
	InboundDuplicates uint64 `json:"inbound_duplicates"`
	// ConnectionResets counts the times this node closed its connections
	// to a peer because GossipSub lost its stream to the peer while still
	// connected (the peer's subscriptions would have been forgotten).
	ConnectionResets uint64 `json:"connection_resets"`
	// InboundNoSubscriber counts messages sent to this node alone (Send,
	// a queue group's share) that found no subscription or member here:
	// it had just left.
	InboundNoSubscriber uint64 `json:"inbound_no_subscriber"`
	// Unroutable counts frames for another node (a call on a partial
	// mesh: routes.go) that this node, as a relay, could not pass on: no
	// path to the target any more, or too many hops (a full queue towards
	// the next hop counts in OutboundDropped).
	Unroutable uint64 `json:"unroutable"`
	// CatchUps counts the exchanges of peer announcements this node
	// completed with a peer, opened by either (when their pub/subs meet,
	// and after this node learnt what its peers may lack); CaughtUp the
	// announcements it learnt in them, newer than what it held. See the
	// package documentation, Forwarding.
	CatchUps uint64 `json:"catch_ups"`
	CaughtUp uint64 `json:"caught_up"`
}

// Stats returns the current counters.
func (p *PubSub) Stats() Stats {
	s := Stats{
		Topics:               make(map[string]TopicStats),
		OutboundDropped:      p.count.outboundDropped.Load(),
		AnnouncementsDropped: p.count.announcesDropped.Load(),
		InboundThrottled:     p.count.throttled.Load(),
		InboundUndeliverable: p.count.undeliverable.Load(),
		Invalid:              p.count.invalid.Load(),
		InboundDuplicates:    p.count.duplicates.Load(),
		ConnectionResets:     p.count.connResets.Load(),
		InboundNoSubscriber:  p.count.noSubscriber.Load(),
		Unroutable:           p.count.unroutable.Load(),
		Forged:               p.count.forged.Load(),
		SubscriptionsRefused: p.count.subsRefused.Load(),
		StalledPeers:         p.count.stalled.Load(),
		CatchUps:             p.count.catchUps.Load(),
		CaughtUp:             p.count.caughtUp.Load(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, t := range p.joined {
		c := &t.stats
		s.Topics[name] = TopicStats{
			Published:      c.published.Load(),
			Batches:        c.batches.Load(),
			DirectBatches:  c.direct.Load(),
			SendFailed:     c.sendFailed.Load(),
			Waits:          c.waits.Load(),
			Received:       c.received.Load(),
			PublishedBytes: c.pubBytes.Load(),
			ReceivedBytes:  c.recvBytes.Load(),
			Delivered:      c.delivered.Load(),
			Dropped:        c.dropped.Load(),
			NotForwarded:   c.notForwarded.Load(),
			Duplicates:     p.count.topicDuplicates(t.wire),
			SkippedBatches: t.order.skipped(),
		}
	}
	// A wildcard pattern's subscriptions count under the pattern: what
	// they were handed and what they dropped.
	for pattern, subs := range p.patterns {
		var ts TopicStats
		for _, sub := range subs {
			ts.Delivered += sub.t.stats.delivered.Load()
			ts.Dropped += sub.t.stats.dropped.Load()
		}
		s.Topics[pattern] = ts
	}
	return s
}

// duplicate counts a received copy of a batch of the wire topic that was
// seen already.
func (c *netCounters) duplicate(wire string) {
	c.duplicates.Add(1)
	n, ok := c.topicDups.Load(wire)
	if !ok {
		n, _ = c.topicDups.LoadOrStore(wire, new(atomic.Uint64))
	}
	n.(*atomic.Uint64).Add(1)
}

// topicDuplicates returns the duplicates counted for the wire topic.
func (c *netCounters) topicDuplicates(wire string) uint64 {
	if n, ok := c.topicDups.Load(wire); ok {
		return n.(*atomic.Uint64).Load()
	}
	return 0
}
