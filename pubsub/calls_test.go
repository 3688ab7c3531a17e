package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// Headers reach subscribers on both ways: direct streams (default) and
// GossipSub (forced by signing); a message without them has none.
func TestHeadersReachSubscribers(t *testing.T) {
	for _, sign := range []bool{false, true} {
		t.Run(fmt.Sprintf("sign=%v", sign), func(t *testing.T) {
			ps := newMesh(t, 2, Config{Sign: sign})
			c := newCollector()
			if _, err := ps[1].Subscribe("t", c.handle); err != nil {
				t.Fatal(err)
			}
			waitTopicPeers(t, ps[0], "t", 1)
			if !sign {
				waitDirect(t, ps[0], "t", 1)
			}
			h := Header{"trace-id": {"t1"}, "accept": {"a", "b"}}
			if err := ps[0].Publish(context.Background(), "t", []byte("with"), WithHeader(h)); err != nil {
				t.Fatal(err)
			}
			if err := ps[0].Publish(context.Background(), "t", []byte("without")); err != nil {
				t.Fatal(err)
			}
			if !c.wait(2, 10*time.Second) {
				t.Fatalf("got %d of 2", c.count())
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if !sameHeader(c.msgs[0].Header, h) || c.msgs[1].Header != nil {
				t.Fatalf("headers %v and %v", c.msgs[0].Header, c.msgs[1].Header)
			}
			// The publisher counts a batch once it has handed it over:
			// the subscriber may have it a moment before.
			testutil.Eventually(t, 5*time.Second, "both messages counted", func() bool {
				return ps[0].Stats().Topics["t"].Published == 2
			})
			if d := ps[0].Stats().Topics["t"].DirectBatches; (d > 0) == sign {
				t.Fatalf("sign=%v: %d direct batches", sign, d)
			}
		})
	}
}

func TestPublishRefusesBadHeaders(t *testing.T) {
	ps := newMesh(t, 1, Config{})
	err := ps[0].Publish(context.Background(), "t", []byte("x"), WithHeader(Header{"": {"v"}}))
	if !errors.Is(err, ErrHeader) {
		t.Fatalf("err = %v, want ErrHeader", err)
	}
}

// Send reaches one peer's subscriptions, in order, and nobody else's; a
// broadcast after it is the barrier for the other subscriber.
func TestSendToOnePeer(t *testing.T) {
	for _, sign := range []bool{false, true} {
		t.Run(fmt.Sprintf("sign=%v", sign), func(t *testing.T) {
			ps := newMesh(t, 3, Config{Sign: sign})
			b, c := newCollector(), newCollector()
			if _, err := ps[1].Subscribe("t", b.handle); err != nil {
				t.Fatal(err)
			}
			if _, err := ps[2].Subscribe("t", c.handle); err != nil {
				t.Fatal(err)
			}
			waitTopicPeers(t, ps[0], "t", 2)
			ctx := context.Background()
			const n = 200
			for i := range n {
				h := Header{"i": {fmt.Sprint(i)}}
				if err := ps[0].Send(ctx, ps[1].host.ID(), "t", []byte(fmt.Sprint(i)), WithHeader(h)); err != nil {
					t.Fatal(err)
				}
			}
			if err := ps[0].Publish(ctx, "t", []byte("barrier")); err != nil {
				t.Fatal(err)
			}
			if !b.wait(n+1, 10*time.Second) || !c.wait(1, 10*time.Second) {
				t.Fatalf("b got %d of %d, c %d of 1", b.count(), n+1, c.count())
			}
			// Sends are in order among themselves; the broadcast may take
			// another way and arrive among them.
			b.mu.Lock()
			sent := slices.DeleteFunc(slices.Clone(b.msgs), func(m Message) bool { return string(m.Data) == "barrier" })
			for i, m := range sent {
				if string(m.Data) != fmt.Sprint(i) || m.Header.Get("i") != fmt.Sprint(i) || m.From != ps[0].host.ID() {
					t.Fatalf("b's message %d: %q %v from %s", i, m.Data, m.Header, m.From)
				}
			}
			b.mu.Unlock()
			c.mu.Lock()
			if len(c.msgs) != 1 || string(c.msgs[0].Data) != "barrier" {
				t.Fatalf("c got %d messages, first %q: a send leaked", len(c.msgs), c.msgs[0].Data)
			}
			c.mu.Unlock()
		})
	}
}

func TestSendErrors(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	ctx := context.Background()
	// Not subscribed there (yet): refused, nothing sent. (Until ps[1]'s
	// pub/sub is ready, ps[0] has no way to it at all: ErrNoRoute.)
	var err error
	testutil.Eventually(t, 5*time.Second, "ps[1] to be reachable", func() bool {
		err = ps[0].Send(ctx, ps[1].host.ID(), "t", []byte("x"))
		return !errors.Is(err, ErrNoRoute)
	})
	if !errors.Is(err, ErrNoSubscriber) {
		t.Fatalf("send to a non-subscriber: %v", err)
	}
	if err := ps[0].Send(ctx, peer.ID("nobody"), "t", []byte("x")); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("send to an unknown peer: %v", err)
	}
	if err := ps[0].Send(ctx, ps[1].host.ID(), "t", make([]byte, ps[0].MaxMessageSize()+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized send: %v", err)
	}
	// To itself: its own subscriptions, and none is an error too.
	if err := ps[0].Send(ctx, ps[0].host.ID(), "t", []byte("x")); !errors.Is(err, ErrNoSubscriber) {
		t.Fatalf("send to self without a subscription: %v", err)
	}
	self := newCollector()
	if _, err := ps[0].Subscribe("t", self.handle); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Send(ctx, ps[0].host.ID(), "t", []byte("me")); err != nil {
		t.Fatal(err)
	}
	if !self.wait(1, 5*time.Second) {
		t.Fatal("send to self not delivered")
	}
}

// upper answers a request with its body in upper case, "fail" with an
// error, and reports the deadline it was given in a header-less reply.
func upper(ctx context.Context, m Message) ([]byte, error) {
	switch string(m.Data) {
	case "fail":
		return nil, errors.New("asked to fail")
	case "deadline":
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("no deadline")
		}
		return []byte("has deadline"), nil
	case "header":
		return []byte(m.Header.Get("x")), nil
	}
	return bytes.ToUpper(m.Data), nil
}

