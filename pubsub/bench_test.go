package pubsub

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkLatency times one message from one node to another, one at a
// time, signed and unsigned (the signing decision in doc.go).
func BenchmarkLatency(b *testing.B) {
	for _, sign := range []bool{false, true} {
		b.Run(fmt.Sprint("sign=", sign), func(b *testing.B) {
			ps := newMesh(b, 2, Config{Sign: sign})
			got := make(chan struct{}, 1)
			if _, err := ps[1].Subscribe("lat", func(Message) { got <- struct{}{} }); err != nil {
				b.Fatal(err)
			}
			waitTopicPeers(b, ps[0], "lat", 1)
			msg := make([]byte, 256)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := ps[0].Publish(ctx, "lat", msg); err != nil {
					b.Fatal(err)
				}
				<-got
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkThroughput publishes b.N 256-byte messages unpaced from one node
// to two subscribers and waits until both have all of them. The handlers
// only count: one that keeps every message falls behind (growing a slice of
// millions) and its queue overflows.
func BenchmarkThroughput(b *testing.B) {
	for _, sign := range []bool{false, true} {
		b.Run(fmt.Sprint("sign=", sign), func(b *testing.B) {
			ps := newMesh(b, 3, Config{Sign: sign})
			cols := []*counter{newCounter(), newCounter()}
			for i, c := range cols {
				if _, err := ps[i+1].Subscribe("tp", c.handle); err != nil {
					b.Fatal(err)
				}
			}
			waitTopicPeers(b, ps[0], "tp", 2)
			msg := make([]byte, 256)
			ctx := context.Background()
			b.SetBytes(256)
			b.ResetTimer()
			for range b.N {
				if err := ps[0].Publish(ctx, "tp", msg); err != nil {
					b.Fatal(err)
				}
			}
			for i, c := range cols {
				if !c.wait(b.N, 60*time.Second) {
					b.Fatalf("subscriber %d got %d of %d; stats %+v", i, c.count(), b.N, ps[i+1].Stats())
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
