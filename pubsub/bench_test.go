package pubsub

import (
	"context"
	"slices"
	"testing"
	"time"
)

// benchShapes are the ways a batch can go, for BenchmarkLatency and
// BenchmarkThroughput: "sign=false" the direct streams of a full mesh,
// "sign=true" GossipSub with Config.Sign (deprecated), "relay" GossipSub
// through a hub between leaves that are not connected (a partial mesh: the
// way where signatures are what authenticates an author). Each returns
// the publisher and the subscribers.
var benchShapes = []struct {
	name string
	mesh func(b *testing.B, subscribers int) (*PubSub, []*PubSub)
}{
	{"sign=false", func(b *testing.B, n int) (*PubSub, []*PubSub) {
		ps := newMesh(b, n+1, Config{})
		return ps[0], ps[1:]
	}},
	{"sign=true", func(b *testing.B, n int) (*PubSub, []*PubSub) {
		ps := newMesh(b, n+1, Config{Sign: true})
		return ps[0], ps[1:]
	}},
	{"relay", func(b *testing.B, n int) (*PubSub, []*PubSub) {
		_, ps := starOf(b, n+1)
		// GossipSub relays a topic within the topic's mesh only: the
		// hub subscribes too.
		for _, t := range []string{"lat", "tp"} {
			if _, err := ps[0].Subscribe(t, func(Message) {}); err != nil {
				b.Fatal(err)
			}
		}
		return ps[1], ps[2:]
	}},
}

// warmUp publishes on topic until every subscriber has had a message (a
// relayed one needs the hub's mesh), then waits for the stragglers.
func warmUp(b *testing.B, pub *PubSub, topic string, got func() bool) {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !got() {
		if time.Now().After(deadline) {
			b.Fatalf("nothing delivered on %q", topic)
		}
		if err := pub.Publish(context.Background(), topic, []byte("warm-up")); err != nil {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
}

// BenchmarkLatency times one message from one node to another, one at a
// time, for each benchShapes.
func BenchmarkLatency(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			pub, subs := shape.mesh(b, 1)
			ps := []*PubSub{pub, subs[0]}
			got := make(chan struct{}, 1)
			if _, err := ps[1].Subscribe("lat", func(Message) { got <- struct{}{} }); err != nil {
				b.Fatal(err)
			}
			waitTopicPeers(b, ps[0], "lat", 1)
			warmUp(b, ps[0], "lat", func() bool {
				select {
				case <-got:
					return true
				default:
					return false
				}
			})
			for len(got) > 0 {
				<-got
			}
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
// to two subscribers, for each benchShapes, and waits until both have all
// of them. The handlers only count: one that keeps every message falls behind (growing a slice of
// millions) and its queue overflows.
func BenchmarkThroughput(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			pub, subs := shape.mesh(b, 2)
			ps := append([]*PubSub{pub}, subs...)
			cols := []*counter{newCounter(), newCounter()}
			for i, c := range cols {
				if _, err := ps[i+1].Subscribe("tp", c.handle); err != nil {
					b.Fatal(err)
				}
			}
			waitTopicPeers(b, ps[0], "tp", 1)
			warmUp(b, ps[0], "tp", func() bool { return cols[0].count() > 0 && cols[1].count() > 0 })
			base := []int{cols[0].count(), cols[1].count()}
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
				if !c.wait(base[i]+b.N, 60*time.Second) {
					b.Fatalf("subscriber %d got %d of %d; stats %+v", i, c.count()-base[i], b.N, ps[i+1].Stats())
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
