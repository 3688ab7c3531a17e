package pubsub

import (
	"context"
	"fmt"
	"testing"
	"time"

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
