package pubsub

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// TestForgedAuthorIsRefused is attack 7 of issue 11: a member publishes,
// through GossipSub, batches that claim another member as their author,
// with that member's next sequence numbers. None may be delivered, each is
// counted, and none may make the real author's batches look like
// duplicates (before signing, b delivered the forgeries as a's and then
// dropped a's own batches).
func TestForgedAuthorIsRefused(t *testing.T) {
	ps := newMesh(t, 3, Config{TopicPrefix: "pfx/"})
	a, b, m := ps[0], ps[1], ps[2]
	c := newCollector()
	if _, err := b.Subscribe("t", c.handle); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Subscribe("t", func(Message) {}); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, a, "t", 2)
	waitTopicPeers(t, m, "t", 1)
	ctx := context.Background()
	if err := a.Publish(ctx, "t", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if !c.wait(1, 5*time.Second) {
		t.Fatal("first message not delivered")
	}

	// m publishes as a, with a's next sequence numbers, on the wire topic,
	// bypassing its own validator (which would refuse its forgery).
	at, err := a.topic("t", false)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := m.topic("t", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.gs.UnregisterTopicValidator("pfx/t"); err != nil {
		t.Fatal(err)
	}
	const forged, real = 50, 20
	next := at.seq.Load() + 1
	var w batchWriter
	for i := range uint64(forged) {
		w.reset()
		w.add([]byte("forged"))
		if err := mt.gt.Publish(ctx, w.encode([]byte(a.host.ID()), next+i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "b to handle the forged batches", func() bool {
		return b.Stats().Invalid >= forged || c.count() > 1
	})

	for i := range real {
		if err := a.Publish(ctx, "t", fmt.Appendf(nil, "real %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(1+real, 10*time.Second) {
		t.Errorf("b got %d of a's %d messages", c.count()-1, real)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, msg := range c.msgs {
		if string(msg.Data) == "forged" {
			t.Fatalf("message %d: a forgery was delivered as %s's", i, msg.From)
		}
	}
	for i, msg := range c.msgs[1:] {
		if want := fmt.Sprintf("real %d", i); string(msg.Data) != want || msg.From != a.host.ID() {
			t.Fatalf("message %d is %q from %s, want %q from a", i, msg.Data, msg.From, want)
		}
	}
	if st := b.Stats(); st.Forged != forged || st.Invalid != forged {
		t.Errorf("b counted Forged %d, Invalid %d; want %d each", st.Forged, st.Invalid, forged)
	}
}

// A relay cannot forge the origin of a forwarded frame, alter its content
// or redirect it (issue 11, attack 7 on forwarded calls): the target
// refuses and counts each, and the origin's own frames still arrive.
func TestForgedForwardIsRefused(t *testing.T) {
	_, ps := star(t, 2)
	hub, a, c := ps[0], ps[1], ps[2]
	got := newCollector()
	if _, err := c.Subscribe("direct", got.handle); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Until a has c's announcement, c is not reachable yet.
	testutil.Eventually(t, 10*time.Second, "a route from a to c", func() bool {
		return a.Send(ctx, c.host.ID(), "direct", []byte("real 0")) == nil
	})
	if !got.wait(1, 10*time.Second) {
		t.Fatal("a's send did not arrive through the hub")
	}

	ct, err := c.topic("direct", false)
	if err != nil {
		t.Fatal(err)
	}
	inner := func(data string) []byte {
		var w batchWriter
		w.add([]byte(data))
		return encodeSendFrame(ct.wire, "", []byte(a.host.ID()), &w)[1:] // small: a 1-byte length prefix
	}
	origin, target := a.host.ID(), c.host.ID()
	signed := func(to peer.ID, in []byte) []byte {
		sig, err := a.key.Sign(forwardSigned(origin, to, in))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	forgeries := [][]byte{
		wrapForward(origin, target, 3, make([]byte, 64), inner("forged: no signature of a's")),
		wrapForward(origin, target, 3, signed(target, inner("signed")), inner("forged: altered on the way")),
		wrapForward(origin, target, 3, signed(hub.host.ID(), inner("forged: redirected")), inner("forged: redirected")),
	}
	s := hub.dir.openStream(target)
	if s == nil {
		t.Fatal("the hub has no stream to c")
	}
	for _, f := range forgeries {
		if !s.enqueue(f, "") {
			t.Fatal("enqueue failed")
		}
	}
	testutil.Eventually(t, 10*time.Second, "c to refuse the forgeries", func() bool {
		return c.Stats().Forged >= uint64(len(forgeries)) || got.count() > 1
	})
	if err := a.Send(ctx, c.host.ID(), "direct", []byte("real 1")); err != nil {
		t.Fatal(err)
	}
	if !got.wait(2, 10*time.Second) {
		t.Fatalf("c got %d messages, want a's 2", got.count())
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	for i, m := range got.msgs {
		if want := fmt.Sprint("real ", i); string(m.Data) != want || m.From != origin {
			t.Fatalf("message %d: %q from %s, want %q from a", i, m.Data, m.From, want)
		}
	}
	if st := c.Stats(); st.Forged != uint64(len(forgeries)) {
		t.Errorf("c counted Forged %d, want %d", st.Forged, len(forgeries))
	}
}
