package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// End-to-end tests: real demo processes (this test binary re-executed),
// driven through stdin, their JSON lines read with timeouts. The mDNS tests
// run in the test binary's private network namespace, which the processes
// inherit; each test has its own secret, so meshes of parallel tests stay
// apart.

// Two instances find each other by mDNS, exchange messages and share the
// store.
func TestMDNSTwoInstances(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	key := testKey(t)
	b := startDemo(t, "b", nil, "-json", "-key", key)
	b.Must("sub chat")
	b.Must("watch")
	a := startDemo(t, "a", nil, "-json", "-key", key)
	a.Must("wait-peers 1")
	a.Next(testutil.IsPeer(b.ID, "joined"))
	b.Next(testutil.IsPeer(a.ID, "joined"))

	a.Must(`pub chat {"text": "hi", "n": 1}`)
	a.Must("pub chat hello  world")
	if d := b.Message("chat", a.ID); d["text"] != "hi" || d["n"] != 1.0 {
		t.Errorf("b got %v", d)
	}
	if d := b.Message("chat", a.ID); !reflect.DeepEqual(d, map[string]any{"text": "hello  world"}) {
		t.Errorf("b got %v", d)
	}

	a.Must("set color light blue")
	a.Must(`set doc {"a": [1, 2]}`)
	if c := b.Next(testutil.IsChange("color", "remote")); c["value"] != "light blue" || c["deleted"] != false {
		t.Errorf("change %v", c)
	}
	b.Next(testutil.IsChange("doc", "remote"))
	if r := b.Must("get doc"); r["found"] != true || !reflect.DeepEqual(r["value"], map[string]any{"a": []any{1.0, 2.0}}) {
		t.Errorf("get doc: %v", r)
	}
	if r := b.Must("get color"); r["value"] != "light blue" {
		t.Errorf("get color: %v", r)
	}
	a.Must("watch col")
	b.Must("del color")
	if c := b.Next(testutil.IsChange("color", "local")); c["deleted"] != true || c["value"] != nil {
		t.Errorf("change %v", c)
	}
	if c := a.Next(testutil.IsChange("color", "remote")); c["deleted"] != true {
		t.Errorf("a: change %v", c)
	}
	if r := a.Must("get color"); r["found"] != false || r["value"] != nil {
		t.Errorf("get color after del: %v", r)
	}
	if r := a.Must("keys"); !reflect.DeepEqual(r["keys"], []any{"doc"}) {
		t.Errorf("keys: %v", r)
	}
	if r := a.Must("peers"); !reflect.DeepEqual(r["peers"], []any{b.ID}) {
		t.Errorf("peers: %v", r)
	}
	if code := a.EndInput(); code != 0 {
		t.Errorf("a: exit status %d", code)
	}
	b.Next(testutil.IsPeer(a.ID, "left"))
	if code := b.EndInput(); code != 0 {
		t.Errorf("b: exit status %d", code)
	}
}

// A third instance started later finds the keys written before it joined
// and reaches both others' subscriptions.
func TestMDNSLateJoiner(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	key := testKey(t)
	a := startDemo(t, "a", nil, "-json", "-key", key)
	b := startDemo(t, "b", nil, "-json", "-key", key)
	a.Must("sub chat")
	b.Must("sub chat")
	a.Must("wait-peers 1")
	b.Must("wait-peers 1")
	a.Must("watch")
	b.Must("watch")
	a.Must("set k1 v1")
	b.Must(`set k2 {"x":1}`)
	a.Next(testutil.IsChange("k2", "remote"))
	b.Next(testutil.IsChange("k1", "remote"))

	c := startDemo(t, "c", nil, "-json", "-key", key)
	c.Must("wait-peers 2")
	c.Must("wait-synced")
	if r := c.Must("get k1"); r["value"] != "v1" || r["found"] != true {
		t.Errorf("get k1: %v", r)
	}
	if r := c.Must("get k2"); !reflect.DeepEqual(r["value"], map[string]any{"x": 1.0}) {
		t.Errorf("get k2: %v", r)
	}
	if r := c.Must("keys k"); !reflect.DeepEqual(r["keys"], []any{"k1", "k2"}) {
		t.Errorf("keys: %v", r)
	}
	c.Must("pub chat from c")
	for _, p := range []*proc{a, b} {
		if d := p.Message("chat", c.ID); d["text"] != "from c" {
			t.Errorf("%s got %v", p.Name, d)
		}
	}
	for _, p := range []*proc{c, b, a} {
		if code := p.EndInput(); code != 0 {
			t.Errorf("%s: exit status %d", p.Name, code)
		}
	}
}

