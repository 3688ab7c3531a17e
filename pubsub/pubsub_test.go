package pubsub

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
)

func TestEveryMessageReachesEverySubscriber(t *testing.T) {
	const nodes, count = 5, 1000
	ps := newMesh(t, nodes, Config{})
	cols := make([]*collector, nodes)
	for i := 1; i < nodes; i++ {
		cols[i] = newCollector()
		if _, err := ps[i].Subscribe("load", cols[i].handle); err != nil {
			t.Fatal(err)
		}
	}
	waitTopicPeers(t, ps[0], "load", nodes-1)
	ctx := context.Background()
	for i := range count {
		msg := binary.BigEndian.AppendUint32(make([]byte, 0, 256), uint32(i))
		msg = msg[:256]
		if err := ps[0].Publish(ctx, "load", msg); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < nodes; i++ {
		if !cols[i].wait(count, 20*time.Second) {
			t.Fatalf("node %d got %d of %d messages; stats %+v", i, cols[i].count(), count, ps[i].Stats())
		}
		for j, m := range cols[i].msgs[:count] {
			if got := binary.BigEndian.Uint32(m.Data); got != uint32(j) || m.From != ps[0].host.ID() || m.Topic != "load" {
				t.Fatalf("node %d message %d: seq %d from %s topic %q", i, j, got, m.From, m.Topic)
			}
		}
	}
	st := ps[0].Stats().Topics["load"]
	if st.Published != count || st.Batches == 0 || st.Batches > count {
		t.Fatalf("publisher stats %+v", st)
	}
	t.Logf("%d messages in %d batches", st.Published, st.Batches)
}

func TestEcho(t *testing.T) {
	for _, echo := range []bool{false, true} {
		t.Run(fmt.Sprint("echo=", echo), func(t *testing.T) {
			ps := newMesh(t, 2, Config{Echo: echo})
			self, other := newCollector(), newCollector()
			if _, err := ps[0].Subscribe("t", self.handle); err != nil {
				t.Fatal(err)
			}
			if _, err := ps[1].Subscribe("t", other.handle); err != nil {
				t.Fatal(err)
			}
			waitTopicPeers(t, ps[0], "t", 1)
			if err := ps[0].Publish(context.Background(), "t", []byte("one")); err != nil {
				t.Fatal(err)
			}
			if !other.wait(1, 5*time.Second) {
				t.Fatal("the other node got nothing")
			}
			// A second message from the other side orders the check: once
			// it arrived, our own earlier message would have been delivered.
			if err := ps[1].Publish(context.Background(), "t", []byte("two")); err != nil {
				t.Fatal(err)
			}
			want := 1
			if echo {
				want = 2
			}
			if !self.wait(want, 5*time.Second) {
				t.Fatalf("self got %d messages, want %d", self.count(), want)
			}
			time.Sleep(50 * time.Millisecond)
			if self.count() != want {
				t.Fatalf("self got %d messages, want %d", self.count(), want)
			}
		})
	}
}

func TestSlowHandlerDoesNotStallOthers(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	block := make(chan struct{})
	slowSub, err := ps[1].Subscribe("t", func(Message) { <-block }, WithQueueLength(10))
	if err != nil {
		t.Fatal(err)
	}
	fast := newCollector()
	if _, err := ps[1].Subscribe("t", fast.handle); err != nil {
		t.Fatal(err)
	}
	otherTopic := newCollector()
	if _, err := ps[1].Subscribe("u", otherTopic.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)
	waitTopicPeers(t, ps[0], "u", 1)
	for i := range 200 {
		if err := ps[0].Publish(context.Background(), "t", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps[0].Publish(context.Background(), "u", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if !fast.wait(200, 10*time.Second) || !otherTopic.wait(1, 10*time.Second) {
		t.Fatalf("fast handler got %d/200, other topic %d/1", fast.count(), otherTopic.count())
	}
	close(block)
	// The slow handler held one message and queued 10; the rest dropped.
	deadline := time.Now().Add(5 * time.Second)
	for slowSub.Delivered()+slowSub.Dropped() < 200 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := slowSub.Dropped(); d < 150 || slowSub.Delivered()+d != 200 {
		t.Fatalf("slow subscription: delivered %d dropped %d", slowSub.Delivered(), d)
	}
	if got := ps[1].Stats().Topics["t"].Dropped; got != slowSub.Dropped() {
		t.Fatalf("topic stats dropped %d, subscription %d", got, slowSub.Dropped())
	}
}

func TestOversizeIsAnError(t *testing.T) {
	ps := newMesh(t, 1, Config{MaxMessageSize: 1000})
	err := ps[0].Publish(context.Background(), "t", make([]byte, 1001))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if err := ps[0].Publish(context.Background(), "t", make([]byte, 1000)); err != nil {
		t.Fatalf("message at the limit: %v", err)
	}
	err = ps[0].Broadcast(context.Background(), "t", map[string]any{"big": string(make([]byte, 2000))})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Broadcast: got %v, want ErrTooLarge", err)
	}
}

func TestTopicNames(t *testing.T) {
	ps := newMesh(t, 1, Config{})
	noop := func(Message) {}
	for _, name := range []string{"", string([]byte{0xff}), string(make([]byte, maxTopicLen+1))} {
		if _, err := ps[0].Subscribe(name, noop); !errors.Is(err, ErrTopic) {
			t.Errorf("Subscribe(%q): got %v, want ErrTopic", name, err)
		}
	}
	if _, err := ps[0].Subscribe(ReservedPrefix+"x", noop); !errors.Is(err, ErrReservedTopic) {
		t.Errorf("reserved: got %v", err)
	}
	if _, err := ps[0].Subscribe(ReservedPrefix+"x", noop, AllowReserved()); err != nil {
		t.Errorf("reserved with AllowReserved: %v", err)
	}
}

func TestJSONHelpers(t *testing.T) {
	type point struct{ X, Y int }
	ps := newMesh(t, 2, Config{})
	got := make(chan point, 1)
	maps := make(chan map[string]any, 1)
	if _, err := SubscribeJSON(ps[1], "points", func(p point, m Message) {
		if m.From == ps[0].host.ID() {
			got <- p
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[1].SubscribeMap("chat", func(m map[string]any) { maps <- m }); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "points", 1)
	waitTopicPeers(t, ps[0], "chat", 1)
	ctx := context.Background()
	if err := PublishJSON(ctx, ps[0], "points", point{3, 4}); err != nil {
		t.Fatal(err)
	}
	// Not an object: skipped by the map subscriber, not delivered as garbage.
	if err := ps[0].Publish(ctx, "chat", []byte("[1,2]")); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Broadcast(ctx, "chat", map[string]any{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != (point{3, 4}) {
			t.Fatalf("got %+v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no typed message")
	}
	select {
	case m := <-maps:
		if m["text"] != "hi" {
			t.Fatalf("got %v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no map message")
	}
}

func TestUnsubscribe(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	c := newCollector()
	sub, err := ps[1].Subscribe("t", c.handle)
	if err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)
	if err := ps[0].Publish(context.Background(), "t", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if !c.wait(1, 5*time.Second) {
		t.Fatal("nothing before unsubscribe")
	}
	sub.Unsubscribe()
	sub.Unsubscribe() // idempotent
	deadline := time.Now().Add(5 * time.Second)
	for len(ps[0].ListPeers("t")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("peer still listed as subscribed after the last Unsubscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := ps[0].Publish(context.Background(), "t", []byte("b")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if c.count() != 1 {
		t.Fatalf("got %d messages after unsubscribe", c.count())
	}
}

func TestMalformedFromPeerIsRejected(t *testing.T) {
	ps := newMesh(t, 2, Config{TopicPrefix: "pfx/"})
	c := newCollector()
	if _, err := ps[1].Subscribe("t", c.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)
	// Publish garbage on the wire topic through GossipSub directly.
	topic, err := ps[0].topic("t", false)
	if err != nil {
		t.Fatal(err)
	}
	// Bypass our own validator: unregister it locally, publish, re-register.
	if err := ps[0].gs.UnregisterTopicValidator("pfx/t"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{[]byte("garbage"), {1, 0, 1, 'a', 1, 0x80, 0x80, 0x80, 0x80, 0x08}} {
		if err := topic.gt.Publish(context.Background(), bad); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps[0].gs.RegisterTopicValidator("pfx/t", topic.validate, lp2pps.WithValidatorInline(true)); err != nil {
		t.Fatal(err)
	}
	publishGood(t, ps[0], c, ps[1], 2)
}

func TestCloseTwice(t *testing.T) {
	ps := newMesh(t, 1, Config{})
	if _, err := ps[0].Subscribe("t", func(Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Publish(context.Background(), "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := ps[0].Publish(context.Background(), "t", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := ps[0].Subscribe("t", func(Message) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func TestFlushThenClose(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	c := newCollector()
	if _, err := ps[1].Subscribe("t", c.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)
	const count = 500
	for i := range count {
		if err := ps[0].Publish(context.Background(), "t", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ps[0].Flush(ctx); err != nil {
		t.Fatalf("%v: queued %d inflight %d", err, ps[0].queued.Load(), ps[0].tr.totalInflight())
	}
	if q, f := ps[0].queued.Load(), ps[0].tr.totalInflight(); q != 0 || f != 0 {
		t.Fatalf("after Flush: queued %d inflight %d", q, f)
	}
	// Closing the sender right away loses nothing that was flushed.
	ps[0].Close()
	ps[0].host.Close()
	if !c.wait(count, 5*time.Second) {
		t.Fatalf("received %d of %d", c.count(), count)
	}
}

func TestPublishQueueBoundInBytes(t *testing.T) {
	p := &PubSub{cfg: Config{PublishQueueBytes: 100}.withDefaults()}
	tp := newTopic(p, "t")
	ctx := context.Background()
	if err := tp.reserve(ctx, 60); err != nil {
		t.Fatal(err)
	}
	if err := tp.reserve(ctx, 40); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- tp.reserve(ctx, 50) }()
	select {
	case err := <-blocked:
		t.Fatalf("reserve over the bound returned %v without waiting", err)
	case <-time.After(50 * time.Millisecond):
	}
	tp.release(60)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := tp.reserve(tctx, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's deadline", err)
	}
	tp.release(90)
	if err := tp.reserve(ctx, 1000); err != nil { // an empty queue takes anything
		t.Fatal(err)
	}
}

func TestEmptyMessages(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	c := newCollector()
	if _, err := ps[1].Subscribe("t", c.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)
	for range 50 {
		if err := ps[0].Publish(context.Background(), "t", nil); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(50, 5*time.Second) {
		t.Fatalf("got %d of 50 empty messages", c.count())
	}
}

// A topic's validator refuses what fails it: not delivered, counted.
func TestWithValidator(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	c := newCollector()
	check := func(b []byte) error {
		if string(b) == "bad" {
			return errors.New("bad message")
		}
		return nil
	}
	if _, err := ps[1].Subscribe("v", c.handle, WithValidator(check)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := ps[0].WaitSubscribers(ctx, "v", 1); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"good 1", "bad", "good 2"} {
		if err := ps[0].Publish(ctx, "v", []byte(m)); err != nil {
			t.Fatal(err)
		}
		if err := ps[0].Flush(ctx); err != nil { // one batch each
			t.Fatal(err)
		}
	}
	if !c.wait(2, 5*time.Second) {
		t.Fatalf("got %d of 2 good messages", c.count())
	}
	time.Sleep(50 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) != 2 || string(c.msgs[0].Data) != "good 1" || string(c.msgs[1].Data) != "good 2" {
		t.Fatalf("delivered %d messages: %q", len(c.msgs), c.msgs)
	}
	if inv := ps[1].Stats().Invalid; inv != 1 {
		t.Fatalf("Invalid = %d, want 1", inv)
	}
}

// A topic's decoder runs once per received message: handlers get its
// result in Message.Decoded, and what it refuses is not delivered.
func TestWithDecoder(t *testing.T) {
	ps := newMesh(t, 2, Config{Echo: true})
	var calls atomic.Int64
	decode := func(b []byte) (any, error) {
		calls.Add(1)
		return strconv.Atoi(string(b))
	}
	cols := []*collector{newCollector(), newCollector(), newCollector()}
	if _, err := ps[1].Subscribe("d", cols[0].handle, WithDecoder(decode)); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[1].Subscribe("d", cols[1].handle); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[0].Subscribe("d", cols[2].handle, WithDecoder(decode)); err != nil { // echo
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := ps[0].WaitSubscribers(ctx, "d", 1); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"1", "x", "2"} {
		if err := ps[0].Publish(ctx, "d", []byte(m)); err != nil {
			t.Fatal(err)
		}
		if err := ps[0].Flush(ctx); err != nil { // one batch each
			t.Fatal(err)
		}
	}
	if err := ps[0].Publish(ctx, "d", []byte("3")); err != nil { // the barrier
		t.Fatal(err)
	}
	for i, c := range cols {
		if !c.wait(3, 5*time.Second) {
			t.Fatalf("subscription %d got %d of 3 messages", i, c.count())
		}
		c.mu.Lock()
		var got []any
		for _, m := range c.msgs {
			got = append(got, m.Decoded)
		}
		c.mu.Unlock()
		if want := []any{1, 2, 3}; !reflect.DeepEqual(got, want) {
			t.Errorf("subscription %d: decoded %v, want %v", i, got, want)
		}
	}
	if inv := ps[1].Stats().Invalid; inv != 1 {
		t.Errorf("Invalid = %d, want 1", inv)
	}
	// Once per message and node, not once per subscription: node 1
	// decoded the 4 it received, node 0 the 4 it echoed to itself.
	if n := calls.Load(); n != 8 {
		t.Errorf("decoder ran %d times, want 8 (4 received + 4 echoed)", n)
	}
}
