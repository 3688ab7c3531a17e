package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

// End-to-end tests: real demo processes (this test binary re-executed),
// driven through stdin, their JSON lines read with timeouts. The mDNS tests
// run in the test binary's private network namespace, which the processes
// inherit; each test has its own secret, so meshes of parallel tests stay
// apart.

// isChange matches a change event of key from the given origin.
func isChange(key, origin string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["event"] == "change" && m["key"] == key && m["origin"] == origin
	}
}

func isPeer(id, state string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["event"] == "peer" && m["id"] == id && m["state"] == state
	}
}

// Two instances find each other by mDNS, exchange messages and share the
// store.
func TestMDNSTwoInstances(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	key := testKey(t)
	b := startDemo(t, "b", "-json", "-key", key)
	b.must("sub chat", "ok")
	b.must("watch", "ok")
	a := startDemo(t, "a", "-json", "-key", key)
	a.must("wait-peers 1", "ok")
	a.next(isPeer(b.id, "joined"))
	b.next(isPeer(a.id, "joined"))

	a.must(`pub chat {"text": "hi", "n": 1}`, "ok")
	a.must("pub chat hello  world", "ok")
	if d := b.message("chat", a.id); d["text"] != "hi" || d["n"] != 1.0 {
		t.Errorf("b got %v", d)
	}
	if d := b.message("chat", a.id); !reflect.DeepEqual(d, map[string]any{"text": "hello  world"}) {
		t.Errorf("b got %v", d)
	}

	a.must("set color light blue", "ok")
	a.must(`set doc {"a": [1, 2]}`, "ok")
	if c := b.next(isChange("color", "remote")); c["value"] != "light blue" || c["deleted"] != false {
		t.Errorf("change %v", c)
	}
	b.next(isChange("doc", "remote"))
	if r := b.must("get doc", "value"); r["found"] != true || !reflect.DeepEqual(r["value"], map[string]any{"a": []any{1.0, 2.0}}) {
		t.Errorf("get doc: %v", r)
	}
	if r := b.must("get color", "value"); r["value"] != "light blue" {
		t.Errorf("get color: %v", r)
	}
	a.must("watch col", "ok")
	b.must("del color", "ok")
	if c := b.next(isChange("color", "local")); c["deleted"] != true || c["value"] != nil {
		t.Errorf("change %v", c)
	}
	if c := a.next(isChange("color", "remote")); c["deleted"] != true {
		t.Errorf("a: change %v", c)
	}
	if r := a.must("get color", "value"); r["found"] != false || r["value"] != nil {
		t.Errorf("get color after del: %v", r)
	}
	if r := a.must("keys", "keys"); !reflect.DeepEqual(r["keys"], []any{"doc"}) {
		t.Errorf("keys: %v", r)
	}
	if r := a.must("peers", "peers"); !reflect.DeepEqual(r["peers"], []any{b.id}) {
		t.Errorf("peers: %v", r)
	}
	if code := a.wait(); code != 0 {
		t.Errorf("a: exit status %d", code)
	}
	b.next(isPeer(a.id, "left"))
	if code := b.wait(); code != 0 {
		t.Errorf("b: exit status %d", code)
	}
}

// A third instance started later finds the keys written before it joined
// and reaches both others' subscriptions.
func TestMDNSLateJoiner(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	key := testKey(t)
	a := startDemo(t, "a", "-json", "-key", key)
	b := startDemo(t, "b", "-json", "-key", key)
	a.must("sub chat", "ok")
	b.must("sub chat", "ok")
	a.must("wait-peers 1", "ok")
	b.must("wait-peers 1", "ok")
	a.must("watch", "ok")
	b.must("watch", "ok")
	a.must("set k1 v1", "ok")
	b.must(`set k2 {"x":1}`, "ok")
	a.next(isChange("k2", "remote"))
	b.next(isChange("k1", "remote"))

	c := startDemo(t, "c", "-json", "-key", key)
	c.must("wait-peers 2", "ok")
	c.must("wait-synced", "ok")
	if r := c.must("get k1", "value"); r["value"] != "v1" || r["found"] != true {
		t.Errorf("get k1: %v", r)
	}
	if r := c.must("get k2", "value"); !reflect.DeepEqual(r["value"], map[string]any{"x": 1.0}) {
		t.Errorf("get k2: %v", r)
	}
	if r := c.must("keys k", "keys"); !reflect.DeepEqual(r["keys"], []any{"k1", "k2"}) {
		t.Errorf("keys: %v", r)
	}
	c.must("pub chat from c", "ok")
	for _, p := range []*proc{a, b} {
		if d := p.message("chat", c.id); d["text"] != "from c" {
			t.Errorf("%s got %v", p.name, d)
		}
	}
	for _, p := range []*proc{c, b, a} {
		if code := p.wait(); code != 0 {
			t.Errorf("%s: exit status %d", p.name, code)
		}
	}
}

