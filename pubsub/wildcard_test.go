package pubsub

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/testutil"
)

func TestMatchPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, topic string
		want           bool
	}{
		{"orders.*", "orders.eu", true},
		{"orders.*", "orders", false},
		{"orders.*", "orders.eu.paris", false},
		{"orders.>", "orders.eu", true},
		{"orders.>", "orders.eu.paris", true},
		{"orders.>", "orders", false},
		{"*.eu", "orders.eu", true},
		{"*.eu", "orders.us", false},
		{"*", "orders", true},
		{"*", "orders.eu", false},
		{">", "orders.eu", true},
		{">", ReservedPrefix + "peers", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"a.*.>", "a.b.c.d", true},
		{"orders.*", "orders.", false},
		{">", "a..b", false},
		{"a.>", "a.b.", false},
	} {
		if got := matchPattern(c.pattern, c.topic); got != c.want {
			t.Errorf("matchPattern(%q, %q) = %v", c.pattern, c.topic, got)
		}
	}
	for _, name := range []string{"a.*", "*", "a.>", "a.*.b"} {
		if !isPattern(name) || checkPattern(name) != nil {
			t.Errorf("%q: pattern %v, check %v", name, isPattern(name), checkPattern(name))
		}
	}
	for _, name := range []string{"a*", "a.b", "a>", "a.b*"} {
		if isPattern(name) {
			t.Errorf("%q taken for a pattern", name)
		}
	}
	for _, bad := range []string{"a.>.b", "a..*", ".*", "*."} {
		if checkPattern(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzMatchPattern(f *testing.F) {
	f.Add("orders.*", "orders.eu")
	f.Add("a.>", "a.b.c")
	f.Add("*.eu", "orders.eu")
	f.Add("a.*.>", "a.b")
	f.Add(">", "a..b")
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		got := matchPattern(pattern, topic)
		// A literal name matches itself only when it has no wildcard.
		if !isPattern(pattern) && checkPattern(pattern) == nil && got != (pattern == topic && !isReserved(topic)) {
			t.Fatalf("literal %q vs %q: %v", pattern, topic, got)
		}
		if checkPattern(pattern) == nil && !isReserved(topic) {
			if want := refMatch(strings.Split(pattern, "."), strings.Split(topic, ".")); got != want {
				t.Fatalf("matchPattern(%q, %q) = %v, reference %v", pattern, topic, got, want)
			}
		}
	})
}

// refMatch is NATS's matching, token by token, written plainly: '*' one
// non-empty token, '>' one or more, anything else itself.
func refMatch(p, t []string) bool {
	switch {
	case len(p) == 0:
		return len(t) == 0
	case p[0] == ">":
		return len(t) > 0 && !slices.Contains(t, "")
	case len(t) == 0 || t[0] == "":
		return false
	case p[0] == "*" || p[0] == t[0]:
		return refMatch(p[1:], t[1:])
	}
	return false
}

func isReserved(name string) bool {
	return len(name) >= len(ReservedPrefix) && name[:len(ReservedPrefix)] == ReservedPrefix
}

