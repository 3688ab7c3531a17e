package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// Unit tests: parsing and formatting, no network.

func TestParseLine(t *testing.T) {
	cases := []struct {
		line string
		want command
		err  string // part of the error; "" for none
	}{
		{"sub chat", command{name: "sub", topic: "chat"}, ""},
		{"  unsub\tchat  ", command{name: "unsub", topic: "chat"}, ""},
		{"pub chat hello  world ", command{name: "pub", topic: "chat", data: []byte(`{"text":"hello  world "}`)}, ""},
		{`pub chat {"b": 1, "a": [1, 2]}`, command{name: "pub", topic: "chat", data: []byte(`{"b":1,"a":[1,2]}`)}, ""},
		{`pub chat  <&> "quoted"`, command{name: "pub", topic: "chat", data: []byte(`{"text":"<&> \"quoted\""}`)}, ""},
		{`pub chat [1,2]`, command{name: "pub", topic: "chat", data: []byte(`{"text":"[1,2]"}`)}, ""},
		{"pub chat {", command{name: "pub"}, "bad JSON"},
		{`pub chat {"a":1}{"b":2}`, command{name: "pub"}, "bad JSON"},
		{"pub chat   ", command{name: "pub"}, "usage: pub [-h K=V]... TOPIC MESSAGE"},
		{"pub", command{name: "pub"}, "usage"},
		{"set k  two words \r\n", command{name: "set", key: "k", value: []byte("two words ")}, ""},
		{`set k {"a": 1}`, command{name: "set", key: "k", value: []byte(`{"a": 1}`)}, ""},
		{"set k", command{name: "set"}, "usage: set KEY VALUE"},
		{"set", command{name: "set"}, "usage"},
		{"get k", command{name: "get", topic: "k", key: "k"}, ""},
		{"get", command{name: "get"}, "usage: get KEY"},
		{"del k x", command{name: "del"}, "usage: del KEY"},
		{"keys", command{name: "keys"}, ""},
		{"keys user/", command{name: "keys", prefix: "user/"}, ""},
		{"watch a b", command{name: "watch"}, "usage: watch [PREFIX]"},
		{"peers", command{name: "peers"}, ""},
		{"id x", command{name: "id"}, "usage: id"},
		{"wait-peers 2", command{name: "wait-peers", n: 2, timeout: defaultWait}, ""},
		{"wait-peers 2 1.5", command{name: "wait-peers", n: 2, timeout: 1500 * time.Millisecond}, ""},
		{"wait-peers -1", command{name: "wait-peers"}, "number of peers"},
		{"wait-peers 1 0", command{name: "wait-peers", n: 1}, "positive"},
		{"wait-peers 1 NaN", command{name: "wait-peers", n: 1}, "positive"},
		{"wait-peers 1 2 3", command{name: "wait-peers"}, "usage"},
		{"wait-synced", command{name: "wait-synced", timeout: defaultWait}, ""},
		{"wait-subscribers chat 2", command{name: "wait-subscribers", topic: "chat", n: 2, timeout: defaultWait}, ""},
		{"wait-subscribers chat 2 1.5", command{name: "wait-subscribers", topic: "chat", n: 2, timeout: 1500 * time.Millisecond}, ""},
		{"wait-subscribers chat", command{name: "wait-subscribers"}, "usage"},
		{"wait-subscribers chat x", command{name: "wait-subscribers"}, "whole number"},
		{"dump", command{name: "dump"}, ""},
		{"dump user/", command{name: "dump", prefix: "user/"}, ""},
		{"wait-synced 3", command{name: "wait-synced", timeout: 3 * time.Second}, ""},
		{"wait-synced x", command{name: "wait-synced"}, "positive"},
		{"stats", command{name: "stats"}, ""},
		{"help", command{name: "help"}, ""},
		{"quit", command{name: "quit"}, ""},
		{"Quit", command{name: "Quit"}, "unknown command"},
		{"frob a b", command{name: "frob"}, "unknown command \"frob\""},
	}
	cases = append(cases, callCases...)
	for _, c := range cases {
		got, err := parseLine(c.line)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: error %v", c.line, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one with %q", c.line, err, c.err)
		case c.err != "" && got.name != c.want.name:
			t.Errorf("%q: name %q with the error, want %q", c.line, got.name, c.want.name)
		case c.err == "" && !reflect.DeepEqual(got, c.want):
			t.Errorf("%q:\n got %+v\nwant %+v", c.line, got, c.want)
		}
	}
}

