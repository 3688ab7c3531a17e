package pubsub

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/netns"
)

func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }

// newHosts starts n hosts on loopback and connects every pair.
func newHosts(t testing.TB, n int) []host.Host {
	t.Helper()
	hs := make([]host.Host, n)
	for i := range hs {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hs[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range hs {
		for j := i + 1; j < n; j++ {
			if err := hs[i].Connect(ctx, peer.AddrInfo{ID: hs[j].ID(), Addrs: hs[j].Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return hs
}

// newMesh starts n connected hosts with a PubSub each.
func newMesh(t testing.TB, n int, cfg Config) []*PubSub {
	t.Helper()
	hs := newHosts(t, n)
	ps := make([]*PubSub, n)
	for i, h := range hs {
		p, err := New(h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		ps[i] = p
	}
	return ps
}

// waitTopicPeers waits until p knows want peers subscribed to topic.
func waitTopicPeers(t testing.TB, p *PubSub, topic string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.ListPeers(topic)) < want {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d peers subscribed to %q", len(p.ListPeers(topic)), want, topic)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collector records messages delivered to a handler.
type collector struct {
	mu   sync.Mutex
	msgs []Message
	ch   chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) handle(m Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// wait waits until at least n messages arrived or d passed.
func (c *collector) wait(n int, d time.Duration) bool { return waitCount(c.count, c.ch, n, d) }

// waitCount waits until count() ≥ n, woken by ch, or until d passed.
func waitCount(count func() int, ch <-chan struct{}, n int, d time.Duration) bool {
	deadline := time.After(d)
	for count() < n {
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
	return true
}

// publishGood publishes "good" from p to the topic "t" that c collects on
// receiver, and checks that it is the only message c got and that receiver
// counted wantInvalid invalid batches (those sent before).
func publishGood(t *testing.T, p *PubSub, c *collector, receiver *PubSub, wantInvalid uint64) {
	t.Helper()
	if err := p.Publish(context.Background(), "t", []byte("good")); err != nil {
		t.Fatal(err)
	}
	if !c.wait(1, 5*time.Second) {
		t.Fatal("good message not delivered")
	}
	time.Sleep(50 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) != 1 || string(c.msgs[0].Data) != "good" {
		t.Fatalf("delivered %d messages: %q", len(c.msgs), c.msgs)
	}
	if inv := receiver.Stats().Invalid; inv != wantInvalid {
		t.Fatalf("Invalid = %d, want %d", inv, wantInvalid)
	}
}

// counter counts the messages delivered to a handler.
type counter struct {
	n  atomic.Int64
	ch chan struct{}
}

func newCounter() *counter { return &counter{ch: make(chan struct{}, 1)} }

func (c *counter) handle(Message) {
	c.n.Add(1)
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *counter) count() int { return int(c.n.Load()) }

// wait waits until at least n messages arrived or d passed.
func (c *counter) wait(n int, d time.Duration) bool { return waitCount(c.count, c.ch, n, d) }
