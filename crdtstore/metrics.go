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

// storeCollector reads the store's Stats and PeerSyncStatus when the
// registry is scraped: reflect_store_* metrics with the label store
// (Options.Name), and per peer (label peer, PeerSyncStatus.Peer) the
// replica lag, the time of the last sync and the bytes of the sync
// running now. A peer the store forgot (it
// left) has no series any more.
type storeCollector struct {
	s        *Store
	stats    prometheus.Collector
	lag      *prometheus.Desc
	lastSync *prometheus.Desc
	syncing  *prometheus.Desc
}

func newStoreCollector(s *Store) prometheus.Collector {
	labels := prometheus.Labels{"store": s.opts.Name}
	return &storeCollector{
		s:     s,
		stats: newStatsCollector(s),
		lag: prometheus.NewDesc("reflect_store_replica_lag_seconds",
			"How far behind this store is with the peer's writes (PeerSyncStatus.Lag).", []string{"peer"}, labels),
		lastSync: prometheus.NewDesc("reflect_store_last_sync_timestamp_seconds",
			"When the last sync exchange with the peer ended, in either role, successful or not.", []string{"peer"}, labels),
		syncing: prometheus.NewDesc("reflect_store_sync_in_progress_bytes",
			"Bytes moved so far, both directions, by the sync exchange with the peer running now (0 if none).", []string{"peer"}, labels),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	c.stats.Describe(ch)
	ch <- c.lag
	ch <- c.lastSync
	ch <- c.syncing
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.stats.Collect(ch)
	for _, ps := range c.s.PeerSyncStatus() {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, ps.Lag.Seconds(), ps.Peer)
		ch <- prometheus.MustNewConstMetric(c.syncing, prometheus.GaugeValue, float64(ps.SyncBytes), ps.Peer)
		if !ps.LastSync.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastSync, prometheus.GaugeValue, float64(ps.LastSync.UnixNano())/1e9, ps.Peer)
		}
	}
}

// newStatsCollector reads the store's Stats when the registry is scraped.
func newStatsCollector(s *Store) prometheus.Collector {
	labels := prometheus.Labels{"store": s.opts.Name}
	gauge := func(name, help string, v func(Stats) int) statmetrics.Metric[Stats] {
		return statmetrics.Gauge("reflect_store_"+name, help, labels, v)
	}
	counter := func(name, help string, v func(Stats) uint64) statmetrics.Metric[Stats] {
		return statmetrics.Counter("reflect_store_"+name, help, labels, v)
	}
	return statmetrics.NewCollector(s.Stats,
		gauge("keys", "Keys with a value.", func(st Stats) int { return st.Keys }),
		gauge("bytes", "Bytes of the live data: keys with a value and their values, siblings included.", func(st Stats) int { return st.Bytes }),
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
