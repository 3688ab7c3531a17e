package node

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
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

// BenchmarkFanout5 publishes b.N messages unpaced from one node of a 5-node
// mesh to the 4 others and waits until every subscriber has all of them.
// cpu-µs/msg is the process's CPU time (user + system, all nodes) per
// published message: steadier than the rate on a shared machine.
func BenchmarkFanout5(b *testing.B) {
	for _, size := range []int{256, 64 << 10} {
		b.Run(fmt.Sprint("size=", size), func(b *testing.B) {
			const nodes = 5
			ns := startMesh(b, nodes, testKey)
			var got atomic.Int64
			done := make(chan struct{}, 1)
			want := int64(0)
			for i := 1; i < nodes; i++ {
				if _, err := ns[i].PubSub().Subscribe("fan", func(pubsub.Message) {
					if got.Add(1) == want {
						done <- struct{}{}
					}
				}); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			if err := ns[0].PubSub().WaitSubscribers(ctx, "fan", nodes-1); err != nil {
				b.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // announcements, direct streams
			want = int64(b.N * (nodes - 1))
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				if err := ns[0].Publish(ctx, "fan", msg); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				b.Fatalf("delivered %d of %d", got.Load(), want)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/msg")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			st := ns[0].PubSub().Stats().Topics["fan"]
			b.ReportMetric(float64(st.Published)/float64(st.Batches), "msgs/batch")
		})
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