// callCases are TestParseLine's cases of the flags and the commands of
// requests, queue groups and wildcards.
var callCases = []struct {
	line string
	want command
	err  string
}{
	{"sub orders.*", command{name: "sub", topic: "orders.*"}, ""},
	{"sub -q workers jobs", command{name: "sub", topic: "jobs", group: "workers"}, ""},
	{"sub jobs -q workers", command{name: "sub", topic: "jobs", group: "workers"}, ""},
	{`sub jobs -q "two words"`, command{name: "sub", topic: "jobs", group: "two words"}, ""},
	{"sub -- -odd", command{name: "sub", topic: "-odd"}, ""},
	{"sub -q", command{name: "sub"}, "missing value"},
	{"sub -q g", command{name: "sub"}, "usage: sub [-q GROUP] TOPIC"},
	{"sub -x jobs", command{name: "sub"}, "unknown flag -x"},
	{"sub -h k=v jobs", command{name: "sub"}, "unknown flag -h"},
	{"sub jobs extra", command{name: "sub"}, "usage"},
	{`sub -q "" jobs`, command{name: "sub"}, "empty"},
	{"unsub jobs -q w", command{name: "unsub", topic: "jobs", group: "w"}, ""},
	{"unreply -q w svc", command{name: "unreply", topic: "svc", group: "w"}, ""},
	{"unreply", command{name: "unreply"}, "usage"},
	{"pub -h trace=1 -h trace=2 -h lang=en chat hi there", command{name: "pub", topic: "chat",
		header: pubsub.Header{"trace": {"1", "2"}, "lang": {"en"}}, data: []byte(`{"text":"hi there"}`)}, ""},
	{`pub -h "note=a b=c" -h empty= chat {"n":1}`, command{name: "pub", topic: "chat",
		header: pubsub.Header{"note": {"a b=c"}, "empty": {""}}, data: []byte(`{"n":1}`)}, ""},
	{`pub -h "esc=\x1b" chat x`, command{name: "pub", topic: "chat", header: pubsub.Header{"esc": {"\x1b"}}, data: []byte(`{"text":"x"}`)}, ""},
	{"pub chat -h k=v", command{name: "pub", topic: "chat", data: []byte(`{"text":"-h k=v"}`)}, ""},
	{"pub -- -h k=v", command{name: "pub", topic: "-h", data: []byte(`{"text":"k=v"}`)}, ""},
	{"pub -h kv chat x", command{name: "pub"}, "want KEY=VALUE"},
	{"pub -h =v chat x", command{name: "pub"}, "want KEY=VALUE"},
	{`pub -h "k=v chat x`, command{name: "pub"}, "bad quoted value"},
	{`pub -h "k=v"chat x`, command{name: "pub"}, "no space"},
	{"pub -q g chat x", command{name: "pub"}, "unknown flag -q"},
	{"pub -h k=v chat", command{name: "pub"}, "usage: pub [-h K=V]... TOPIC MESSAGE"},
	{"req svc ping", command{name: "req", topic: "svc", data: []byte(`{"text":"ping"}`), timeout: defaultCallWait}, ""},
	{`req -t 0.5 -h k=v svc {"a":1}`, command{name: "req", topic: "svc", data: []byte(`{"a":1}`),
		timeout: 500 * time.Millisecond, header: pubsub.Header{"k": {"v"}}}, ""},
	{"req svc ping 3", command{name: "req", topic: "svc", data: []byte(`{"text":"ping 3"}`), timeout: defaultCallWait}, ""},
	{"req -t 0 svc x", command{name: "req"}, "positive"},
	{"req -t svc x", command{name: "req"}, "positive"},
	{"req svc", command{name: "req"}, "usage: req"},
	{"reply svc pong", command{name: "reply", topic: "svc", data: []byte(`{"text":"pong"}`)}, ""},
	{"reply -q w -d 1.5 svc pong", command{name: "reply", topic: "svc", group: "w", timeout: 1500 * time.Millisecond, data: []byte(`{"text":"pong"}`)}, ""},
	{"reply -e svc out of  stock", command{name: "reply", topic: "svc", fail: true, data: []byte("out of  stock")}, ""},
	{"reply -e svc {not json", command{name: "reply", topic: "svc", fail: true, data: []byte("{not json")}, ""},
	{"reply svc {bad", command{name: "reply"}, "bad JSON"},
	{"reply -t 1 svc x", command{name: "reply"}, "unknown flag -t"},
	{"send " + testPeer + " chat hi", command{name: "send", peer: mustPeer(testPeer), topic: "chat", data: []byte(`{"text":"hi"}`), timeout: defaultCallWait}, ""},
	{"send -h k=v " + testPeer + " chat hi", command{name: "send", peer: mustPeer(testPeer), topic: "chat",
		header: pubsub.Header{"k": {"v"}}, data: []byte(`{"text":"hi"}`), timeout: defaultCallWait}, ""},
	{"send nobody chat hi", command{name: "send"}, "bad peer id"},
	{"send " + testPeer + " chat", command{name: "send"}, "usage: send"},
	{"wait-responders svc 2", command{name: "wait-responders", topic: "svc", n: 2, timeout: defaultWait}, ""},
	{"wait-responders svc 2 0.5", command{name: "wait-responders", topic: "svc", n: 2, timeout: 500 * time.Millisecond}, ""},
	{"wait-responders svc x", command{name: "wait-responders"}, "number of responders"},
	{"wait-responders svc", command{name: "wait-responders"}, "usage"},
}

