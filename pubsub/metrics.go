package pubsub

import "github.com/prometheus/client_golang/prometheus"

// NewCollector returns a Prometheus collector of p's counters: a Stats
// snapshot and the queue depths, read when the registry is scraped, so it
// costs nothing between scrapes. Package node registers it when
// node.Config.Metrics is set. The metrics are reflect_pubsub_*: per topic
// (label "topic": a joined topic's name, or a wildcard pattern) the
// counters of TopicStats and the queue gauges, and for the node the counters
// of Stats. Counters are named *_total, as Prometheus expects.
func NewCollector(p *PubSub) prometheus.Collector {
	c := &metricsCollector{ps: p}
	for _, m := range topicMetrics {
		c.topic = append(c.topic, topicMetric{
			desc:  prometheus.NewDesc("reflect_pubsub_"+m.name, m.help, []string{"topic"}, nil),
			value: m.value,
		})
	}
	for _, m := range nodeMetrics {
		c.node = append(c.node, nodeMetric{
			desc:  prometheus.NewDesc("reflect_pubsub_"+m.name, m.help, nil, nil),
			value: m.value,
		})
	}
	c.pubQueue = prometheus.NewDesc("reflect_pubsub_publish_queue_messages",
		"Messages waiting in the topic's publish queue.", []string{"topic"}, nil)
	c.pubQueueBytes = prometheus.NewDesc("reflect_pubsub_publish_queue_bytes",
		"Bytes of message data waiting in the topic's publish queue.", []string{"topic"}, nil)
	c.subQueue = prometheus.NewDesc("reflect_pubsub_subscription_queue_messages",
		"Messages waiting in the topic's subscription queues for their handlers, summed.", []string{"topic"}, nil)
	return c
}

type metricsCollector struct {
	ps                                *PubSub
	topic                             []topicMetric
	node                              []nodeMetric
	pubQueue, pubQueueBytes, subQueue *prometheus.Desc
}

type topicMetric struct {
	desc  *prometheus.Desc
	value func(TopicStats) uint64
}

type nodeMetric struct {
	desc  *prometheus.Desc
	value func(Stats) uint64
}

// topicMetrics are the counters of TopicStats, all of kind counter.
var topicMetrics = []struct {
	name, help string
	value      func(TopicStats) uint64
}{
	{"published_messages_total", "Messages published on the topic.", func(s TopicStats) uint64 { return s.Published }},
	{"published_batches_total", "Network messages (batches) the published messages travelled in.", func(s TopicStats) uint64 { return s.Batches }},
	{"published_bytes_total", "Payload bytes of the messages published on the topic.", func(s TopicStats) uint64 { return s.PublishedBytes }},
	{"direct_batches_total", "Batches sent on direct streams rather than through GossipSub.", func(s TopicStats) uint64 { return s.DirectBatches }},
	{"send_failed_messages_total", "Messages not sent: GossipSub refused them, or no member took a queue-group share.", func(s TopicStats) uint64 { return s.SendFailed }},
	{"publish_waits_total", "Times the publisher paused for a peer's queue to drain (flow control).", func(s TopicStats) uint64 { return s.Waits }},
	{"received_messages_total", "Messages received on the topic.", func(s TopicStats) uint64 { return s.Received }},
	{"received_bytes_total", "Payload bytes of the messages received on the topic.", func(s TopicStats) uint64 { return s.ReceivedBytes }},
	{"delivered_messages_total", "Messages handed to the topic's handlers.", func(s TopicStats) uint64 { return s.Delivered }},
	{"dropped_messages_total", "Messages dropped because a subscription's queue was full (slow handler).", func(s TopicStats) uint64 { return s.Dropped }},
	{"not_forwarded_batches_total", "Received batches not relayed: every peer had them from their author.", func(s TopicStats) uint64 { return s.NotForwarded }},
	{"duplicate_batches_total", "Received copies of the topic's batches already seen.", func(s TopicStats) uint64 { return s.Duplicates }},
	{"skipped_batches_total", "Batches of other nodes never received: later ones were delivered without them.", func(s TopicStats) uint64 { return s.SkippedBatches }},
}

