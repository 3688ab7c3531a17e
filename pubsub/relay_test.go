package pubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The mesh is partial when some node it knows of does not announce sending
// to every other, whether or not this node itself is connected to all.
func TestRelayablePartialMesh(t *testing.T) {
	topo := newTopology("me")
	for _, q := range []peer.ID{"a", "b"} {
		topo.setConnected(q, true)
		topo.setReady(q, true)
	}
	topo.learn("a", []peer.ID{"me", "b"}, []regKey{{regSubscriber, "news", ""}, {regQueue, "jobs", "w"}})
	topo.learn("b", []peer.ID{"me", "a"}, []regKey{{regSubscriber, "prices", ""}})
	if topics, partial := topo.relayable(); partial || topics != nil {
		t.Fatalf("full mesh: %v %v", topics, partial)
	}
	// The a–b link breaks: this node reaches both, but they need a relay.
	topo.learn("a", []peer.ID{"me"}, []regKey{{regSubscriber, "news", ""}})
	topics, partial := topo.relayable()
	if !partial || len(topics) != 2 {
		t.Fatalf("a–b broken: %v %v, want news and prices", topics, partial)
	}
	if _, ok := topics["news"]; !ok {
		t.Fatalf("topics %v", topics)
	}
	topo.learn("a", []peer.ID{"me", "b"}, []regKey{{regSubscriber, "news", ""}})
	// c is beyond a: partial, and c's subscription counts; x is unreachable.
	topo.learn("a", []peer.ID{"me", "b", "c"}, []regKey{{regSubscriber, "news", ""}})
	topo.learn("c", []peer.ID{"a"}, []regKey{{regSubscriber, "far", ""}})
	topo.learn("x", nil, []regKey{{regSubscriber, "nowhere", ""}})
	topics, partial = topo.relayable()
	if _, far := topics["far"]; !partial || !far || len(topics) != 3 {
		t.Fatalf("c beyond a: %v %v", topics, partial)
	}
	if got := topo.farSubscribers("far"); !slices.Equal(got, []peer.ID{"c"}) {
		t.Fatalf("far subscribers %v", got)
	}
	if got := topo.farSubscribers("news"); len(got) != 0 {
		t.Fatalf("a is a neighbour, not far: %v", got)
	}
	// c counts for WaitSubscribers once its announcement has stood for
	// relayGraft; the same announcement again does not restart that.
	now := time.Now()
	if got, next := topo.settledFarSubscribers("far", now); len(got) != 0 || next <= 0 || next > relayGraft {
		t.Fatalf("settled at once: %v, next in %v", got, next)
	}
	topo.learn("c", []peer.ID{"a"}, []regKey{{regSubscriber, "far", ""}})
	if got, next := topo.settledFarSubscribers("far", now.Add(relayGraft)); !slices.Equal(got, []peer.ID{"c"}) || next != 0 {
		t.Fatalf("after relayGraft: %v, next in %v", got, next)
	}
	topo.learn("c", []peer.ID{"a"}, []regKey{{regSubscriber, "far", ""}, {regSubscriber, "other", ""}})
	if got, _ := topo.settledFarSubscribers("far", time.Now().Add(relayGraft/2)); len(got) != 0 {
		t.Fatalf("a changed announcement restarts the wait: %v", got)
	}
}

