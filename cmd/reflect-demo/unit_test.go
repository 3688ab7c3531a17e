package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/pubsub"
)

// Unit tests: parsing and formatting, no network.

func TestParseLine(t *testing.T) {
	cases := []struct {
		line string
		want command
		err  string // part of the error; "" for none
	}{
		{"sub chat", command{name: "sub", topic: "chat", key: "chat"}, ""},
		{"  unsub\tchat  ", command{name: "unsub", topic: "chat", key: "chat"}, ""},
		{"pub chat hello  world ", command{name: "pub", topic: "chat", data: []byte(`{"text":"hello  world "}`)}, ""},
		{`pub chat {"b": 1, "a": [1, 2]}`, command{name: "pub", topic: "chat", data: []byte(`{"b":1,"a":[1,2]}`)}, ""},
		{`pub chat  <&> "quoted"`, command{name: "pub", topic: "chat", data: []byte(`{"text":"<&> \"quoted\""}`)}, ""},
		{`pub chat [1,2]`, command{name: "pub", topic: "chat", data: []byte(`{"text":"[1,2]"}`)}, ""},
		{"pub chat {", command{name: "pub"}, "bad JSON"},
		{`pub chat {"a":1}{"b":2}`, command{name: "pub"}, "bad JSON"},
		{"pub chat   ", command{name: "pub"}, "usage: pub TOPIC MESSAGE"},
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
		{ready(id, []string{"/ip4/127.0.0.1/tcp/1/p2p/" + id}),
			`{"event":"ready","id":"` + id + `","addrs":["/ip4/127.0.0.1/tcp/1/p2p/` + id + `"]}`,
			"peer id " + id + ", listening on:\n  /ip4/127.0.0.1/tcp/1/p2p/" + id + "\ntype help for the commands"},
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
	}
	for _, c := range cases {
		j := newOutput(io.Discard, true, false).format(c.e)
		if string(j) != c.json+"\n" {
			t.Errorf("%T JSON:\n got %s\nwant %s", c.e, j, c.json)
		}
		h := newOutput(io.Discard, false, false).format(c.e)
		if string(h) != c.human+"\n" {
			t.Errorf("%T human:\n got %q\nwant %q", c.e, h, c.human)
		}
	}
}

func TestStatsFormat(t *testing.T) {
	s := makeStats(7, 9, 2,
		pubsub.Stats{Topics: map[string]pubsub.TopicStats{"chat": {Published: 1, Dropped: 2}}, Invalid: 3},
		crdtstore.Stats{DeltasSent: 4, SyncFailures: 5, Keys: 6})
	var got map[string]any
	if err := json.Unmarshal(newOutput(io.Discard, true, false).format(s), &got); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"event": "stats", "goroutines": 7.0, "fds": 9.0, "peers": 2.0,
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

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"DeltasSent": "deltas_sent", "SyncBytesIn": "sync_bytes_in", "Keys": "keys",
		"RTTMax": "rtt_max", "InboundUndeliverable": "inbound_undeliverable", "P99": "p99",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

// Events written from many goroutines come out as whole lines.
func TestOutputLinesNeverSplit(t *testing.T) {
	var buf bytes.Buffer
	o := newOutput(&buf, true, false)
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
	o := newOutput(&buf, false, true)
	o.showPrompt()
	o.event(peerChange("p", "left"))
	o.reply(ok("set"))
	if got, want := buf.String(), "> \r* peer p left\n> ok\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	buf.Reset()
	o = newOutput(&buf, true, true) // never a prompt in JSON mode
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
		{"key flag", []string{"-key", "s"}, "", options{key: "s", mdns: true}, nil},
		{"env fallback", nil, "from-env", options{key: "from-env", mdns: true}, nil},
		{"flag wins", []string{"-key", "flag"}, "env", options{key: "flag", mdns: true}, nil},
		{"everything", []string{"-key", "s", "-json", "-v", "-mdns=false", "-identity", "f",
			"-listen", "/ip4/127.0.0.1/tcp/0", "-listen", "/ip6/::1/tcp/0", "-peer", "/p/1", "-peer", "/p/2"}, "",
			options{key: "s", json: true, verbose: true, identity: "f",
				listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"}, peers: []string{"/p/1", "/p/2"}}, nil},
		{"no key", []string{"-json"}, "", options{}, errNoKey},
		{"help", []string{"-h"}, "", options{}, flag.ErrHelp},
		{"unknown flag", []string{"-key", "s", "-x"}, "", options{}, errAny},
		{"argument", []string{"-key", "s", "arg"}, "", options{}, errAny},
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
		case c.err != nil && stderr.Len() == 0:
			t.Errorf("%s: nothing on stderr", c.name)
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
