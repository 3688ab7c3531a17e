package crdtstore_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// A store opened on a node with Config.Metrics registers its metrics there;
// a scrape after a Set shows the key and the delta on both nodes, and the
// node's and pub/sub's metrics beside them.
func TestStoreMetricsScrape(t *testing.T) {
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	a := startStoreNodeWith(t, node.Config{Metrics: regs[0]}, fastOptions())
	b := startStoreNodeWith(t, node.Config{Metrics: regs[1]}, fastOptions())
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tn := range []testNode{a, b} {
		if err := tn.s.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// b's clock for the lag and last sync: an hour ahead, fixed.
	later := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	crdtstore.SetClock(b.s, func() time.Time { return later })
	mustSet(t, a.s, "color", "blue")
	testutil.Eventually(t, 10*time.Second, "the key on b", func() bool { return has(b.s, "color") })
	testutil.Eventually(t, 10*time.Second, "the delta received", func() bool {
		v, _ := testutil.MetricValue(t, regs[1], "reflect_store_deltas_received_total", "store", "default")
		return v == 1
	})
	for i, reg := range regs {
		testutil.WantMetric(t, reg, 1, "reflect_store_keys", "store", "default")
		testutil.WantMetric(t, reg, 0, "reflect_store_deltas_invalid_total", "store", "default")
		testutil.WantMetric(t, reg, 0, "reflect_store_sync_failures_total", "store", "default")
		testutil.WantMetric(t, reg, 0, "reflect_store_pending_deltas", "store", "default")
		testutil.WantMetric(t, reg, 1, "reflect_node_peers")
		if v, _ := testutil.MetricValue(t, reg, "reflect_store_syncs_total", "store", "default"); v+func() float64 {
			v, _ := testutil.MetricValue(t, reg, "reflect_store_syncs_served_total", "store", "default")
			return v
		}() < 1 {
			t.Errorf("node %d: no sync counted", i)
		}
		if v, _ := testutil.MetricValue(t, reg, "reflect_store_sync_received_bytes_total", "store", "default"); v == 0 {
			t.Errorf("node %d: no sync bytes counted", i)
		}
	}
	// The live data's bytes, and the lag of a's write on b (b's clock
	// minus its write time) and none on a (b wrote nothing).
	for _, reg := range regs {
		testutil.WantMetric(t, reg, float64(len("color")+len("blue")), "reflect_store_bytes", "store", "default")
	}
	e, _ := b.s.GetEntry("color")
	aID, bID := a.n.ID().String(), b.n.ID().String()
	testutil.WantMetric(t, regs[1], later.Sub(e.Time).Seconds(), "reflect_store_replica_lag_seconds", "store", "default", "peer", aID)
	testutil.WantMetric(t, regs[0], 0, "reflect_store_replica_lag_seconds", "store", "default", "peer", bID)
	if lag := later.Sub(e.Time); lag < 59*time.Minute || lag > time.Hour {
		t.Errorf("lag %v, want about an hour", lag)
	}
	// The last sync: on b, once an anti-entropy sync has run on its
	// clock; on a, the status's.
	testutil.Eventually(t, 10*time.Second, "a sync at b's clock", func() bool {
		v, _ := testutil.MetricValue(t, regs[1], "reflect_store_last_sync_timestamp_seconds", "store", "default", "peer", aID)
		return v == float64(later.UnixNano())/1e9
	})
	if v, ok := testutil.MetricValue(t, regs[0], "reflect_store_last_sync_timestamp_seconds", "store", "default", "peer", bID); !ok || v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("a's last sync with b: %v, %v", v, ok)
	}
	testutil.WantMetric(t, regs[0], 1, "reflect_store_deltas_sent_total", "store", "default")
	testutil.WantMetric(t, regs[1], 0, "reflect_store_deltas_sent_total", "store", "default")
	// The store's deltas travel on a pub/sub topic of their own.
	var topics []string
	scrape, err := regs[0].Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range scrape {
		if mf.GetName() == "reflect_pubsub_published_messages_total" {
			for _, m := range mf.GetMetric() {
				topics = append(topics, m.GetLabel()[0].GetValue())
				if m.Counter.GetValue() < 1 {
					t.Errorf("topic %s: %v published", m.GetLabel()[0].GetValue(), m.Counter.GetValue())
				}
			}
		}
	}
	if len(topics) == 0 {
		t.Error("no reflect_pubsub_published_messages_total for the store's topic")
	}

	// Reflect's metrics follow Prometheus's naming conventions.
	testutil.LintMetrics(t, regs[0])

	st := a.s.PeerSyncStatus()
	if len(st) != 1 || st[0].Peer != b.n.ID().String() || !st[0].Joined || !st[0].Synced {
		t.Errorf("PeerSyncStatus: %+v", st)
	}
}