// waitRelaying waits until p relays exactly the topics want.
func waitRelaying(t *testing.T, p *PubSub, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(p.relaying(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("relaying %v, want %v", p.relaying(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// On a star whose hub subscribes to nothing, a leaf's broadcasts reach the
// one other leaf that subscribes: every node of the partial mesh relays
// the topic, and none of the relays counts as a subscriber.
func TestRelayForScatteredSubscribers(t *testing.T) {
	_, ps := star(t, 3)
	hub, a, c, d := ps[0], ps[1], ps[2], ps[3]
	col := newCollector()
	sub, err := c.Subscribe("news", col.handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.WaitSubscribers(ctx, "news", 1); err != nil {
		t.Fatal(err)
	}
	waitRelaying(t, hub, "news")
	waitRelaying(t, d, "news")
	waitRelaying(t, a, "news") // a publishes only: it relays as well
	if got := c.relaying(); len(got) != 0 {
		t.Fatalf("the subscriber relays %v", got)
	}
	for _, p := range []*PubSub{a, hub, d} {
		if got := p.ListPeers("news"); !slices.Equal(got, []peer.ID{c.host.ID()}) {
			t.Errorf("%s lists %v, want c only", p.host.ID(), got)
		}
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err = a.WaitSubscribers(short, "news", 2)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a counted a relay as a subscriber: %v", err)
	}
	// The hub's subscription is a GossipSub one: Send to it is refused.
	if err := a.Send(ctx, hub.host.ID(), "news", []byte("x")); !errors.Is(err, ErrNoSubscriber) {
		t.Fatalf("Send to a relay: %v", err)
	}

	const n = 200
	for i := range n {
		if err := a.Publish(ctx, "news", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if !col.wait(n, 10*time.Second) {
		t.Fatalf("c got %d of %d broadcasts through the relays", col.count(), n)
	}
	col.mu.Lock()
	for i, m := range col.msgs {
		if string(m.Data) != fmt.Sprint(i) || m.From != a.host.ID() {
			t.Errorf("message %d: %q from %s", i, m.Data, m.From)
			break
		}
	}
	col.mu.Unlock()

	// The hub subscribes: it stops relaying and counts as a subscriber.
	hubCol := newCollector()
	hubSub, err := hub.Subscribe("news", hubCol.handle)
	if err != nil {
		t.Fatal(err)
	}
	waitRelaying(t, hub)
	if err := a.WaitSubscribers(ctx, "news", 2); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "news", []byte("both")); err != nil {
		t.Fatal(err)
	}
	if !col.wait(n+1, 10*time.Second) || !hubCol.wait(1, 10*time.Second) {
		t.Fatalf("after the hub subscribed: c %d of %d, hub %d of 1", col.count(), n+1, hubCol.count())
	}
	// It unsubscribes: it relays again, registered first.
	hubSub.Unsubscribe()
	waitRelaying(t, hub, "news")
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(a.ListPeers("news"), []peer.ID{c.host.ID()}) {
		if time.Now().After(deadline) {
			t.Fatalf("after the hub unsubscribed, a lists %v", a.ListPeers("news"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// c unsubscribes: nobody needs the topic; the relays stop after
	// relayLinger (its passing is simulated).
	// Each relay stops once c's unsubscription has reached it: d hears
	// of it through the hub, maybe after a has.
	sub.Unsubscribe()
	deadline = time.Now().Add(10 * time.Second)
	for _, p := range []*PubSub{hub, a, d} {
		for {
			p.syncRelays(time.Now()) // marks the topic idle once unneeded
			p.syncRelays(time.Now().Add(relayLinger))
			if len(p.relaying()) == 0 && len(p.ListPeers("news")) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after c unsubscribed, %s still relays %v, lists %v", p.host.ID(), p.relaying(), p.ListPeers("news"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(a.topics.of(a.cfg.TopicPrefix+"news", nil)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a still sees carriers of the topic: %v", a.topics.of(a.cfg.TopicPrefix+"news", nil))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A full mesh relays nothing.
func TestFullMeshRelaysNothing(t *testing.T) {
	ps := newMesh(t, 3, Config{})
	col := newCollector()
	if _, err := ps[1].Subscribe("news", col.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "news", 1)
	time.Sleep(relayAfter + 500*time.Millisecond)
	for _, p := range ps {
		if got := p.relaying(); len(got) != 0 {
			t.Fatalf("%s relays %v in a full mesh", p.host.ID(), got)
		}
	}
}
