package crdtstore

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/internal/statmetrics"
)

// registerMetrics registers the store's collector with Options.Metrics, if
// set; Close unregisters it.
func (s *Store) registerMetrics() error {
	if s.opts.Metrics == nil {
		return nil
	}
	c := newStoreCollector(s)
	if err := s.opts.Metrics.Register(c); err != nil {
		return fmt.Errorf("%w: Metrics (a store named %q is registered there already?): %w", ErrConfig, s.opts.Name, err)
	}
	s.collector = c
	return nil
}

func (s *Store) unregisterMetrics() {
	if s.collector != nil {
		s.opts.Metrics.Unregister(s.collector)
		s.collector = nil
	}
}

// newStoreCollector reads the store's Stats when the registry is scraped:
// reflect_store_* metrics with the label store (Options.Name).
func newStoreCollector(s *Store) prometheus.Collector {
	labels := prometheus.Labels{"store": s.opts.Name}
	gauge := func(name, help string, v func(Stats) int) statmetrics.Metric[Stats] {
		return statmetrics.Gauge("reflect_store_"+name, help, labels, v)
	}
	counter := func(name, help string, v func(Stats) uint64) statmetrics.Metric[Stats] {
		return statmetrics.Counter("reflect_store_"+name, help, labels, v)
	}
	return statmetrics.NewCollector(s.Stats,
		gauge("keys", "Keys with a value.", func(st Stats) int { return st.Keys }),
		gauge("pending_deltas", "Received deltas held until the dots they need arrive.", func(st Stats) int { return st.PendingDeltas }),
		gauge("pending_bytes", "Estimated memory of the pending deltas.", func(st Stats) int { return st.PendingBytes }),
		counter("deltas_sent_total", "Deltas published.", func(st Stats) uint64 { return st.DeltasSent }),
		counter("deltas_received_total", "Deltas received.", func(st Stats) uint64 { return st.DeltasReceived }),
		counter("deltas_invalid_total", "Received deltas ignored: undecodable or refused.", func(st Stats) uint64 { return st.DeltasInvalid }),
		counter("deltas_dropped_total", "Local deltas not published: too many were waiting (sync repairs).", func(st Stats) uint64 { return st.DeltasDropped }),
		counter("deltas_forged_total", "Received deltas and sync replies refused as not their sender's to send.", func(st Stats) uint64 { return st.DeltasForged }),
		counter("deltas_over_bounds_total", "Received deltas and sync replies refused for the replica or interval bounds.", func(st Stats) uint64 { return st.DeltasOverBounds }),
		counter("pending_dropped_total", "Pending deltas dropped to stay within the bounds.", func(st Stats) uint64 { return st.PendingDropped }),
		counter("gaps_total", "Received deltas that revealed missed ones (each triggers a sync).", func(st Stats) uint64 { return st.Gaps }),
		counter("syncs_total", "Sync exchanges this node started and completed.", func(st Stats) uint64 { return st.Syncs }),
		counter("syncs_served_total", "Sync exchanges this node answered.", func(st Stats) uint64 { return st.SyncServed }),
		counter("sync_failures_total", "Sync exchanges that failed.", func(st Stats) uint64 { return st.SyncFailures }),
		counter("sync_busy_total", "Syncs put off while catching up with another peer.", func(st Stats) uint64 { return st.SyncBusy }),
		counter("sync_received_bytes_total", "Bytes read by sync exchanges.", func(st Stats) uint64 { return st.SyncBytesIn }),
		counter("sync_sent_bytes_total", "Bytes written by sync exchanges.", func(st Stats) uint64 { return st.SyncBytesOut }),
		counter("sync_streams_reset_total", "Served sync streams reset because the same peer opened another.", func(st Stats) uint64 { return st.SyncStreamsReset }),
		counter("sync_rate_limited_total", "Sync requests answered busy: too many per second from the peer.", func(st Stats) uint64 { return st.SyncRateLimited }),
		counter("sync_budget_limited_total", "Sync requests answered busy: the peer took too many reply bytes.", func(st Stats) uint64 { return st.SyncBudgetLimited }),
		counter("sync_frames_too_large_total", "Sync frames refused for their declared length.", func(st Stats) uint64 { return st.SyncFramesTooLarge }),
		counter("sync_read_waits_total", "Large sync frames that waited for a large-read slot.", func(st Stats) uint64 { return st.SyncReadWaits }),
	)
}