func TestRequestReply(t *testing.T) {
	for _, sign := range []bool{false, true} {
		t.Run(fmt.Sprintf("sign=%v", sign), func(t *testing.T) {
			ps := newMesh(t, 2, Config{Sign: sign})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// Nobody answers yet: at once, not at the deadline.
			if _, err := ps[0].Request(ctx, "svc", []byte("x")); !errors.Is(err, ErrNoResponders) {
				t.Fatalf("request without responders: %v", err)
			}
			if _, err := ps[1].Handle("svc", upper); err != nil {
				t.Fatal(err)
			}
			if err := ps[0].WaitResponders(ctx, "svc", 1); err != nil {
				t.Fatal(err)
			}
			m, err := ps[0].Request(ctx, "svc", []byte("hello"))
			if err != nil || string(m.Data) != "HELLO" || m.From != ps[1].host.ID() || m.Topic != "svc" {
				t.Fatalf("reply %q from %s on %q, err %v", m.Data, m.From, m.Topic, err)
			}
			_, err = ps[0].Request(ctx, "svc", []byte("fail"))
			if !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), "asked to fail") {
				t.Fatalf("responder error: %v", err)
			}
			if m, err := ps[0].Request(ctx, "svc", []byte("deadline")); err != nil || string(m.Data) != "has deadline" {
				t.Fatalf("deadline: %q %v", m.Data, err)
			}
			if m, err := ps[0].Request(ctx, "svc", []byte("header"), WithHeader(Header{"x": {"y"}})); err != nil || string(m.Data) != "y" {
				t.Fatalf("header: %q %v", m.Data, err)
			}
			// Many in flight at once, each gets its own answer.
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for i := range 100 {
				wg.Go(func() {
					m, err := ps[0].Request(ctx, "svc", fmt.Appendf(nil, "r%d", i))
					if err == nil && string(m.Data) != fmt.Sprintf("R%d", i) {
						err = fmt.Errorf("request %d got %q", i, m.Data)
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A responder on the requesting node answers too; after Unsubscribe,
// nobody does.
func TestRequestLocalResponder(t *testing.T) {
	ps := newMesh(t, 1, Config{})
	s, err := ps[0].Handle("svc", upper)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if m, err := ps[0].Request(ctx, "svc", []byte("me")); err != nil || string(m.Data) != "ME" {
		t.Fatalf("local request: %q %v", m.Data, err)
	}
	s.Unsubscribe()
	if _, err := ps[0].Request(ctx, "svc", []byte("me")); !errors.Is(err, ErrNoResponders) {
		t.Fatalf("after Unsubscribe: %v", err)
	}
}

// A request whose responder never answers ends with ctx; one whose
// responder leaves the mesh ends at once.
func TestRequestTimeoutAndResponderLeaves(t *testing.T) {
	hosts := newHosts(t, 2)
	ps := pubsubsOn(t, hosts, Config{})
	release := make(chan struct{})
	if _, err := ps[1].Handle("slow", func(ctx context.Context, m Message) ([]byte, error) {
		<-release // not ctx: its deadline is the requester's
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	ctx := context.Background()
	if err := ps[0].WaitResponders(ctx, "slow", 1); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := ps[0].Request(tctx, "slow", []byte("x"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow responder: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ps[0].Request(ctx, "slow", []byte("y"))
		done <- err
	}()
	testutil.Eventually(t, 5*time.Second, "the request in flight", func() bool {
		ps[0].calls.mu.Lock()
		defer ps[0].calls.mu.Unlock()
		return len(ps[0].calls.m) == 1
	})
	if err := hosts[0].Network().ClosePeer(hosts[1].ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrNoResponders) {
			t.Fatalf("responder left: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request still waiting 10 s after its responder left")
	}
}

// A responder whose queue is full refuses at once with ErrBusy.
func TestRequestBusy(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	release := make(chan struct{})
	var once sync.Once
	started := make(chan struct{})
	sub, err := ps[1].Handle("busy", func(ctx context.Context, m Message) ([]byte, error) {
		once.Do(func() { close(started) })
		<-release
		return []byte("done"), nil
	}, WithQueueLength(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ps[0].WaitResponders(ctx, "busy", 1); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 2)
	go func() { _, err := ps[0].Request(ctx, "busy", []byte("1")); results <- err }()
	<-started // the first is running, the queue is empty
	go func() { _, err := ps[0].Request(ctx, "busy", []byte("2")); results <- err }()
	testutil.Eventually(t, 5*time.Second, "the second request queued at the responder", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.q)-sub.head == 1
	})
	// The queue (1) holds the second: a third is refused.
	if _, err := ps[0].Request(ctx, "busy", []byte("3")); !errors.Is(err, ErrBusy) {
		t.Fatalf("third request: %v, want ErrBusy", err)
	}
	close(release)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}

// RequestAll gathers every responder's answer and returns when all have
// answered, long before ctx ends; queue-group responders answer once per
// group, in turn.
func TestRequestAllAndResponderGroups(t *testing.T) {
	ps := newMesh(t, 5, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, p := range ps[1:] {
		name := fmt.Sprint(i + 1)
		var opts []Option
		if i >= 2 { // nodes 3 and 4 share a group
			opts = append(opts, WithQueueGroup("g"))
		}
		if _, err := p.Handle("svc", func(context.Context, Message) ([]byte, error) { return []byte(name), nil }, opts...); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps[0].WaitResponders(ctx, "svc", 4); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range 40 {
		replies, err := ps[0].RequestAll(ctx, "svc", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("RequestAll waited for ctx")
		}
		var names []string
		for _, r := range replies {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			names = append(names, string(r.Data))
		}
		slices.Sort(names)
		if len(names) != 3 || names[0] != "1" || names[1] != "2" || (names[2] != "3" && names[2] != "4") {
			t.Fatalf("replies from %v, want 1, 2 and one of the group", names)
		}
		seen[names[2]]++
	}
	if seen["3"] != 20 || seen["4"] != 20 {
		t.Fatalf("group members answered %v times, want 20 each", seen)
	}
}

// A queue group of four (one on the publisher's node) gets each message
// once, evenly; a plain subscriber gets every message.
func TestQueueGroup(t *testing.T) {
	ps := newMesh(t, 4, Config{})
	members := make([]*collector, 4)
	for i := range members {
		members[i] = newCollector()
		if _, err := ps[i].Subscribe("jobs", members[i].handle, WithQueueGroup("workers")); err != nil {
			t.Fatal(err)
		}
	}
	plain := newCollector()
	if _, err := ps[1].Subscribe("jobs", plain.handle); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ps[0].WaitSubscribers(ctx, "jobs", 3, WithQueueGroup("workers")); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "jobs", 1)
	const n = 4000
	for i := range n {
		if err := ps[0].Publish(context.Background(), "jobs", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !plain.wait(n, 20*time.Second) {
		t.Fatalf("plain subscriber got %d of %d", plain.count(), n)
	}
	total := 0
	testutil.Eventually(t, 10*time.Second, "every job delivered", func() bool {
		total = 0
		for _, m := range members {
			total += m.count()
		}
		return total >= n
	})
	seen := map[string]bool{}
	for i, m := range members {
		m.mu.Lock()
		for _, msg := range m.msgs {
			if seen[string(msg.Data)] {
				t.Fatalf("job %s delivered twice", msg.Data)
			}
			seen[string(msg.Data)] = true
		}
		got := len(m.msgs)
		m.mu.Unlock()
		if got < n/4*9/10 || got > n/4*11/10 {
			t.Errorf("member %d got %d jobs, want %d ± 10 %%", i, got, n/4)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct jobs delivered, want %d", len(seen), n)
	}
}

// A member that leaves mid-stream: the others take its share; no message
// reaches two members; every message is delivered or counted.
func TestQueueGroupMemberLeaves(t *testing.T) {
	ps := newMesh(t, 3, Config{})
	b, c := newCollector(), newCollector()
	if _, err := ps[1].Subscribe("jobs", b.handle, WithQueueGroup("w")); err != nil {
		t.Fatal(err)
	}
	sc, err := ps[2].Subscribe("jobs", c.handle, WithQueueGroup("w"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "two members", func() bool {
		return len(ps[0].topics.groups(regQueue, "jobs")["w"]) == 2
	})
	ctx := context.Background()
	const n = 2000
	for i := range n {
		if i == n/4 {
			sc.Unsubscribe()
		}
		if err := ps[0].Publish(ctx, "jobs", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	lost := func() int {
		return int(ps[2].Stats().InboundNoSubscriber + ps[0].Stats().Topics["jobs"].SendFailed)
	}
	testutil.Eventually(t, 20*time.Second, "every job delivered or counted", func() bool {
		return b.count()+c.count()+lost() >= n
	})
	if got := b.count() + c.count() + lost(); got != n {
		t.Fatalf("delivered %d + %d, counted lost %d: %d, want %d", b.count(), c.count(), lost(), got, n)
	}
	if c.count() > n/4 {
		t.Fatalf("c got %d after leaving at %d", c.count(), n/4)
	}
	if b.count() < n*3/4-lost() {
		t.Fatalf("b got %d: c's share did not go to b", b.count())
	}
	// Once the leave is known, nothing more is lost.
	testutil.Eventually(t, 10*time.Second, "c's leave known", func() bool {
		return len(ps[0].topics.groups(regQueue, "jobs")["w"]) == 1
	})
	before, lostBefore := b.count(), lost()
	for i := range 100 {
		if err := ps[0].Publish(ctx, "jobs", []byte(fmt.Sprint("after", i))); err != nil {
			t.Fatal(err)
		}
	}
	if !b.wait(before+100, 10*time.Second) || lost() != lostBefore {
		t.Fatalf("after the leave: b got %d of 100, lost %d more", b.count()-before, lost()-lostBefore)
	}
}

func TestCallFramesRoundTrip(t *testing.T) {
	author := []byte("author")
	var w batchWriter
	w.addHeader([]byte{1, 'k', 1, 'v'}, []byte("body"))
	frames := map[string][]byte{
		"send":    encodeSendFrame("pre/t", "g", author, &w),
		"request": encodeRequestFrame("pre/t", "", 42, 1500, author, &w),
		"reply":   encodeReplyFrame(42, replyOK, author, &w, ""),
		"error":   encodeReplyFrame(43, replyError, author, nil, "it broke"),
	}
	for name, f := range frames {
		l, n := uvarint(f)
		if n <= 0 || int(l) != len(f)-n {
			t.Fatalf("%s: length %d for %d bytes", name, l, len(f)-n)
		}
		c, err := decodeCallFrame(f[n], f[n+1:], peer.ID(author), 100)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch name {
		case "send":
			if c.wire != "pre/t" || c.group != "g" || string(c.b.msgs[0]) != "body" || c.b.header(0).Get("k") != "v" {
				t.Fatalf("send decoded as %+v", c)
			}
		case "request":
			if c.id != 42 || c.timeoutMs != 1500 || c.group != "" || string(c.b.msgs[0]) != "body" {
				t.Fatalf("request decoded as %+v", c)
			}
		case "reply":
			if c.id != 42 || c.status != replyOK || string(c.b.msgs[0]) != "body" {
				t.Fatalf("reply decoded as %+v", c)
			}
		case "error":
			if c.id != 43 || c.status != replyError || c.text != "it broke" || c.b != nil {
				t.Fatalf("error decoded as %+v", c)
			}
		}
		if _, err := decodeCallFrame(f[n], f[n+1:], peer.ID("someone else"), 100); name != "error" && !errors.Is(err, errCallAuthor) {
			t.Fatalf("%s from another author: %v", name, err)
		}
	}
	if got := truncateText(strings.Repeat("é", 600), maxErrorText); len(got) > maxErrorText || !strings.HasPrefix(got, "é") || len(got)%2 != 0 {
		t.Fatalf("truncated to %d bytes", len(got))
	}
}

func FuzzDecodeCallFrame(f *testing.F) {
	author := []byte("author")
	var w batchWriter
	w.addHeader([]byte{1, 'k', 1, 'v'}, []byte("body"))
	for _, fr := range [][]byte{
		encodeSendFrame("t", "g", author, &w),
		encodeRequestFrame("t", "", 1, 0, author, &w),
		encodeReplyFrame(1, replyOK, author, &w, ""),
		encodeReplyFrame(1, replyBusy, author, nil, "busy"),
	} {
		_, n := uvarint(fr)
		f.Add(fr[n:])
	}
	fw := wrapForward("origin", "target", 3, make([]byte, 64), encodeSendFrame("t", "", author, &w)[1:])
	_, n := uvarint(fw)
	f.Add(fw[n:])
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) == 0 {
			return
		}
		if frame[0] == frameForward {
			origin, target, hops, sig, inner, err := decodeForward(frame[1:])
			if err != nil {
				return
			}
			if hops > maxHops || origin == "" || target == "" || len(sig) == 0 || len(sig) > maxSigLen || len(inner) == 0 {
				t.Fatalf("forward decoded as %q %q %d %x %x", origin, target, hops, sig, inner)
			}
			again := wrapForward(origin, target, hops, sig, inner)
			_, n := uvarint(again)
			if !bytes.Equal(again[n:], frame) {
				t.Fatalf("re-encoding differs: %x vs %x", frame, again[n:])
			}
			return
		}
		c, err := decodeCallFrame(frame[0], frame[1:], peer.ID(author), 1<<16)
		if err != nil {
			return
		}
		if c.kind != frameReply || c.status == replyOK {
			if c.b == nil || string(c.b.author) != string(author) {
				t.Fatalf("decoded without a batch of the author: %+v", c)
			}
		}
		if c.kind != frameSend && c.b != nil && len(c.b.msgs) != 1 {
			t.Fatalf("%d messages in a request or reply", len(c.b.msgs))
		}
	})
}

// A reply carries the headers its responder set; a responder that gives up
// when its context ends leaves the requester its own timeout, not a
// remote "deadline exceeded".
func TestReplyHeadersAndDeadlines(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	if _, err := ps[1].Handle("svc", func(ctx context.Context, m Message) ([]byte, error) {
		if string(m.Data) == "wait" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		ReplyHeader(ctx).Set("served-by", "b")
		return []byte("ok"), nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ps[0].WaitResponders(ctx, "svc", 1); err != nil {
		t.Fatal(err)
	}
	if got := ps[0].ListResponders("svc"); len(got) != 1 || got[0] != ps[1].host.ID() {
		t.Fatalf("ListResponders = %v", got)
	}
	m, err := ps[0].Request(ctx, "svc", []byte("x"))
	if err != nil || m.Header.Get("served-by") != "b" {
		t.Fatalf("reply %q headers %v, %v", m.Data, m.Header, err)
	}
	if h := ReplyHeader(ctx); h == nil {
		t.Fatal("ReplyHeader outside a responder returned nil")
	}
	for i := range 5 {
		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := ps[0].Request(tctx, "svc", []byte("wait"))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRemote) {
			t.Fatalf("attempt %d: %v, want the requester's own deadline", i, err)
		}
	}
}

// A wildcard pattern is not a topic: only Subscribe takes one.
func TestPatternIsNotATopic(t *testing.T) {
	ps := newMesh(t, 1, Config{})
	ctx := context.Background()
	for name, err := range map[string]error{
		"Publish": ps[0].Publish(ctx, "orders.*", []byte("x")),
		"Send":    ps[0].Send(ctx, ps[0].host.ID(), "orders.>", []byte("x")),
		"Handle": func() error {
			_, err := ps[0].Handle("orders.*", upper)
			return err
		}(),
		"Request": func() error {
			_, err := ps[0].Request(ctx, "orders.*", []byte("x"))
			return err
		}(),
	} {
		if !errors.Is(err, ErrTopic) {
			t.Errorf("%s on a pattern: %v, want ErrTopic", name, err)
		}
	}
}

// A queue group's member that cannot take a request (busy) hands it to
// another member: the requester never sees ErrBusy while one is idle.
func TestRequestQueueGroupFallsBack(t *testing.T) {
	ps := newMesh(t, 3, Config{})
	release := make(chan struct{})
	defer close(release)
	if _, err := ps[1].Handle("svc", func(ctx context.Context, m Message) ([]byte, error) {
		<-release
		return []byte("slow"), nil
	}, WithQueueGroup("g"), WithQueueLength(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[2].Handle("svc", func(ctx context.Context, m Message) ([]byte, error) {
		return []byte("fast"), nil
	}, WithQueueGroup("g")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ps[0].WaitResponders(ctx, "svc", 2); err != nil {
		t.Fatal(err)
	}
	// The slow member takes at most two requests (one running, one
	// queued); every other request, including those dealt to it, is
	// answered by the fast one.
	fast, stuck := 0, 0
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 20 {
		wg.Go(func() {
			rctx, c := context.WithTimeout(ctx, 2*time.Second)
			defer c()
			m, err := ps[0].Request(rctx, "svc", []byte(fmt.Sprint(i)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && string(m.Data) == "fast":
				fast++
			case errors.Is(err, context.DeadlineExceeded):
				stuck++
			default:
				t.Errorf("request %d: %q, %v", i, m.Data, err)
			}
		})
	}
	wg.Wait()
	if stuck > 2 || fast+stuck != 20 {
		t.Fatalf("%d answered by the idle member, %d stuck at the busy one (at most 2)", fast, stuck)
	}
}
