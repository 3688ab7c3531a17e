package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// metricNames returns the names of the metrics g has with prefix.
func metricNames(t testing.TB, g prometheus.Gatherer, prefix string) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), prefix) {
			out = append(out, mf.GetName())
		}
	}
	return out
}

// gaugeSum returns the sum of the values of the gauge named name in g.
func gaugeSum(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// startMetricsMesh starts two connected nodes, each with a registry of
// its own.
func startMetricsMesh(t *testing.T) ([2]*Node, [2]*prometheus.Registry) {
	t.Helper()
	var ns [2]*Node
	var regs [2]*prometheus.Registry
	for i := range ns {
		regs[i] = prometheus.NewRegistry()
		cfg := localConfig(testKey)
		cfg.Metrics = regs[i]
		ns[i] = startNode(t, cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ns[0].Connect(ctx, ns[1].Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if err := n.WaitPeers(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	return ns, regs
}

// libp2p.PrometheusRegisterer among the caller's options made New fail
// ("cannot set registerer when metrics are disabled"): the node disabled
// libp2p's metrics before the caller's options ran.
func TestLibp2pRegistererOption(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := localConfig(testKey)
	cfg.Libp2pOptions = []libp2p.Option{libp2p.PrometheusRegisterer(reg)}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New with libp2p.PrometheusRegisterer: %v", err)
	}
	defer closeNode(t, n)
	if len(metricNames(t, reg, "libp2p_")) == 0 {
		t.Fatal("no libp2p_ metrics registered")
	}
}

// Config.Metrics turns on libp2p's metrics with the registerer, beside
// Reflect's.
func TestMetricsConfigLibp2p(t *testing.T) {
	ns, regs := startMetricsMesh(t)
	_ = ns
	lp := metricNames(t, regs[0], "libp2p_")
	if len(lp) == 0 {
		t.Fatal("Config.Metrics: no libp2p_ metrics")
	}
	// A connection was made: the swarm's metrics count it.
	if len(metricNames(t, regs[0], "libp2p_swarm_")) == 0 {
		t.Errorf("no libp2p_swarm_ metrics among %v", lp)
	}
	// The node's resource manager reports while metrics are on (off
	// without Config.Metrics: newResourceManager): its connection counts
	// the one open. (Its collectors are libp2p's package variables, listed
	// at zero whoever reports.)
	if n := gaugeSum(t, regs[0], "libp2p_rcmgr_connections"); n < 1 {
		t.Errorf("libp2p_rcmgr_connections = %v with a connection open", n)
	}
	if len(metricNames(t, regs[0], "reflect_node_")) == 0 || len(metricNames(t, regs[0], "reflect_pubsub_")) == 0 {
		t.Fatalf("no reflect metrics: %v", metricNames(t, regs[0], "reflect_"))
	}
}

func TestMetricsScrapeMesh(t *testing.T) {
	ns, regs := startMetricsMesh(t)
	const count = 20
	var got atomic.Int64
	if _, err := ns[1].Subscribe("metrics", func(map[string]any) { got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, ns[0], "metrics", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var size int // payload bytes: the messages' JSON
	for i := range count {
		msg := map[string]any{"n": i}
		if err := ns[0].Broadcast(ctx, "metrics", msg); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(msg)
		size += len(b)
	}
	testutil.Eventually(t, 10*time.Second, "every message delivered", func() bool { return got.Load() == count })

	for i := range ns {
		testutil.WantMetric(t, regs[i], 1, "reflect_node_peers")
		testutil.WantMetric(t, regs[i], 1, "reflect_node_members")
		testutil.WantMetric(t, regs[i], 1, "reflect_node_peer_joins_total")
		testutil.WantMetric(t, regs[i], 0, "reflect_node_peer_leaves_total")
		testutil.WantMetric(t, regs[i], 0, "reflect_node_reconnects_total")
		testutil.WantMetric(t, regs[i], 0, "reflect_pubsub_invalid_batches_total")
		testutil.WantMetric(t, regs[i], 0, "reflect_pubsub_forged_total")
		testutil.WantMetric(t, regs[i], 0, "reflect_node_handshakes_failed_total")
	}
	testutil.WantMetric(t, regs[0], count, "reflect_pubsub_published_messages_total", "topic", "metrics")
	testutil.WantMetric(t, regs[0], float64(size), "reflect_pubsub_published_bytes_total", "topic", "metrics")
	testutil.WantMetric(t, regs[1], float64(size), "reflect_pubsub_received_bytes_total", "topic", "metrics")
	testutil.WantMetric(t, regs[1], 0, "reflect_pubsub_published_bytes_total", "topic", "metrics")
	testutil.WantMetric(t, regs[1], count, "reflect_pubsub_received_messages_total", "topic", "metrics")
	testutil.WantMetric(t, regs[1], count, "reflect_pubsub_delivered_messages_total", "topic", "metrics")
	testutil.WantMetric(t, regs[1], 0, "reflect_pubsub_dropped_messages_total", "topic", "metrics")
	testutil.WantMetric(t, regs[1], 0, "reflect_pubsub_subscription_queue_messages", "topic", "metrics")
	testutil.WantMetric(t, regs[0], 0, "reflect_pubsub_publish_queue_messages", "topic", "metrics")

	// Reflect's metrics follow Prometheus's naming conventions.
	for _, reg := range regs {
		testutil.LintMetrics(t, reg)
	}

	// A peer that leaves and comes back: a leave, a join, a reconnect.
	if err := ns[0].Host().Network().ClosePeer(ns[1].ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the peer reconnected", func() bool {
		v, _ := testutil.MetricValue(t, regs[0], "reflect_node_reconnects_total")
		return v == 1
	})
	testutil.WantMetric(t, regs[0], 2, "reflect_node_peer_joins_total")
	testutil.WantMetric(t, regs[0], 1, "reflect_node_peer_leaves_total")
	testutil.Eventually(t, 10*time.Second, "the peer joined again", func() bool {
		v, _ := testutil.MetricValue(t, regs[0], "reflect_node_peers")
		return v == 1
	})
	if st := ns[0].Stats(); st.Joins != 2 || st.Leaves != 1 || st.Reconnects != 1 || st.Peers != 1 {
		t.Errorf("Stats: %+v", st)
	}
}

// Close unregisters the node's collectors: a node started again in the
// same process registers anew. Two nodes cannot share one Registerer
// unwrapped; wrapped with a label each, they can.
func TestMetricsRegistererLifecycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := localConfig(testKey)
	cfg.Metrics = reg
	n1 := startNode(t, cfg)
	if _, err := New(cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("second node on the same Registerer: %v, want ErrConfig", err)
	}
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	if names := metricNames(t, reg, "reflect_"); len(names) != 0 {
		t.Fatalf("after Close: %v still registered", names)
	}
	startNode(t, cfg) // registers again
	testutil.WantMetric(t, reg, 0, "reflect_node_peers")

	// libp2p panics when its metrics exist in the registry with other
	// labels: New fails instead.
	c := localConfig(testKey)
	c.Metrics = prometheus.WrapRegistererWith(prometheus.Labels{"node": "x"}, reg)
	if _, err := New(c); !errors.Is(err, ErrConfig) {
		t.Fatalf("New with conflicting libp2p metrics: %v, want ErrConfig", err)
	}

	shared := prometheus.NewRegistry()
	for i := range 2 {
		c := localConfig(testKey)
		c.Metrics = prometheus.WrapRegistererWith(prometheus.Labels{"node": fmt.Sprint(i)}, shared)
		startNode(t, c)
	}
	testutil.WantMetric(t, shared, 0, "reflect_node_peers", "node", "1")
}

func TestPeerStatus(t *testing.T) {
	before := time.Now()
	ns, _ := startMetricsMesh(t)
	st := ns[0].PeerStatus()
	if len(st) != 1 {
		t.Fatalf("PeerStatus: %+v, want one peer", st)
	}
	p := st[0]
	if p.ID != ns[1].ID() || !p.Connected || !p.Joined || !p.Kept || p.ConnectedSince.Before(before) ||
		!p.LostSince.IsZero() || len(p.Addrs) == 0 {
		t.Fatalf("PeerStatus: %+v", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := ns[0].Ping(ctx, ns[1].ID())
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping: %v, %v", rtt, err)
	}
	if got := ns[0].PeerStatus()[0].RTT; got <= 0 {
		t.Fatalf("RTT after a ping: %v", got)
	}
	if err := ns[1].Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the peer is lost", func() bool {
		st := ns[0].PeerStatus()
		return len(st) == 1 && !st[0].Connected && !st[0].Joined && !st[0].LostSince.IsZero() && len(st[0].Addrs) > 0
	})
}
