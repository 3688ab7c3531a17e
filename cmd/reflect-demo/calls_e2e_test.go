package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// End-to-end tests of requests, queue groups, wildcards, headers and send:
// demos on loopback without mDNS, joined to a hub with -peer.

// star starts a hub and n spokes that join it, and waits until the hub has
// them all.
func star(t *testing.T, n int) (hub *proc, spokes []*proc) {
	t.Helper()
	key := testKey(t)
	hub = startDemo(t, "hub", nil, loopback(key)...)
	for i := range n {
		s := startDemo(t, fmt.Sprintf("s%d", i+1), nil, loopback(key, hub.tcp4())...)
		s.Must("wait-peers 1 5")
		spokes = append(spokes, s)
	}
	hub.Must(fmt.Sprintf("wait-peers %d 5", n))
	return hub, spokes
}

// isText matches a message event on topic whose data is {"text": text}.
func isText(topic, text string) func(testutil.Event) bool {
	return func(e testutil.Event) bool {
		d, _ := e["data"].(map[string]any)
		return e.Kind() == "message" && e.Str("topic") == topic && d["text"] == text
	}
}

// isRequest matches a request event on topic.
func isRequest(topic string) func(testutil.Event) bool {
	return func(e testutil.Event) bool { return e.Kind() == "request" && e.Str("topic") == topic }
}

// A request reaches the responder and its reply comes back; no
// responders, a responder's error and a timeout are told apart by reason.
func TestRequestReply(t *testing.T) {
	t.Parallel()
	a, spokes := star(t, 1)
	b := spokes[0]
	a.Must("reply svc pong")
	a.Must("reply -e broken out of stock")
	a.Must("reply -d 60 slow zzz")
	for _, topic := range []string{"svc", "broken", "slow"} {
		b.Must("wait-responders " + topic + " 1 5")
	}

	r := b.Must("req -h trace=t1 svc ping")
	if r.Str("from") != a.ID || r.Str("topic") != "svc" || !reflect.DeepEqual(r["data"], map[string]any{"text": "pong"}) {
		t.Errorf("req svc: %v", r)
	}
	if e := a.Next(isRequest("svc")); e.Str("from") != b.ID ||
		!reflect.DeepEqual(e["data"], map[string]any{"text": "ping"}) ||
		!reflect.DeepEqual(e["headers"], map[string]any{"trace": []any{"t1"}}) {
		t.Errorf("a: request %v", e)
	}

	start := time.Now()
	r = b.MustFail("req nobody hello")
	if el := time.Since(start); r.Str("reason") != "no-responders" || el > 2*time.Second {
		t.Errorf("req nobody after %v: %v, want reason no-responders at once", el, r)
	}
	r = b.MustFail("req broken x")
	if r.Str("reason") != "remote" || r.Str("from") != a.ID || !strings.Contains(r.Str("error"), "out of stock") {
		t.Errorf("req broken: %v, want reason remote from a with its text", r)
	}
	start = time.Now()
	r = b.MustFail("req -t 0.5 slow x")
	if el := time.Since(start); r.Str("reason") != "timeout" || el < 500*time.Millisecond || el > 4*time.Second {
		t.Errorf("req slow after %v: %v, want reason timeout after 0.5 s", el, r)
	}

	a.Must("unreply svc")
	if r := b.MustFail("req svc ping"); r.Str("reason") != "no-responders" {
		t.Errorf("req after unreply: %v", r)
	}
	a.MustFail("unreply svc")
}