// Without mDNS, on loopback, an instance given another's address with -peer
// joins it; SIGTERM shuts an instance down cleanly and the other sees it
// leave.
func TestLoopbackPeer(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := startDemo(t, "a", loopback(key)...)
	a.must("sub news", "ok")
	b := startDemo(t, "b", loopback(key, a.tcp4())...)
	b.must("wait-peers 1 5", "ok")
	a.next(isPeer(b.id, "joined"))
	b.must(`pub news {"headline":"loopback works"}`, "ok")
	if d := a.message("news", b.id); d["headline"] != "loopback works" {
		t.Errorf("a got %v", d)
	}
	b.must("set shared 42", "ok")
	a.must("watch shared", "ok")
	a.must("wait-synced 5", "ok")
	var got any
	for deadline := time.Now().Add(waitFor); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r := a.must("get shared", "value"); r["found"] == true {
			got = r["value"]
			break
		}
	}
	if got != 42.0 {
		t.Errorf("a: get shared = %v, want 42", got)
	}
	if r := b.must("id", "id"); r["id"] != b.id || len(r["addrs"].([]any)) == 0 {
		t.Errorf("id: %v", r)
	}

	b.signal(syscall.SIGTERM)
	if code := b.exitStatus(); code != 0 {
		t.Errorf("b: exit status %d after SIGTERM", code)
	}
	a.next(isPeer(b.id, "left"))
	if r := a.must("peers", "peers"); len(r["peers"].([]any)) != 0 {
		t.Errorf("a still lists %v", r["peers"])
	}
	// A signal interrupts a waiting command, which gets its reply.
	a.send("wait-peers 5 30")
	time.Sleep(300 * time.Millisecond) // for the command to start
	a.signal(syscall.SIGINT)
	if r := a.next(isReply); r["event"] != "error" || r["cmd"] != "wait-peers" || r["error"] != "interrupted" {
		t.Errorf("a: reply %v, want an interrupted wait-peers", r)
	}
	if code := a.exitStatus(); code != 0 {
		t.Errorf("a: exit status %d after SIGINT", code)
	}
}

// An instance with another secret never joins: wait-peers fails, no message
// reaches it, and nobody lists it, although mDNS runs and it dials a member.
func TestWrongKeyStaysAlone(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	key := testKey(t)
	a := startDemo(t, "a", "-json", "-key", key)
	b := startDemo(t, "b", "-json", "-key", key)
	b.must("sub chat", "ok")
	w := startDemo(t, "w", "-json", "-key", key+"-wrong", "-peer", a.tcp4())
	w.must("sub chat", "ok")
	a.must("wait-peers 1", "ok")

	start := time.Now()
	r := w.must("wait-peers 1 2", "error")
	if el := time.Since(start); el < 2*time.Second || el > 5*time.Second {
		t.Errorf("wait-peers 1 2 took %v", el)
	}
	if !strings.Contains(r["error"].(string), "0 of 1 peers") {
		t.Errorf("error: %v", r)
	}
	a.must("pub chat members only", "ok")
	if d := b.message("chat", a.id); d["text"] != "members only" {
		t.Errorf("b got %v", d)
	}
	if m, err := w.tryNext(500*time.Millisecond, func(m map[string]any) bool {
		return m["event"] == "message" || m["event"] == "peer"
	}); err == nil {
		t.Errorf("w received %v", m)
	}
	if r := w.must("peers", "peers"); len(r["peers"].([]any)) != 0 {
		t.Errorf("w lists %v", r["peers"])
	}
	if r := a.must("peers", "peers"); !reflect.DeepEqual(r["peers"], []any{b.id}) {
		t.Errorf("a lists %v, want only b", r["peers"])
	}
	w.must("id", "id") // still running
}