// nodeMetrics are the node-wide counters of Stats, all of kind counter.
var nodeMetrics = []struct {
	name, help string
	value      func(Stats) uint64
}{
	{"outbound_dropped_batches_total", "Batches dropped because a peer's outbound queue was full.", func(s Stats) uint64 { return s.OutboundDropped }},
	{"announcements_dropped_total", "Peer announcements GossipSub dropped for a peer, mostly one still connecting (announced again once it is ready).", func(s Stats) uint64 { return s.AnnouncementsDropped }},
	{"inbound_throttled_batches_total", "Received batches dropped before validation: the validation queue was full.", func(s Stats) uint64 { return s.InboundThrottled }},
	{"inbound_undeliverable_batches_total", "Received batches dropped because this node's reader fell behind.", func(s Stats) uint64 { return s.InboundUndeliverable }},
	{"invalid_batches_total", "Received batches rejected by validation.", func(s Stats) uint64 { return s.Invalid }},
	{"forged_total", "Received batches and calls whose claimed author was not their sender.", func(s Stats) uint64 { return s.Forged }},
	{"subscriptions_refused_total", "Peers' topic subscriptions ignored (too many, or names too long).", func(s Stats) uint64 { return s.SubscriptionsRefused }},
	{"stalled_peers_total", "Peers disconnected because they read nothing of a topic for the stall timeout.", func(s Stats) uint64 { return s.StalledPeers }},
	{"inbound_duplicate_batches_total", "Received copies of batches already seen.", func(s Stats) uint64 { return s.InboundDuplicates }},
	{"connection_resets_total", "Times the connections to a peer were closed because GossipSub lost its stream.", func(s Stats) uint64 { return s.ConnectionResets }},
	{"inbound_no_subscriber_messages_total", "Messages sent to this node alone that found no subscription.", func(s Stats) uint64 { return s.InboundNoSubscriber }},
	{"unroutable_frames_total", "Frames for another node this node could not pass on.", func(s Stats) uint64 { return s.Unroutable }},
	{"catch_ups_total", "Exchanges of peer announcements completed with a peer.", func(s Stats) uint64 { return s.CatchUps }},
	{"caught_up_announcements_total", "Peer announcements learnt in exchanges with a peer.", func(s Stats) uint64 { return s.CaughtUp }},
}

func (c *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.topic {
		ch <- m.desc
	}
	for _, m := range c.node {
		ch <- m.desc
	}
	ch <- c.pubQueue
	ch <- c.pubQueueBytes
	ch <- c.subQueue
}

func (c *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.ps.Stats()
	for name, ts := range st.Topics {
		for _, m := range c.topic {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.value(ts)), name)
		}
	}
	for _, m := range c.node {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.value(st)))
	}
	for name, q := range c.ps.queueDepths() {
		ch <- prometheus.MustNewConstMetric(c.pubQueue, prometheus.GaugeValue, float64(q.publish), name)
		ch <- prometheus.MustNewConstMetric(c.pubQueueBytes, prometheus.GaugeValue, float64(q.publishBytes), name)
		ch <- prometheus.MustNewConstMetric(c.subQueue, prometheus.GaugeValue, float64(q.subscriptions), name)
	}
}

// queueDepth is what waits in one topic's queues.
type queueDepth struct {
	publish, publishBytes, subscriptions int
}

// queueDepths returns the queue depths of the joined topics and of the
// wildcard patterns' subscriptions, by the names Stats uses.
func (p *PubSub) queueDepths() map[string]queueDepth {
	out := make(map[string]queueDepth)
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, t := range p.joined {
		q := queueDepth{publishBytes: int(t.qbytes.Load())}
		if in := t.in.Load(); in != nil {
			q.publish = len(*in)
		}
		if subs := t.subs.Load(); subs != nil {
			for _, s := range *subs {
				q.subscriptions += s.queued()
			}
		}
		if ms := t.members.Load(); ms != nil {
			for _, subs := range *ms {
				for _, s := range subs {
					q.subscriptions += s.queued()
				}
			}
		}
		out[name] = q
	}
	for pattern, subs := range p.patterns {
		var q queueDepth
		for _, s := range subs {
			q.subscriptions += s.queued()
		}
		out[pattern] = q
	}
	return out
}

// queued returns how many messages wait for the handler.
func (s *Subscription) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q) - s.head
}
