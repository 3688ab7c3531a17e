package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/pubsub"
)

// BenchmarkBroadcastLatency5 times one 256-byte broadcast from one node of
// a 5-node mesh (private network, TCP, Noise, loopback) until every other
// node's handler has it, one message at a time.
func BenchmarkBroadcastLatency5(b *testing.B) {
	const nodes = 5
	ns := startMesh(b, nodes, testKey)
	got := make(chan time.Time, nodes*16)
	for i := 1; i < nodes; i++ {
		if _, err := ns[i].PubSub().Subscribe("lat", func(pubsub.Message) { got <- time.Now() }); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := ns[0].PubSub().WaitSubscribers(ctx, "lat", nodes-1); err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 256)
	var first, last []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := ns[0].Publish(ctx, "lat", msg); err != nil {
			b.Fatal(err)
		}
		var t0, t1 time.Time
		for k := range nodes - 1 {
			t := <-got
			if k == 0 {
				t0 = t
			}
			t1 = t
		}
		first = append(first, t0.Sub(start))
		last = append(last, t1.Sub(start))
	}
	b.StopTimer()
	slices.Sort(first)
	slices.Sort(last)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(first[len(first)/2]), "first-p50-µs")
	b.ReportMetric(us(last[len(last)/2]), "all-p50-µs")
	b.ReportMetric(us(last[len(last)*99/100]), "all-p99-µs")
}