// Bad lines get one error reply each, in order, and the demo keeps running.
// The secret comes from $REFLECT_KEY.
func TestBadInput(t *testing.T) {
	t.Parallel()
	p := startRaw(t, "p", []string{keyEnv + "=" + testKey(t)}, "-json", "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0")
	if r := p.next(func(map[string]any) bool { return true }); r["event"] != "ready" {
		t.Fatalf("first line %v", r)
	}
	cases := []struct {
		line, event, cmd, errPart string
	}{
		{"frob", "error", "frob", "unknown command"},
		{"pub chat {bad", "error", "pub", "bad JSON"},
		{`pub chat {"a":1} trailing`, "error", "pub", "bad JSON"},
		{"pub chat", "error", "pub", "usage: pub TOPIC MESSAGE"},
		{"pub", "error", "pub", "usage"},
		{"sub", "error", "sub", "usage: sub TOPIC"},
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
	for _, c := range cases {
		p.send(c.line)
	}
	for _, c := range cases {
		if c.event == "" {
			continue
		}
		r := p.next(isReply)
		if r["event"] != c.event || (c.cmd != "" && r["cmd"] != c.cmd) {
			t.Fatalf("%q: reply %v, want %s for %s", c.line, r, c.event, c.cmd)
		}
		if e, _ := r["error"].(string); !strings.Contains(e, c.errPart) {
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
			if r["goroutines"].(float64) < 1 || r["fds"].(float64) < 3 || r["store"].(map[string]any)["keys"] != 1.0 {
				t.Errorf("stats: %v", r)
			}
		case "help":
			for _, u := range usage {
				if !strings.Contains(r["help"].(string), u.name) {
					t.Errorf("help does not mention %s", u.name)
				}
			}
		}
	}
	// A line over the limit is refused whole; the next one works.
	p.send("set big " + strings.Repeat("x", maxLine))
	if r := p.next(isReply); r["event"] != "error" || r["cmd"] != "set" || !strings.Contains(r["error"].(string), "longer") {
		t.Errorf("long line: %v", r)
	}
	if r := p.must("get big", "value"); r["found"] != false {
		t.Errorf("get big: %v", r)
	}
	p.must("quit", "ok")
	if code := p.exitStatus(); code != 0 {
		t.Errorf("exit status %d after quit", code)
	}
}

// At the end of input the demo sends what its last commands started (a
// message, a store write) and exits 0: the README's scripted example.
func TestEOFFinishesLastCommands(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	key := testKey(t)
	b := startDemo(t, "b", "-json", "-key", key)
	b.must("sub chat", "ok")
	b.must("watch", "ok")
	a := startDemo(t, "a", "-json", "-key", key)
	a.send("wait-peers 1", `pub chat {"text":"hi"}`, "set last word")
	if code := a.wait(); code != 0 {
		t.Errorf("a: exit status %d", code)
	}
	for _, want := range []string{"wait-peers", "pub", "set"} {
		if r := a.next(isReply); r["event"] != "ok" || r["cmd"] != want {
			t.Errorf("a: reply %v, want ok for %s", r, want)
		}
	}
	if d := b.message("chat", a.id); d["text"] != "hi" {
		t.Errorf("b got %v", d)
	}
	if c := b.next(isChange("last", "remote")); c["value"] != "word" {
		t.Errorf("b: change %v", c)
	}
	b.next(isPeer(a.id, "left"))
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
		{"argument", []string{"-key", "k", "extra"}, "unexpected argument"},
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
	if code != 0 {
		t.Fatalf("exit status %d; stderr %s", code, errOut)
	}
	for _, want := range []string{"peer id 12D3", "/ip4/127.0.0.1/tcp/", "\nok\nhello there\n(nothing not found)\nerror: frob: unknown command", "\ngreeting\n", "wait-peers N [SECONDS]"} {
		if !strings.Contains(out1, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out1)
		}
	}
	if strings.Contains(out1, "{\"event\"") || strings.Contains(out1, "> ") {
		t.Errorf("JSON or a prompt in human mode without a terminal:\n%s", out1)
	}
	out2, _, code := runOnce(t, "", nil, args...)
	if code != 0 {
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