// Without mDNS, on loopback, an instance given another's address with -peer
// joins it; SIGTERM shuts an instance down cleanly and the other sees it
// leave.
func TestLoopbackPeer(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := startDemo(t, "a", nil, loopback(key)...)
	a.Must("sub news")
	b := startDemo(t, "b", nil, loopback(key, a.tcp4())...)
	b.Must("wait-peers 1 5")
	a.Next(testutil.IsPeer(b.ID, "joined"))
	b.Must(`pub news {"headline":"loopback works"}`)
	if d := a.Message("news", b.ID); d["headline"] != "loopback works" {
		t.Errorf("a got %v", d)
	}
	b.Must("set shared 42")
	a.Must("watch shared")
	a.Must("wait-synced 5")
	var got any
	testutil.Eventually(t, waitFor, "b's key on a", func() bool {
		r := a.Must("get shared")
		got = r["value"]
		return r["found"] == true
	})
	if got != 42.0 {
		t.Errorf("a: get shared = %v, want 42", got)
	}
	if r := b.Must("id"); r["id"] != b.ID {
		t.Errorf("id: %v", r)
	} else if addrs, ok := r.Strs("addrs"); !ok || len(addrs) == 0 {
		t.Errorf("id: %v", r)
	}

	b.signal(syscall.SIGTERM)
	if code := b.ExitStatus(); code != 0 {
		t.Errorf("b: exit status %d after SIGTERM", code)
	}
	a.Next(testutil.IsPeer(b.ID, "left"))
	if ps := a.Peers(); len(ps) != 0 {
		t.Errorf("a still lists %v", ps)
	}
	// A signal interrupts a waiting command, which gets its reply.
	if err := a.Send("wait-peers 5 30"); err != nil {
		t.Fatal(err)
	}
	// No event says that a command has started: give the demo time to read
	// it (a signal before that ends the demo with no reply at all).
	time.Sleep(300 * time.Millisecond)
	a.signal(syscall.SIGINT)
	if r := a.Next(testutil.IsReply); r["event"] != "error" || r["cmd"] != "wait-peers" || r["error"] != "interrupted" {
		t.Errorf("a: reply %v, want an interrupted wait-peers", r)
	}
	if code := a.ExitStatus(); code != 1 { // the interrupted command failed
		t.Errorf("a: exit status %d after SIGINT, want 1", code)
	}
}

// An instance with another secret never joins: wait-peers fails, no message
// reaches it, and nobody lists it, although mDNS runs and it dials a member.
func TestWrongKeyStaysAlone(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	key := testKey(t)
	a := startDemo(t, "a", nil, "-json", "-key", key)
	b := startDemo(t, "b", nil, "-json", "-key", key)
	b.Must("sub chat")
	w := startDemo(t, "w", nil, "-json", "-key", key+"-wrong", "-peer", a.tcp4())
	w.Must("sub chat")
	a.Must("wait-peers 1")

	start := time.Now()
	r := w.MustFail("wait-peers 1 2")
	if el := time.Since(start); el < 2*time.Second || el > 5*time.Second {
		t.Errorf("wait-peers 1 2 took %v", el)
	}
	if !strings.Contains(r.Str("error"), "0 of 1 peers") {
		t.Errorf("error: %v", r)
	}
	a.Must("pub chat members only")
	if d := b.Message("chat", a.ID); d["text"] != "members only" {
		t.Errorf("b got %v", d)
	}
	// Barriers: the replies to commands sent after b got the message. A
	// process writes its events and replies in order, so each one's events
	// from before its reply are read by now. Had w joined a, or b (which
	// could relay to it), that one would have printed the peer event before
	// its reply; without either, nothing can have reached w.
	if ps := a.Peers(); !reflect.DeepEqual(ps, []string{b.ID}) {
		t.Errorf("a lists %v, want only b", ps)
	}
	if ps := b.Peers(); !reflect.DeepEqual(ps, []string{a.ID}) {
		t.Errorf("b lists %v, want only a", ps)
	}
	if ps := w.Peers(); len(ps) != 0 {
		t.Errorf("w lists %v", ps)
	}
	for _, p := range []*proc{a, b} {
		if es := p.Drain(testutil.IsPeer(w.ID, "")); len(es) != 0 {
			t.Errorf("%s saw w: %v", p.Name, es)
		}
	}
	if es := w.Drain(testutil.IsKind("message", "peer")); len(es) != 0 {
		t.Errorf("w received %v", es)
	}
	w.Must("id") // still running
}

