package pubsub

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// TopicStats counts payload bytes: published (Publish, its queue-group
// shares, Send) on the publisher; received on each receiver, on every way a
// message comes (a plain subscription, a queue group's share, Send).
func TestTopicBytes(t *testing.T) {
	ps := newMesh(t, 3, Config{})
	plain, member := newCollector(), newCollector()
	if _, err := ps[1].Subscribe("t", plain.handle); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[2].Subscribe("t", member.handle, WithQueueGroup("w")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ps[0].WaitSubscribers(ctx, "t", 1, WithQueueGroup("w")); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)

	// Messages of 0 to 299 bytes: batches of several sizes.
	const count = 300
	var published uint64
	for i := range count {
		if err := ps[0].Publish(ctx, "t", bytes.Repeat([]byte{'x'}, i)); err != nil {
			t.Fatal(err)
		}
		published += uint64(i)
	}
	const sent = 1000
	if err := ps[0].Send(ctx, ps[1].host.ID(), "t", make([]byte, sent)); err != nil {
		t.Fatal(err)
	}
	if !plain.wait(count+1, 20*time.Second) || !member.wait(count, 20*time.Second) {
		t.Fatalf("delivered %d and %d of %d", plain.count(), member.count(), count)
	}
	testutil.Eventually(t, 10*time.Second, "the publisher counts every message", func() bool {
		return ps[0].Stats().Topics["t"].Published == count+1
	})

	if st := ps[0].Stats().Topics["t"]; st.PublishedBytes != published+sent || st.ReceivedBytes != 0 {
		t.Errorf("publisher: PublishedBytes %d, ReceivedBytes %d; want %d, 0", st.PublishedBytes, st.ReceivedBytes, published+sent)
	}
	if st := ps[1].Stats().Topics["t"]; st.ReceivedBytes != published+sent || st.Received != count+1 || st.PublishedBytes != 0 {
		t.Errorf("plain subscriber: ReceivedBytes %d of %d messages, PublishedBytes %d; want %d of %d, 0",
			st.ReceivedBytes, st.Received, st.PublishedBytes, published+sent, count+1)
	}
	if st := ps[2].Stats().Topics["t"]; st.ReceivedBytes != published || st.Received != count {
		t.Errorf("queue-group member: ReceivedBytes %d of %d messages; want %d of %d", st.ReceivedBytes, st.Received, published, count)
	}
}