// A wildcard subscriber on a full mesh gets every matching topic's
// messages, in order per publisher, including those of a topic whose
// first message is published after the subscription; not the others.
func TestWildcardFullMesh(t *testing.T) {
	ps := newMesh(t, 3, Config{})
	star, tail := newCollector(), newCollector()
	if _, err := ps[1].Subscribe("orders.*", star.handle); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[2].Subscribe("orders.>", tail.handle); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "both patterns known at the publisher", func() bool {
		return len(ps[0].patternPeers("orders.eu.paris")) == 1 && len(ps[0].patternPeers("orders.eu")) == 2
	})
	ctx := context.Background()
	const n = 100
	for i := range n {
		for _, topic := range []string{"orders.eu", "orders.us", "orders.eu.paris", "billing.eu"} {
			if err := ps[0].Publish(ctx, topic, fmt.Appendf(nil, "%s %d", topic, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each topic's messages arrive in order and complete: its first ones
	// too (the publisher waited for the pattern subscribers).
	if !star.wait(2*n, 10*time.Second) || !tail.wait(3*n, 10*time.Second) {
		logPatternState(t, ps)
		tail.mu.Lock()
		got := map[string]int{}
		for _, m := range tail.msgs {
			got[m.Topic]++
		}
		tail.mu.Unlock()
		t.Logf("orders.> got, by topic: %v", got)
		t.Fatalf("orders.* got %d of %d, orders.> %d of %d", star.count(), 2*n, tail.count(), 3*n)
	}
	for _, c := range []struct {
		col    *collector
		topics []string
	}{{star, []string{"orders.eu", "orders.us"}}, {tail, []string{"orders.eu", "orders.us", "orders.eu.paris"}}} {
		c.col.mu.Lock()
		next := map[string]int{}
		for _, m := range c.col.msgs {
			want := fmt.Sprintf("%s %d", m.Topic, next[m.Topic])
			if string(m.Data) != want {
				t.Fatalf("got %q, want %q", m.Data, want)
			}
			next[m.Topic]++
		}
		c.col.mu.Unlock()
		for _, topic := range c.topics {
			if next[topic] != n {
				t.Fatalf("%d of %d on %s", next[topic], n, topic)
			}
		}
		if len(next) != len(c.topics) {
			t.Fatalf("messages from topics %v, want %v", next, c.topics)
		}
	}
	// Counted once the handler has returned: just after the collector has
	// the last message, the count may still be one short.
	testutil.Eventually(t, 10*time.Second, "the pattern's delivered count", func() bool {
		return ps[1].Stats().Topics["orders.*"].Delivered == 2*n
	})
}

func TestWildcardErrorsAndUnsubscribe(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	if _, err := ps[1].Subscribe("a.>.b", func(Message) {}); !errors.Is(err, ErrTopic) {
		t.Fatalf("bad pattern: %v", err)
	}
	if _, err := ps[1].Subscribe("a.*", func(Message) {}, WithQueueGroup("g")); !errors.Is(err, ErrTopic) {
		t.Fatalf("queue group on a pattern: %v", err)
	}
	if _, err := ps[1].Subscribe(ReservedPrefix+">", func(Message) {}); !errors.Is(err, ErrReservedTopic) {
		t.Fatalf("reserved pattern: %v", err)
	}
	if _, err := ps[1].Subscribe("a.*", func(Message) {}, WithValidator(refuseBad)); !errors.Is(err, ErrConfig) {
		t.Fatalf("validator on a pattern: %v", err)
	}
	c := newCollector()
	s, err := ps[1].Subscribe("a.*", c.handle)
	if err != nil {
		t.Fatal(err)
	}
	plain := newCollector()
	if _, err := ps[1].Subscribe("a.x", plain.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "a.x", 1)
	ctx := context.Background()
	if err := ps[0].Publish(ctx, "a.x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if !c.wait(1, 10*time.Second) || !plain.wait(1, 10*time.Second) {
		t.Fatalf("pattern got %d, plain %d", c.count(), plain.count())
	}
	s.Unsubscribe()
	ps[1].mu.Lock()
	topic := ps[1].joined["a.x"]
	ps[1].mu.Unlock()
	if slices.Contains(*topic.subs.Load(), s) {
		t.Fatal("the pattern subscription is still attached to a.x")
	}
	// Barrier: the plain subscription gets the next one; the pattern's
	// must not.
	if err := ps[0].Publish(ctx, "a.x", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if !plain.wait(2, 10*time.Second) {
		t.Fatal("plain subscription lost the second message")
	}
	if c.count() != 1 {
		t.Fatalf("unsubscribed pattern got %d messages", c.count())
	}
}

// On a partial mesh a–b–c, wildcard traffic from a reaches c through b,
// which follows a matching pattern itself; a topic first published after
// the subscriptions is found the same way.
func TestWildcardPartialMesh(t *testing.T) {
	hs, c, probes := line(t, "sensors.>", "sensors.*")
	testutil.Eventually(t, 10*time.Second, "b's pattern known at a", func() bool {
		return len(hs[0].patternPeers("sensors.t1")) == 1
	})
	// Probe until c gets a's messages through b promptly. A probe may have
	// gone directly to b while b announced only a (c not ready at b yet):
	// count from here, once the relay works.
	waitRelayOn(t, hs[0], "sensors.t1", probes)
	direct := hs[0].Stats().Topics["sensors.t1"].DirectBatches
	ctx := context.Background()
	const total = 20
	for i := range total {
		if err := hs[0].Publish(ctx, "sensors.t1", binary.AppendUvarint(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(total, 10*time.Second) {
		t.Fatalf("c got %d of %d through b", c.count(), total)
	}
	checkSequence(t, "c", c, total)
	if d := hs[0].Stats().Topics["sensors.t1"].DirectBatches - direct; d != 0 {
		t.Fatalf("a sent %d batches directly although c needs b", d)
	}
}

// A pattern subscribed after a topic's publisher started finds the topic
// (announced to it), and WaitSubscribers on the topic counts it.
func TestWildcardLateSubscriber(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ps[0].Publish(ctx, "late.x", []byte("before")); err != nil {
		t.Fatal(err)
	}
	// Publish only queues: under load the batch could still be waiting
	// when the pattern subscribes, and then reach it.
	if err := ps[0].Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	if _, err := ps[1].Subscribe("late.*", c.handle); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].WaitSubscribers(ctx, "late.x", 1); err != nil {
		logPatternState(t, ps)
		t.Fatal(err)
	}
	if err := ps[0].Publish(ctx, "late.x", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if !c.wait(1, 10*time.Second) {
		t.Fatal("the late pattern subscriber got nothing")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if string(c.msgs[0].Data) != "after" || c.msgs[0].Topic != "late.x" {
		t.Fatalf("got %q on %q", c.msgs[0].Data, c.msgs[0].Topic)
	}
}

// logPatternState logs what a failed wildcard test needs to tell where a
// topic was lost: each node's ready peers, subscription mirror, registry,
// joined topics and patterns, and its topics' counters.
func logPatternState(t *testing.T, ps []*PubSub) {
	t.Helper()
	for i, p := range ps {
		p.topics.mu.Lock()
		t.Logf("node %d: ready %v, subscriptions %v, registry %v", i, p.topics.ready, p.topics.subs, p.topics.reg)
		p.topics.mu.Unlock()
		p.mu.Lock()
		for name, tp := range p.joined {
			t.Logf("node %d: joined %q, announced %v, subscribed %v", i, name, tp.announced.Load(), tp.subscribed.Load())
		}
		t.Logf("node %d: patterns %v", i, p.patterns)
		p.mu.Unlock()
		t.Logf("node %d: %+v", i, p.Stats().Topics)
	}
}