// Bad lines get one error reply each, in order, and the demo keeps running.
// The secret comes from $REFLECT_KEY.
func TestBadInput(t *testing.T) {
	t.Parallel()
	p := startDemo(t, "p", []string{keyEnv + "=" + testKey(t)}, "-json", "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0")
	cases := []struct {
		line, event, cmd, errPart string
	}{
		{"frob", "error", "frob", "unknown command"},
		{"pub chat {bad", "error", "pub", "bad JSON"},
		{`pub chat {"a":1} trailing`, "error", "pub", "bad JSON"},
		{"pub chat", "error", "pub", "usage: pub [-h K=V]... TOPIC MESSAGE"},
		{"pub", "error", "pub", "usage"},
		{"sub", "error", "sub", "usage: sub [-q GROUP] TOPIC"},
		{"sub a b", "error", "sub", "usage"},
		{"sub _reflect/store/default", "error", "sub", "reserved"},
		{"unsub nope", "error", "unsub", "not subscribed"},
		{"set k", "error", "set", "usage: set KEY VALUE"},
		{"get", "error", "get", "usage"},
		{"del a b", "error", "del", "usage"},
		{"peers now", "error", "peers", "usage"},
		{"wait-peers", "error", "wait-peers", "usage"},
		{"wait-peers x", "error", "wait-peers", "number of peers"},
		{"wait-peers 1 -3", "error", "wait-peers", "positive"},
		{"wait-synced soon", "error", "wait-synced", "positive"},
		{"", "", "", ""},
		{"   # a comment", "", "", ""},
		{"wait-peers 1 0.3", "error", "wait-peers", "0 of 1 peers"},
		{"pub chat plain text", "ok", "pub", ""},
		{"sub chat", "ok", "sub", ""},
		{"sub chat", "ok", "sub", ""},
		{"unsub chat", "ok", "unsub", ""},
		{"set k  v w ", "ok", "set", ""},
		{"get k", "value", "", ""},
		{"wait-peers 0", "ok", "wait-peers", ""},
		{"wait-synced 5", "ok", "wait-synced", ""},
		{"help", "ok", "help", ""},
		{"stats", "stats", "", ""},
		{"id", "id", "", ""},
	}
	// All at once: the replies must come back in order.
	lines := make([]string, len(cases))
	for i, c := range cases {
		lines[i] = c.line
	}
	if err := p.Send(lines...); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.event == "" {
			continue
		}
		r := p.Next(testutil.IsReply)
		if r["event"] != c.event || (c.cmd != "" && r["cmd"] != c.cmd) {
			t.Fatalf("%q: reply %v, want %s for %s", c.line, r, c.event, c.cmd)
		}
		if e := r.Str("error"); !strings.Contains(e, c.errPart) {
			t.Errorf("%q: error %q, want it to mention %q", c.line, e, c.errPart)
		}
		switch c.line {
		case "get k":
			if r["value"] != "v w " {
				t.Errorf("get k: %v", r)
			}
		case "stats":
			for _, f := range []string{"goroutines", "fds", "peers", "pubsub", "store"} {
				if _, ok := r[f]; !ok {
					t.Errorf("stats without %q: %v", f, r)
				}
			}
			if r.Num("goroutines") < 1 || r.Num("fds") < 3 || r.Num("store", "keys") != 1 {
				t.Errorf("stats: %v", r)
			}
		case "help":
			for _, u := range usage {
				if !strings.Contains(r.Str("help"), u.name) {
					t.Errorf("help does not mention %s", u.name)
				}
			}
		}
	}
	// A line over the limit is refused whole; the next one works.
	if err := p.Send("set big " + strings.Repeat("x", maxLine)); err != nil {
		t.Fatal(err)
	}
	if r := p.Next(testutil.IsReply); r["event"] != "error" || r["cmd"] != "set" || !strings.Contains(r.Str("error"), "longer") {
		t.Errorf("long line: %v", r)
	}
	if r := p.Must("get big"); r["found"] != false {
		t.Errorf("get big: %v", r)
	}
	p.Must("quit")
	if code := p.ExitStatus(); code != 1 { // commands failed
		t.Errorf("exit status %d after quit, want 1", code)
	}
}