// The per-peer series follow PeerSyncStatus: one per peer the store knows,
// gone with the peer.
func TestStoreMetricsPerPeer(t *testing.T) {
	net := crdttest.NewNetwork()
	reg := prometheus.NewRegistry()
	opts := fastOptions()
	opts.Metrics = reg
	a := openMem(t, net, "a", fastOptions())
	b := openMem(t, net, "b", opts)
	clk := &fakeClock{}
	crdtstore.SetClock(b, clk.Now)
	mustSet(t, a, "k", "v")
	testutil.Eventually(t, 5*time.Second, "k on b", func() bool { return has(b, "k") })
	e, _ := b.GetEntry("k")
	at := e.Time.Add(1500 * time.Millisecond)
	clk.Set(at)
	mustSet(t, a, "k", "w")
	testutil.Eventually(t, 5*time.Second, "k=w on b", func() bool { return get(b, "k") == "w" })
	e, _ = b.GetEntry("k")
	testutil.WantMetric(t, reg, at.Sub(e.Time).Seconds(), "reflect_store_replica_lag_seconds", "store", "default", "peer", "a")
	testutil.WantMetric(t, reg, float64(len("k")+len("w")), "reflect_store_bytes", "store", "default")
	testutil.Eventually(t, 5*time.Second, "a sync at b's clock", func() bool {
		v, _ := testutil.MetricValue(t, reg, "reflect_store_last_sync_timestamp_seconds", "store", "default", "peer", "a")
		return v == float64(at.UnixNano())/1e9
	})
	net.Disconnect("a", "b")
	testutil.Eventually(t, 5*time.Second, "a's series gone", func() bool {
		_, lag := testutil.MetricValue(t, reg, "reflect_store_replica_lag_seconds", "peer", "a")
		_, last := testutil.MetricValue(t, reg, "reflect_store_last_sync_timestamp_seconds", "peer", "a")
		return !lag && !last
	})
}

// Options.Metrics puts a store's metrics elsewhere; two stores on one
// registerer are told apart by their name; Close unregisters.
func TestStoreMetricsRegisterer(t *testing.T) {
	tn := startNode(t, node.Config{})
	reg := prometheus.NewRegistry()
	opts := fastOptions()
	opts.Metrics = reg
	s1, err := crdtstore.Open(tn.n, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s1)
	if _, err := crdtstore.Open(tn.n, opts); !errors.Is(err, crdtstore.ErrConfig) {
		t.Fatalf("a second store of the same name on the registerer: %v, want ErrConfig", err)
	}
	opts.Name = "other"
	s2, err := crdtstore.Open(tn.n, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s2, "k", "v")
	testutil.WantMetric(t, reg, 0, "reflect_store_keys", "store", "default")
	testutil.WantMetric(t, reg, 1, "reflect_store_keys", "store", "other")
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := testutil.MetricValue(t, reg, "reflect_store_keys", "store", "other"); ok {
		t.Fatal("a closed store's metrics are still registered")
	}
	if _, ok := testutil.MetricValue(t, reg, "reflect_node_peers"); ok {
		t.Fatal("node metrics registered without node.Config.Metrics")
	}
}

// snakeCase converts a Go name: "SyncBytesIn" → "sync_bytes_in", "RTTMax"
// → "rtt_max": the JSON names the demo's stats have always printed for the
// Stats fields, which their tags now give.
func snakeCase(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 &&
			(!unicode.IsUpper(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"DeltasSent": "deltas_sent", "SyncBytesIn": "sync_bytes_in", "Keys": "keys",
		"RTTMax": "rtt_max", "InboundUndeliverable": "inbound_undeliverable", "P99": "p99",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

// The Stats and status types carry JSON names, the fields' in snake_case.
func TestStatsJSONNames(t *testing.T) {
	for _, v := range []any{node.Stats{}, node.PeerStatus{}, pubsub.Stats{}, pubsub.TopicStats{},
		crdtstore.Stats{}, crdtstore.PeerSyncStatus{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			if got, want := f.Tag.Get("json"), snakeCase(f.Name); got != want {
				t.Errorf("%v.%s: json tag %q, want %q", typ, f.Name, got, want)
			}
		}
	}
}

// Scrapes running while the store and its node close neither deadlock nor
// race (run with -race).
func TestMetricsScrapeDuringClose(t *testing.T) {
	reg := prometheus.NewRegistry()
	tn := startStoreNodeWith(t, node.Config{Metrics: reg}, fastOptions())
	mustSet(t, tn.s, "k", "v")
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for ; n < 10000; n++ {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}
		done <- n
	}()
	time.Sleep(10 * time.Millisecond) // let some scrapes start
	if err := tn.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tn.n.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	t.Logf("%d scrapes", <-done)
	if mfs, _ := reg.Gather(); len(mfs) > 0 {
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "reflect_") {
				t.Errorf("%s still registered after Close", mf.GetName())
			}
		}
	}
}