const testPeer = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"

func mustPeer(s string) peer.ID {
	id, err := peer.Decode(s)
	if err != nil {
		panic(err)
	}
	return id
}

// The help lists every command, and long synopses wrap.
func TestHelpText(t *testing.T) {
	h := helpText()
	for _, u := range usage {
		if !strings.Contains(h, u.name+" "+u.args) && !strings.Contains(h, u.name+"  ") {
			t.Errorf("help lacks %s %s:\n%s", u.name, u.args, h)
		}
	}
}

func TestReasonOf(t *testing.T) {
	live, cancelled := context.Background(), cancelledContext()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{live, fmt.Errorf("pubsub: request on \"x\": %w", pubsub.ErrNoResponders), reasonNoResponders},
		{live, fmt.Errorf("%w: P: out of stock", pubsub.ErrRemote), reasonRemote},
		{live, fmt.Errorf("%w: P", pubsub.ErrBusy), reasonBusy},
		{live, fmt.Errorf("no answer: %w", context.DeadlineExceeded), reasonTimeout},
		{cancelled, fmt.Errorf("no answer: %w", context.DeadlineExceeded), reasonFailed},
		{live, fmt.Errorf("%w: P", pubsub.ErrNoSubscriber), reasonNoSubscriber},
		{live, fmt.Errorf("%w: P", pubsub.ErrNoRoute), reasonNoRoute},
		{live, fmt.Errorf("%w: key", pubsub.ErrHeader), reasonInvalid},
		{live, pubsub.ErrReservedTopic, reasonInvalid},
		{live, pubsub.ErrClosed, reasonFailed},
	} {
		if got := reasonOf(c.ctx, c.err); got != c.want {
			t.Errorf("reasonOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func cancelledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, spaces  and ünïcode …": "plain text, spaces  and ünïcode …",
		"line\nbreak\ttab\r":                `line\nbreak\ttab\r`,
		"\x1b[2Jclear":                      `\x1b[2Jclear`,
		"bad\xffbyte":                       `bad\xffbyte`,
		"rtl\u202eoverride":                 `rtl\u202eoverride`,
		"nul\x00 del\x7f":                   `nul\x00 del\x7f`,
		"real \ufffd kept":                  "real \ufffd kept",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLineSkips(t *testing.T) {
	for _, line := range []string{"", "   ", "\r\n", "# comment", "  #sub chat"} {
		if _, err := parseLine(line); !errors.Is(err, errSkip) {
			t.Errorf("%q: %v, want errSkip", line, err)
		}
	}
}

func TestJSONValue(t *testing.T) {
	cases := []struct{ in, want string }{
		{`42`, `42`},
		{` {"a" : [1, 2]} `, `{"a":[1,2]}`},
		{`"quoted"`, `"quoted"`},
		{`alice`, `"alice"`},
		{``, `""`},
		{`{"a":`, `"{\"a\":"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"tab\tand <html>", `"tab\tand <html>"`},
		{"{\"text\":\"a\xffb\"}", "{\"text\":\"a\ufffdb\"}"}, // JSON with invalid UTF-8: still UTF-8 out
		{"\"\xff\xfe\"", "\"\ufffd\""},
	}
	for _, c := range cases {
		got := string(jsonValue([]byte(c.in)))
		if got != c.want {
			t.Errorf("jsonValue(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestOutputFormats(t *testing.T) {
	const id = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	cases := []struct {
		e           event
		json, human string
	}{
		{ready(id, []string{"/ip4/127.0.0.1/tcp/1/p2p/" + id}, ""),
			`{"event":"ready","id":"` + id + `","addrs":["/ip4/127.0.0.1/tcp/1/p2p/` + id + `"]}`,
			"peer id " + id + ", listening on:\n  /ip4/127.0.0.1/tcp/1/p2p/" + id + "\ntype help for the commands"},
		{ready(id, nil, "http://127.0.0.1:8080/"),
			`{"event":"ready","id":"` + id + `","addrs":[],"http":"http://127.0.0.1:8080/"}`,
			"peer id " + id + ", listening on:\nstatus page: http://127.0.0.1:8080/\ntype help for the commands"},
		{peerChange(id, "joined"), `{"event":"peer","id":"` + id + `","state":"joined"}`, "* peer " + id + " joined"},
		{message("chat", id, []byte(`{"text": "hi <3"}`)),
			`{"event":"message","topic":"chat","from":"` + id + `","data":{"text":"hi <3"}}`, "[chat] …kSCVe2Xo: hi <3"},
		{message("chat", id, []byte(`{"text":"hi","n":1}`)),
			`{"event":"message","topic":"chat","from":"` + id + `","data":{"text":"hi","n":1}}`, `[chat] …kSCVe2Xo: {"text":"hi","n":1}`},
		{message("raw", "short", []byte{1, 'x'}),
			`{"event":"message","topic":"raw","from":"short","data":"\u0001x"}`, "[raw] short: \"\\u0001x\""},
		{change("k", []byte("v w"), false, "remote", 0),
			`{"event":"change","key":"k","value":"v w","deleted":false,"origin":"remote"}`, "~ k = v w (remote)"},
		{change("k", nil, true, "local", 3),
			`{"event":"change","key":"k","value":null,"deleted":true,"origin":"local","missed":3}`, "~ k deleted (local) [3 earlier changes missed]"},
		{ok("set"), `{"event":"ok","cmd":"set"}`, "ok"},
		{okReply{Event: "ok", Cmd: "help", Help: "a\nb\n"}, `{"event":"ok","cmd":"help","help":"a\nb\n"}`, "a\nb"},
		{value("n", []byte("42"), true), `{"event":"value","key":"n","value":42,"found":true}`, "42"},
		{value("s", []byte(`"q"`), true), `{"event":"value","key":"s","value":"q","found":true}`, "q"},
		{value("x", nil, false), `{"event":"value","key":"x","value":null,"found":false}`, "(x not found)"},
		{keys(nil), `{"event":"keys","keys":[]}`, "(no keys)"},
		{keys([]string{"a", "b"}), `{"event":"keys","keys":["a","b"]}`, "a\nb"},
		{peers(nil), `{"event":"peers","peers":[]}`, "(no peers)"},
		{identity(id, nil), `{"event":"id","id":"` + id + `","addrs":[]}`, id},
		{failure("pub", errors.New("bad JSON")), `{"event":"error","cmd":"pub","error":"bad JSON"}`, "error: pub: bad JSON"},
		{delivered(pubsub.Message{Topic: "orders.new", From: mustPeer(id), Data: []byte(`{"text":"x"}`),
			Header: pubsub.Header{"b": {"2"}, "a": {"1", "1b"}}}, "orders.*", ""),
			`{"event":"message","topic":"orders.new","from":"` + id + `","data":{"text":"x"},"sub":"orders.*","headers":{"a":["1","1b"],"b":["2"]}}`,
			"[orders.new via orders.*] …kSCVe2Xo {a=1, a=1b, b=2}: x"},
		{delivered(pubsub.Message{Topic: "jobs", From: mustPeer(id), Data: []byte(`{"text":"j"}`), Header: pubsub.Header{}}, "jobs", "w"),
			`{"event":"message","topic":"jobs","from":"` + id + `","data":{"text":"j"},"group":"w"}`,
			"[jobs group w] …kSCVe2Xo: j"},
		{delivered(pubsub.Message{Topic: "t\x1b", From: mustPeer(id), Data: []byte("{\"text\":\"\\u001b[2J\xff\"}"),
			Header: pubsub.Header{"k\n": {"v\u202e"}}}, "t\x1b", ""),
			`{"event":"message","topic":"t\u001b","from":"` + id + `","data":{"text":"\u001b[2J` + "\ufffd" + `"},"headers":{"k\n":["v` + "\u202e" + `"]}}`,
			`[t\x1b] …kSCVe2Xo {k\n=v\u202e}: \x1b[2J` + "\ufffd"},
		{requested(pubsub.Message{Topic: "svc", From: mustPeer(id), Data: []byte(`{"text":"ping"}`), Header: pubsub.Header{"k": {"v"}}}, "w"),
			`{"event":"request","topic":"svc","from":"` + id + `","data":{"text":"ping"},"group":"w","headers":{"k":["v"]}}`,
			"? [svc group w] request from …kSCVe2Xo {k=v}: ping"},
		{response(pubsub.Message{Topic: "svc", From: mustPeer(id), Data: []byte(`{"n":1}`)}),
			`{"event":"response","topic":"svc","from":"` + id + `","data":{"n":1}}`,
			`[svc] reply from …kSCVe2Xo: {"n":1}`},
		{callFailure("req", errors.New("pubsub: responder failed: P: out\x1b"), reasonRemote, id),
			`{"event":"error","cmd":"req","error":"pubsub: responder failed: P: out\u001b","reason":"remote","from":"` + id + `"}`,
			`error: req [remote]: pubsub: responder failed: P: out\x1b`},
		{callFailure("req", errors.New(`no responders on "x"`), reasonNoResponders, ""),
			`{"event":"error","cmd":"req","error":"no responders on \"x\"","reason":"no-responders"}`,
			`error: req [no-responders]: no responders on "x"`},
	}
	for _, c := range cases {
		j := newOutput(io.Discard, io.Discard, true, false).format(c.e)
		if string(j) != c.json+"\n" {
			t.Errorf("%T JSON:\n got %s\nwant %s", c.e, j, c.json)
		}
		h := newOutput(io.Discard, io.Discard, false, false).format(c.e)
		if string(h) != c.human+"\n" {
			t.Errorf("%T human:\n got %q\nwant %q", c.e, h, c.human)
		}
	}
}

func TestStatsFormat(t *testing.T) {
	s := makeStats(7, 9, 2, node.Stats{HandshakesRefused: 8},
		pubsub.Stats{Topics: map[string]pubsub.TopicStats{"chat": {Published: 1, Dropped: 2}}, Invalid: 3},
		crdtstore.Stats{DeltasSent: 4, SyncFailures: 5, Keys: 6})
	var got map[string]any
	if err := json.Unmarshal(newOutput(io.Discard, io.Discard, true, false).format(s), &got); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"event": "stats", "goroutines": 7.0, "fds": 9.0, "peers": 2.0,
		"node.handshakes_refused": 8.0, "node.candidates_dropped": 0.0, "pubsub.forged": 0.0,
		"pubsub.invalid": 3.0, "pubsub.outbound_dropped": 0.0, "pubsub.inbound_undeliverable": 0.0,
		"pubsub.topics.chat.published": 1.0, "pubsub.topics.chat.dropped": 2.0, "pubsub.topics.chat.send_failed": 0.0,
		"store.deltas_sent": 4.0, "store.sync_failures": 5.0, "store.keys": 6.0, "store.gaps": 0.0,
	} {
		var v any = got
		for _, k := range strings.Split(path, ".") {
			v, _ = v.(map[string]any)[k]
		}
		if v != want {
			t.Errorf("%s = %v, want %v", path, v, want)
		}
	}
	if n := openFDs(); n < 3 {
		t.Errorf("openFDs() = %d", n)
	}
}

// Events written from many goroutines come out as whole lines.
func TestOutputLinesNeverSplit(t *testing.T) {
	var buf bytes.Buffer
	o := newOutput(&buf, io.Discard, true, false)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				if i%2 == 0 {
					o.event(message("t", "p", bytes.Repeat([]byte("x"), 5000)))
				} else {
					o.reply(ok("set"))
				}
			}
		})
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d is not JSON: %.80q", n, sc.Text())
		}
		n++
	}
	if n != 1600 {
		t.Errorf("%d lines, want 1600", n)
	}
}

func TestPrompt(t *testing.T) {
	var buf bytes.Buffer
	o := newOutput(&buf, io.Discard, false, true)
	o.showPrompt()
	o.event(peerChange("p", "left"))
	o.reply(ok("set"))
	if got, want := buf.String(), "> \r* peer p left\n> ok\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	buf.Reset()
	o = newOutput(&buf, io.Discard, true, true) // never a prompt in JSON mode
	o.showPrompt()
	o.event(peerChange("p", "left"))
	if got := buf.String(); got != `{"event":"peer","id":"p","state":"left"}`+"\n" {
		t.Errorf("JSON mode on a terminal: %q", got)
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("y", 300)
	in := "short\r\n\n" + "set k " + long + "\n" + "after\n" + "last"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	type res struct {
		text    string
		tooLong bool
		err     error
	}
	var got []res
	for {
		l, err := readLine(br, 100)
		got = append(got, res{l.text, l.tooLong, err})
		if err != nil {
			break
		}
	}
	want := []res{{"short", false, nil}, {"", false, nil}, {"set k yyyyyyyyyy", true, nil}, {"after", false, nil}, {"last", false, io.EOF}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].tooLong != want[i].tooLong || got[i].err != want[i].err ||
			(!want[i].tooLong && got[i].text != want[i].text) ||
			(want[i].tooLong && !strings.HasPrefix(got[i].text, "set k ")) {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseFlags(t *testing.T) {
	env := func(key string) func(string) string {
		return func(name string) string {
			if name == keyEnv {
				return key
			}
			return ""
		}
	}
	cases := []struct {
		name string
		args []string
		env  string
		want options
		err  error // nil: success; errNoKey, flag.ErrHelp, or errAny
	}{
		{"key flag", []string{"-key", "s"}, "", options{key: "s", mdns: true, wait: defaultOneShotWait}, nil},
		{"env fallback", nil, "from-env", options{key: "from-env", mdns: true, wait: defaultOneShotWait}, nil},
		{"flag wins", []string{"-key", "flag"}, "env", options{key: "flag", mdns: true, wait: defaultOneShotWait}, nil},
		{"everything", []string{"-key", "s", "-json", "-v", "-mdns=false", "-identity", "f", "-store", "st", "-wait", "2s", "-fast-timers",
			"-listen", "/ip4/127.0.0.1/tcp/0", "-listen", "/ip6/::1/tcp/0", "-peer", "/p/1", "-peer", "/p/2", "set", "k", "v w"}, "",
			options{key: "s", json: true, verbose: true, identity: "f", store: "st", wait: 2 * time.Second, fast: true,
				listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"}, peers: []string{"/p/1", "/p/2"},
				command: []string{"set", "k", "v w"}}, nil},
		{"version needs no key", []string{"-version"}, "", options{mdns: true, wait: defaultOneShotWait, version: true}, nil},
		{"no key", []string{"-json"}, "", options{}, errNoKey},
		{"help", []string{"-h"}, "", options{}, flag.ErrHelp},
		{"unknown flag", []string{"-key", "s", "-x"}, "", options{}, errAny},
		{"negative wait", []string{"-key", "s", "-wait", "-1s"}, "", options{}, errAny},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		got, err := parseFlags(c.args, env(c.env), &stderr)
		switch {
		case c.err == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == nil && !reflect.DeepEqual(got, c.want):
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		case c.err == errAny && err == nil, c.err != nil && c.err != errAny && !errors.Is(err, c.err):
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
		case c.err != nil && c.err != flag.ErrHelp && stderr.Len() == 0:
			t.Errorf("%s: nothing on stderr", c.name)
		case c.err == flag.ErrHelp && stderr.Len() != 0:
			t.Errorf("%s: %q on stderr (the help goes to stdout)", c.name, stderr.String())
		}
	}
}

var errAny = errors.New("any error")

func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, null)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, r)
	closeAtEnd(t, w)
	for _, c := range []struct {
		name string
		in   io.Reader
	}{{"null device", null}, {"pipe", r}, {"reader", strings.NewReader("")}} {
		if isTerminal(c.in) {
			t.Errorf("%s counts as a terminal", c.name)
		}
	}
}

// closeAtEnd closes f when t ends, failing t if that fails.
func closeAtEnd(t *testing.T, f *os.File) {
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
}

// Remote text in the store (keys and values another node set, bypassing
// this node's checks) and in the other replies: escaped in human mode,
// valid UTF-8 and valid JSON on one line in -json mode.
func TestOutputEscapesRemoteText(t *testing.T) {
	const (
		key  = "k\x1b[2J\n* peer X left\xff"
		keyH = `k\x1b[2J\n* peer X left\xff`
		val  = "\"\\u001b[2J\\n[chat] forged\\r\\u0007\"" // a JSON string
		valH = `\x1b[2J\n[chat] forged\r\a`
		raw  = "raw\xfe\x1b]0;t\x07" // not JSON, invalid UTF-8
		rawH = "raw\ufffd" + `\x1b]0;t\a`
	)
	cases := []struct {
		name  string
		e     event
		human string
	}{
		{"get", value(key, []byte(val), true), valH},
		{"get raw", value(key, []byte(raw), true), rawH},
		{"get missing", value(key, nil, false), "(" + keyH + " not found)"},
		{"keys", keys([]string{key, "plain"}), keyH + "\nplain"},
		{"dump", dump([]crdtstore.KeyValue{{Key: key, Value: []byte(val)}, {Key: "r", Value: []byte(raw)}}),
			keyH + " = " + valH + "\nr = " + rawH},
		{"watch", change(key, []byte(val), false, "remote", 0), "~ " + keyH + " = " + valH + " (remote)"},
		{"watch deleted", change(key, nil, true, "remote\n", 0), "~ " + keyH + ` deleted (remote\n)`},
		{"peer", peerChange("id\x1b\n", "left\r"), `* peer id\x1b\n left\r`},
		{"peers", peers([]string{"p\x1b\n"}), `p\x1b\n`},
		{"id", identity("me", []string{"/dns4/a\x1b\nb"}), "me\n  " + `/dns4/a\x1b\nb`},
		{"ready", ready("me\n", []string{"/dns4/\xff"}, ""), `peer id me\n, listening on:` + "\n  " + `/dns4/\xff` + "\ntype help for the commands"},
		{"message from", message("chat", "x\x1b\n", []byte(`{"text":"hi"}`)), `[chat] x\x1b\n: hi`},
		{"error", failure("get", errors.New("bad "+key)), "error: get: bad " + keyH},
	}
	for _, c := range cases {
		h := string(newOutput(io.Discard, io.Discard, false, false).format(c.e))
		if h != c.human+"\n" {
			t.Errorf("%s human:\n got %q\nwant %q", c.name, h, c.human+"\n")
		}
		j := newOutput(io.Discard, io.Discard, true, false).format(c.e)
		if !bytes.HasSuffix(j, []byte("\n")) || bytes.Count(j, []byte("\n")) != 1 ||
			!utf8.Valid(j) || !json.Valid(j) || bytes.ContainsAny(j, "\x1b\r\x07") {
			t.Errorf("%s JSON: not one valid UTF-8 JSON line without control characters: %q", c.name, j)
		}
	}
	// The keys keep their text in JSON, invalid bytes replaced.
	j := newOutput(io.Discard, io.Discard, true, false).format(keys([]string{key}))
	want := `{"event":"keys","keys":["k\u001b[2J\n* peer X left\ufffd"]}` + "\n"
	if string(j) != want {
		t.Errorf("keys JSON:\n got %s\nwant %s", j, want)
	}
}