// At the end of input the demo sends what its last commands started (a
// message, a store write) and exits 0: the README's scripted example.
func TestEOFFinishesLastCommands(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	key := testKey(t)
	b := startDemo(t, "b", nil, "-json", "-key", key)
	b.Must("sub chat")
	b.Must("watch")
	a := startDemo(t, "a", nil, "-json", "-key", key)
	if err := a.Send("wait-peers 1", `pub chat {"text":"hi"}`, "set last word"); err != nil {
		t.Fatal(err)
	}
	if code := a.EndInput(); code != 0 {
		t.Errorf("a: exit status %d", code)
	}
	for _, want := range []string{"wait-peers", "pub", "set"} {
		if r := a.Next(testutil.IsReply); r["event"] != "ok" || r["cmd"] != want {
			t.Errorf("a: reply %v, want ok for %s", r, want)
		}
	}
	if d := b.Message("chat", a.ID); d["text"] != "hi" {
		t.Errorf("b got %v", d)
	}
	if c := b.Next(testutil.IsChange("last", "remote")); c["value"] != "word" {
		t.Errorf("b: change %v", c)
	}
	b.Next(testutil.IsPeer(a.ID, "left"))
}

// No secret at all, bad flags, bad addresses: exit status 2, a message on
// stderr, nothing on stdout.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		errPart string
	}{
		{"no key", []string{"-json"}, "REFLECT_KEY"},
		{"empty key", []string{"-key", ""}, "no secret"},
		{"unknown flag", []string{"-key", "k", "-bogus"}, "bogus"},
		{"bad command", []string{"-key", "k", "extra"}, "unknown command"},
		{"bad command args", []string{"-key", "k", "get"}, "usage: get KEY"},
		{"comment command", []string{"-key", "k", "#", "x"}, "no command"},
		{"negative wait", []string{"-key", "k", "-wait", "-1s", "get", "k"}, "negative"},
		{"bad store", []string{"-key", "k", "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0", "-store", "a b"}, "Name"},
		{"bad peer", []string{"-key", "k", "-mdns=false", "-peer", "not-a-multiaddr"}, "peer"},
		{"bad listen", []string{"-key", "k", "-mdns=false", "-listen", "garbage"}, "listen"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runOnce(t, "", nil, c.args...)
			if code != 2 || out != "" || !strings.Contains(strings.ToLower(errOut), strings.ToLower(c.errPart)) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, a message about %q", code, out, errOut, c.errPart)
			}
		})
	}
}

// Human mode prints readable lines; -identity keeps the peer id across
// restarts.
func TestHumanModeAndIdentity(t *testing.T) {
	t.Parallel()
	idFile := filepath.Join(t.TempDir(), "id.key")
	args := []string{"-key", testKey(t), "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0", "-identity", idFile}
	out1, errOut, code := runOnce(t, "set greeting hello there\nget greeting\nget nothing\nfrob\nkeys\nhelp\n", nil, args...)
	if code != 1 { // frob failed
		t.Fatalf("exit status %d, want 1; stderr %s", code, errOut)
	}
	for _, want := range []string{"peer id 12D3", "/ip4/127.0.0.1/tcp/", "\nok\nhello there\n(nothing not found)\ngreeting\n", "wait-peers N [SECONDS]"} {
		if !strings.Contains(out1, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out1)
		}
	}
	if want := "error: frob: unknown command"; !strings.Contains(errOut, want) || strings.Contains(out1, want) {
		t.Errorf("want %q on stderr only; stdout:\n%s\nstderr:\n%s", want, out1, errOut)
	}
	if strings.Contains(out1, "{\"event\"") || strings.Contains(out1, "> ") {
		t.Errorf("JSON or a prompt in human mode without a terminal:\n%s", out1)
	}
	out2, _, code := runOnce(t, "", nil, args...)
	if code != 0 { // nothing failed
		t.Fatalf("second run: exit status %d", code)
	}
	id := func(out string) string {
		f := strings.Fields(strings.TrimPrefix(out, "peer id "))
		if len(f) == 0 {
			return ""
		}
		return strings.TrimSuffix(f[0], ",")
	}
	if id(out1) == "" || id(out1) != id(out2) {
		t.Errorf("peer ids %q and %q, want the same from %s", id(out1), id(out2), idFile)
	}
}