// Each message published on a topic reaches one member of a queue group
// (of two demos) exactly once; each request to a queue group of
// responders reaches one of them, both in turn.
func TestQueueGroup(t *testing.T) {
	t.Parallel()
	p, members := star(t, 2)
	for i, m := range members {
		m.Must("sub jobs -q workers")
		m.Must(fmt.Sprintf("reply -q answerers calc from-%d", i))
		// pubsub has no wait for queue-group members: a plain
		// subscription made after the membership is announced after it
		// (GossipSub sends a node's subscriptions in order), so once p
		// sees it, p knows the member too.
		m.Must("sub ready")
	}
	p.Must("wait-subscribers ready 2 5")
	p.Must("wait-responders calc 2 5")

	const n = 20
	for i := range n {
		p.Must(fmt.Sprintf("pub jobs job-%d", i))
	}
	// Barriers: two more messages, which go one to each member (the
	// publisher takes the member nodes in turn); a member's stream from p
	// delivers in order, so each member has printed its jobs before its
	// end marker.
	p.Must("pub jobs end-a")
	p.Must("pub jobs end-b")
	seen := map[string]string{}
	for _, m := range members {
		end := m.Next(func(e testutil.Event) bool {
			d, _ := e["data"].(map[string]any)
			s, _ := d["text"].(string)
			return e.Kind() == "message" && strings.HasPrefix(s, "end-")
		})
		if end.Str("group") != "workers" || end.Str("from") != p.ID {
			t.Errorf("%s: %v", m.Name, end)
		}
		for _, e := range m.Drain(testutil.IsMessage("jobs", p.ID)) {
			text, _ := e["data"].(map[string]any)["text"].(string)
			if prev, dup := seen[text]; dup {
				t.Errorf("%s got %s, which %s got too", m.Name, text, prev)
			}
			seen[text] = m.Name
			if e.Str("group") != "workers" {
				t.Errorf("%s: %v without its group", m.Name, e)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct jobs delivered, want %d: %v", len(seen), n, seen)
	}

	from := map[string]int{}
	for range 4 {
		r := p.Must("req calc x")
		from[r.Str("from")]++
	}
	if from[members[0].ID] == 0 || from[members[1].ID] == 0 {
		t.Errorf("answers by responder: %v, want both members", from)
	}
	got := 0
	for _, m := range members {
		m.Must("id") // barrier: the request events came before its reply
		got += len(m.Drain(isRequest("calc")))
	}
	if got != 4 {
		t.Errorf("%d request events for 4 requests", got)
	}
}

// Wildcard subscriptions get the messages of every matching topic; the
// events name the concrete topic and the pattern.
func TestWildcardSubscriptions(t *testing.T) {
	t.Parallel()
	p, spokes := star(t, 1)
	s := spokes[0]
	topics := []string{"orders.new", "orders.paid", "orders.eu.new"}
	s.Must("sub orders.*")
	s.Must("sub orders.>")
	// Waiting for a topic's subscribers joins it, which announces it to
	// the patterns that match: s follows it and counts.
	for _, topic := range topics {
		p.Must("wait-subscribers " + topic + " 1 5")
	}
	p.Must("pub orders.new new")
	p.Must("pub orders.paid paid")
	p.Must("pub orders.eu.new eu")
	for _, c := range []struct{ topic, text, sub string }{
		{"orders.new", "new", "orders.*"},
		{"orders.new", "new", "orders.>"},
		{"orders.paid", "paid", "orders.*"},
		{"orders.paid", "paid", "orders.>"},
		{"orders.eu.new", "eu", "orders.>"},
	} {
		e := s.Next(func(e testutil.Event) bool { return isText(c.topic, c.text)(e) && e.Str("sub") == c.sub })
		if e.Str("from") != p.ID {
			t.Errorf("%v", e)
		}
	}
	s.Must("unsub orders.*")
	s.Must("unsub orders.>")
	s.MustFail("unsub orders.>")
}

// Headers given with -h arrive with the message, several values of a key
// in order, control characters intact in JSON.
func TestHeadersRoundTrip(t *testing.T) {
	t.Parallel()
	p, spokes := star(t, 1)
	s := spokes[0]
	s.Must("sub h")
	p.Must("wait-subscribers h 1 5")
	p.Must(`pub -h trace=abc -h trace=def -h "note=two words" -h "ctl=a\x1bb" h {"n":1}`)
	p.Must("pub h no headers")
	e := s.Next(testutil.IsMessage("h", p.ID))
	want := map[string]any{"trace": []any{"abc", "def"}, "note": []any{"two words"}, "ctl": []any{"a\x1bb"}}
	if !reflect.DeepEqual(e["headers"], want) || !reflect.DeepEqual(e["data"], map[string]any{"n": 1.0}) {
		t.Errorf("message %v, want headers %v", e, want)
	}
	if e := s.Next(testutil.IsMessage("h", p.ID)); e["headers"] != nil {
		t.Errorf("message without headers: %v", e)
	}
}

// send reaches the named peer's subscribers only.
func TestSendToOnePeer(t *testing.T) {
	t.Parallel()
	hub, spokes := star(t, 2)
	a, c := spokes[0], spokes[1]
	a.Must("sub direct")
	c.Must("sub direct")
	hub.Must("wait-subscribers direct 2 5")
	hub.Must("send -h k=v " + a.ID + " direct for a")
	if e := a.Next(isText("direct", "for a")); e.Str("from") != hub.ID || !reflect.DeepEqual(e["headers"], map[string]any{"k": []any{"v"}}) {
		t.Errorf("a: %v", e)
	}
	// Barrier: a message to c after the one to a, on the same stream to c
	// that a copy of the first would have taken.
	hub.Must("send " + c.ID + " direct for c")
	c.Next(isText("direct", "for c"))
	if es := c.Drain(testutil.IsKind("message")); len(es) != 0 {
		t.Errorf("c got %v", es)
	}
	if r := hub.MustFail("send " + c.ID + " elsewhere x"); r.Str("reason") != "no-subscriber" {
		t.Errorf("send to a non-subscriber: %v", r)
	}
	hub.MustFail("send not-a-peer direct x")
}

// Human mode: replies and errors are readable, reasons shown, and remote
// control characters escaped. One demo answers its own requests.
func TestHumanModeCalls(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		"reply svc pong",
		`req -h "k=a\x1bb" svc {"text":"\u001b[2Jhi"}`,
		"req nobody x",
		"reply -e bad out of stock",
		"req bad x",
		"reply -d 60 slow zzz",
		"req -t 0.2 slow x",
		"",
	}, "\n")
	out, errOut, code := runOnce(t, in, nil, "-key", testKey(t), "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0")
	if code != 1 { // the failed reqs
		t.Fatalf("exit status %d, want 1; stderr %s", code, errOut)
	}
	for _, want := range []string{
		"\n? [svc] request from …", ` {k=a\x1bb}: \x1b[2Jhi` + "\n",
		"\n[svc] reply from …", ": pong\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// Errors go to stderr, escaped as well.
	for _, want := range []string{
		"\nerror: req [no-responders]: no responders on \"nobody\"\n",
		"\nerror: req [remote]: ", ": out of stock\n",
		"\nerror: req [timeout]: no reply on \"slow\" within 200ms\n",
	} {
		if !strings.Contains("\n"+errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, "error:") {
		t.Errorf("an error reached stdout:\n%s", out)
	}
	if strings.Contains(out+errOut, "\x1b") {
		t.Errorf("an escape character reached the output:\n%q", out+errOut)
	}
}
