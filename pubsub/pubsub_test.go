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

	"github.com/libp2p/go-libp2p"
	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/reflectmesh/reflect/internal/testutil"
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
			// Our own batch is delivered here (with Echo) before the
			// publisher counts it published: once it has, the topic's
			// Received count is final, and the handler has been given
			// exactly that many.
			testutil.Eventually(t, 5*time.Second, "our batch published", func() bool {
				return ps[0].Stats().Topics["t"].Published == 1
			})
			if r := ps[0].Stats().Topics["t"].Received; r != uint64(want) {
				t.Fatalf("%d messages delivered here, want %d", r, want)
			}
			testutil.Eventually(t, 5*time.Second, "the handler to catch up", func() bool { return self.count() >= want })
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
	testutil.Eventually(t, 5*time.Second, "the slow subscription to account for 200 messages", func() bool {
		return slowSub.Delivered()+slowSub.Dropped() >= 200
	})
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
	testutil.Eventually(t, 5*time.Second, "the peer to be unlisted after the last Unsubscribe", func() bool {
		return len(ps[0].ListPeers("t")) == 0
	})
	if err := ps[0].Publish(context.Background(), "t", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Flush(context.Background()); err != nil { // "b" is routed before we subscribe again
		t.Fatal(err)
	}
	// The barrier: a new subscription, then a message it must get. Had
	// "b" been delivered to the old subscription, it would have been
	// before "c".
	c2 := newCollector()
	if _, err := ps[1].Subscribe("t", c2.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)
	if err := ps[0].Publish(context.Background(), "t", []byte("c")); err != nil {
		t.Fatal(err)
	}
	if !c2.wait(1, 5*time.Second) {
		t.Fatal("the new subscription got nothing")
	}
	if n := c.count(); n != 1 {
		t.Fatalf("got %d messages after unsubscribe", n)
	}
	c2.mu.Lock()
	defer c2.mu.Unlock()
	if len(c2.msgs) != 1 || string(c2.msgs[0].Data) != "c" {
		t.Fatalf("the new subscription got %v", c2.msgs)
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

// Flush returns once everything published is written to the connections.
// (What a peer has received is drain's business, at Close: see
// TestCloseSendsWhatIsQueued.)
func TestFlush(t *testing.T) {
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
		empty, _ := ps[0].flows.empty()
		t.Fatalf("%v: queued %d, flows empty %v", err, ps[0].queued.n.Load(), empty)
	}
	// (Nothing more is observable right after: the peer announcements
	// published meanwhile may be queued again.)
	if !c.wait(count, 5*time.Second) {
		t.Fatalf("received %d of %d", c.count(), count)
	}
}

// Close sends what is still queued and waits until the peers have it: a
// program that publishes and closes loses nothing, even when its host is
// closed right after.
func TestCloseSendsWhatIsQueued(t *testing.T) {
	for _, sign := range []bool{false, true} { // direct streams, GossipSub
		t.Run(fmt.Sprintf("sign=%v", sign), func(t *testing.T) {
			ps := newMesh(t, 2, Config{Sign: sign})
			c := newCounter()
			if _, err := ps[1].Subscribe("t", c.handle); err != nil {
				t.Fatal(err)
			}
			waitTopicPeers(t, ps[0], "t", 1)
			if !sign {
				waitDirect(t, ps[0], "t", 1)
			}
			const count = 2000
			for i := range count {
				if err := ps[0].Publish(context.Background(), "t", []byte{byte(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := ps[0].Close(); err != nil {
				t.Fatal(err)
			}
			if err := ps[0].host.Close(); err != nil {
				t.Fatal(err)
			}
			if !c.wait(count, 5*time.Second) {
				t.Fatalf("received %d of %d", c.count(), count)
			}
		})
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
	if _, err := ps[1].Subscribe("v", c.handle, WithValidator(refuseBad)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := ps[0].WaitSubscribers(ctx, "v", 1); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"good 1", "bad", "good 2", "barrier"} {
		if err := ps[0].Publish(ctx, "v", []byte(m)); err != nil {
			t.Fatal(err)
		}
		if err := ps[0].Flush(ctx); err != nil { // one batch each
			t.Fatal(err)
		}
	}
	if !c.wait(3, 5*time.Second) {
		t.Fatalf("got %d of 3 good messages", c.count())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) != 3 || string(c.msgs[0].Data) != "good 1" || string(c.msgs[1].Data) != "good 2" || string(c.msgs[2].Data) != "barrier" {
		t.Fatalf("delivered %d messages: %v", len(c.msgs), c.msgs)
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

// A batch the topic's validator refuses on a direct stream is skipped: the
// stream stays, and the batches behind it arrive at once, in order.
func TestRefusedDirectBatchKeepsTheStream(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	c := newCollector()
	if _, err := ps[1].Subscribe("v", c.handle, WithValidator(refuseBad)); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "v", 1)
	waitDirect(t, ps[0], "v", 1)
	ctx := context.Background()
	if err := ps[0].Publish(ctx, "v", []byte("bad")); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Flush(ctx); err != nil { // a batch of its own
		t.Fatal(err)
	}
	const count = 50
	for i := range count {
		if err := ps[0].Publish(ctx, "v", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(count, 5*time.Second) {
		t.Fatalf("got %d of %d", c.count(), count)
	}
	c.mu.Lock()
	for i, m := range c.msgs {
		if string(m.Data) != strconv.Itoa(i) {
			t.Errorf("message %d is %q", i, m.Data)
			break
		}
	}
	c.mu.Unlock()
	st, pub := ps[1].Stats(), ps[0].Stats().Topics["v"]
	if st.Invalid != 1 || st.Topics["v"].SkippedBatches != 0 {
		t.Errorf("Invalid %d, SkippedBatches %d; want 1, 0", st.Invalid, st.Topics["v"].SkippedBatches)
	}
	if pub.DirectBatches != pub.Batches || pub.Batches < 2 {
		t.Errorf("%d of %d batches direct: the stream did not stay", pub.DirectBatches, pub.Batches)
	}
}

// Close stops every goroutine pub/sub started (publishers, subscriptions,
// direct streams, the announcements, the membership's follower) and
// GossipSub's own, on every node, once the hosts close too.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	hosts := make([]host.Host, 3)
	for i := range hosts {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, h := range hosts[1:] {
		if err := hosts[0].Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	ps := make([]*PubSub, len(hosts))
	for i, h := range hosts {
		p, err := New(h, nil, Config{})
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	c := newCounter()
	for _, p := range ps[1:] {
		if _, err := p.Subscribe("t", c.handle); err != nil {
			t.Fatal(err)
		}
	}
	waitTopicPeers(t, ps[0], "t", 2)
	for i := range 100 {
		if err := ps[0].Publish(ctx, "t", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(200, 5*time.Second) {
		t.Fatalf("delivered %d of 200", c.count())
	}
	for i, p := range ps {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
		if err := hosts[i].Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A topic's publish queue is made on its first Publish: a topic that is
// only subscribed to (or relayed, or a reserved one) holds none.
func TestPublishQueueMadeOnFirstPublish(t *testing.T) {
	p := newMesh(t, 1, Config{})[0]
	if _, err := p.Subscribe("lazy", func(Message) {}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	tp := p.joined["lazy"]
	p.mu.Unlock()
	if tp.in.Load() != nil {
		t.Fatal("a topic only subscribed to has a publish queue")
	}
	if err := p.Publish(context.Background(), "lazy", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if in := tp.in.Load(); in == nil || cap(*in) != DefaultPublishQueue {
		t.Fatalf("after a Publish: publish queue %v, want one of %d", in, DefaultPublishQueue)
	}
	testutil.Eventually(t, 5*time.Second, "the message published", func() bool {
		return p.Stats().Topics["lazy"].Published == 1
	})
}
