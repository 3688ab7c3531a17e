package node

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/internal/statmetrics"
	"github.com/reflectmesh/reflect/pubsub"
)

// Metrics returns Config.Metrics: the registerer the node's metrics are in
// (nil without metrics). Stores opened on the node register theirs there
// too, unless told otherwise.
//
// Reflect's metrics are read from the Stats snapshots (node, pub/sub,
// store) when the registry is scraped; counters end in _total. The node's:
//
//	reflect_node_peers, reflect_node_members, reflect_node_candidates,
//	reflect_node_handshakes_pending (gauges);
//	reflect_node_peer_joins_total, reflect_node_peer_leaves_total,
//	reflect_node_reconnects_total, reflect_node_candidates_added_total,
//	reflect_node_candidates_dropped_total, reflect_node_candidates_evicted_total,
//	reflect_node_candidates_forgotten_total, reflect_node_candidate_dials_total,
//	reflect_node_candidate_dials_failed_total, reflect_node_handshakes_refused_total,
//	reflect_node_handshakes_failed_total, reflect_node_peer_exchanges_total,
//	reflect_node_peers_exchanged_total.
//
// Pub/sub's (pubsub.NewCollector), per topic (label "topic"):
//
//	reflect_pubsub_{published_messages, published_bytes, published_batches,
//	direct_batches, send_failed_messages, publish_waits, received_messages,
//	received_bytes, delivered_messages, dropped_messages,
//	not_forwarded_batches, skipped_batches, duplicate_batches}_total; reflect_pubsub_publish_queue_messages,
//	reflect_pubsub_publish_queue_bytes,
//	reflect_pubsub_subscription_queue_messages (gauges);
//
// and for the node: reflect_pubsub_{outbound_dropped_batches,
// announcements_dropped, inbound_throttled_batches,
// inbound_undeliverable_batches, invalid_batches, forged,
// subscriptions_refused, stalled_peers, inbound_duplicate_batches,
// connection_resets, inbound_no_subscriber_messages, unroutable_frames}_total.
// A store's are reflect_store_* (see crdtstore.Options.Metrics). libp2p's
// own are libp2p_*.
func (n *Node) Metrics() prometheus.Registerer { return n.cfg.Metrics }

// registerMetrics registers the node's collector and its pub/sub's with
// Config.Metrics, if set; unregisterMetrics, at Close, removes them, so that
// a node started again in the same process can register anew.
func (n *Node) registerMetrics() error {
	reg := n.cfg.Metrics
	if reg == nil {
		return nil
	}
	cs := []prometheus.Collector{newNodeCollector(n), pubsub.NewCollector(n.ps)}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("%w: Metrics (one Registerer per node: wrap it for several): %w", ErrConfig, err)
		}
	}
	n.collectors = cs
	return nil
}

func (n *Node) unregisterMetrics() {
	for _, c := range n.collectors {
		n.cfg.Metrics.Unregister(c)
	}
	n.collectors = nil
}

// newNodeCollector reads the node's Stats when the registry is scraped.
func newNodeCollector(n *Node) prometheus.Collector {
	gauge := func(name, help string, v func(Stats) int) statmetrics.Metric[Stats] {
		return statmetrics.Gauge("reflect_node_"+name, help, nil, v)
	}
	counter := func(name, help string, v func(Stats) uint64) statmetrics.Metric[Stats] {
		return statmetrics.Counter("reflect_node_"+name, help, nil, v)
	}
	return statmetrics.NewCollector(n.Stats,
		gauge("peers", "Members of the mesh joined now (direct peers and, on a partial mesh, the peers beyond them).", func(s Stats) int { return s.Peers }),
		gauge("neighbours", "Direct peers joined now.", func(s Stats) int { return s.Neighbours }),
		gauge("members", "Peers remembered: connected, or lost and being redialled.", func(s Stats) int { return s.Members }),
		gauge("candidates", "Peers found by mDNS or peer exchange waiting for a first dial.", func(s Stats) int { return s.Candidates }),
		gauge("handshakes_pending", "Inbound connections that have not passed the handshakes yet.", func(s Stats) int { return s.HandshakesPending }),
		counter("peer_joins_total", "Peers that joined (PeerJoined events).", func(s Stats) uint64 { return s.Joins }),
		counter("peer_leaves_total", "Peers that left (PeerLeft events).", func(s Stats) uint64 { return s.Leaves }),
		counter("trimmed_total", "Connections closed to keep MaxPeers direct peers.", func(s Stats) uint64 { return s.Trimmed }),
		counter("reconnects_total", "Direct peers that joined again after an earlier connection.", func(s Stats) uint64 { return s.Reconnects }),
		counter("candidates_added_total", "Candidates (mDNS, peer exchange) taken into the table.", func(s Stats) uint64 { return s.CandidatesAdded }),
		counter("candidates_dropped_total", "Discovered peers ignored: the candidate table was full.", func(s Stats) uint64 { return s.CandidatesDropped }),
		counter("candidates_evicted_total", "Failed candidates replaced by newly advertised ones.", func(s Stats) uint64 { return s.CandidatesEvicted }),
		counter("candidates_forgotten_total", "Candidates forgotten without ever connecting.", func(s Stats) uint64 { return s.CandidatesForgotten }),
		counter("candidate_dials_total", "Dials of candidates.", func(s Stats) uint64 { return s.CandidateDials }),
		counter("candidate_dials_failed_total", "Failed dials of candidates.", func(s Stats) uint64 { return s.CandidateDialsFailed }),
		counter("peer_exchanges_total", "Answers of other members to this node's peer exchange questions.", func(s Stats) uint64 { return s.PeerExchanges }),
		counter("peers_exchanged_total", "Peers learnt by peer exchange that were new to this node.", func(s Stats) uint64 { return s.PeersExchanged }),
		counter("handshakes_refused_total", "Inbound connections closed at once: their address had too many handshakes pending.", func(s Stats) uint64 { return s.HandshakesRefused }),
		counter("handshakes_failed_total", "Connections, inbound or outbound, that failed the private network or Noise handshakes (different secret?).", func(s Stats) uint64 { return s.HandshakesFailed }),
	)
}
