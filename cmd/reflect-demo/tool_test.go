package main

import (
	"bytes"
	"errors"
	"runtime/debug"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// A listener serves a -listen address with the same protocols and values;
// port 0 matches any port.
func TestSameListener(t *testing.T) {
	cases := []struct {
		want, have string
		same       bool
	}{
		{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/4001", true},
		{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/tcp/4001", true},
		{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/tcp/4002", false},
		{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/tcp/4001", false},
		{"/ip4/127.0.0.1/tcp/0/ws", "/ip4/127.0.0.1/tcp/4001", false},
		{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/4001/ws", false},
		{"/ip4/0.0.0.0/udp/0/quic-v1", "/ip4/0.0.0.0/tcp/4001", false},
		{"/ip6/::/tcp/0", "/ip6/::/tcp/4001", true},
		{"/ip6/::/tcp/0", "/ip4/0.0.0.0/tcp/4001", false},
	}
	for _, c := range cases {
		if got := sameListener(ma.StringCast(c.want), ma.StringCast(c.have)); got != c.same {
			t.Errorf("sameListener(%s, %s) = %v, want %v", c.want, c.have, got, c.same)
		}
	}
}

// Every command has an example in -h, and each example (but send's, whose
// peer id is elided) parses as that command.
func TestHelpExamples(t *testing.T) {
	for _, u := range usage {
		ex, ok := examples[u.name]
		if !ok {
			t.Errorf("no example of %s", u.name)
			continue
		}
		if u.name == "send" {
			continue
		}
		if c, err := parseLine(ex); err != nil || c.name != u.name {
			t.Errorf("example %q: %v, %v", ex, c.name, err)
		}
	}
	if len(examples) != len(usage) {
		t.Errorf("%d examples for %d commands", len(examples), len(usage))
	}
}

func TestFormatVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.6", Main: debug.Module{Version: "v1.2.3"}}
	if got := formatVersion(bi); got != "reflect-demo v1.2.3 go1.26.6" {
		t.Errorf("got %q", got)
	}
	bi.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}
	bi.Main.Version = ""
	if got := formatVersion(bi); got != "reflect-demo (devel) revision abc123 (modified) go1.26.6" {
		t.Errorf("got %q", got)
	}
}

// Human mode writes error replies to the error stream, JSON mode to
// stdout; both count them.
func TestOutputErrors(t *testing.T) {
	for _, jsonMode := range []bool{false, true} {
		var out, errOut bytes.Buffer
		o := newOutput(&out, &errOut, jsonMode, false)
		o.reply(ok("set"))
		o.reply(failure("get", errors.New("boom")))
		o.reply(failure("req", errors.New("late")))
		o.event(peerChange("p", "joined"))
		if o.failed() != 2 {
			t.Errorf("json %v: %d failures, want 2", jsonMode, o.failed())
		}
		errLines, outLines := strings.Count(errOut.String(), "\n"), strings.Count(out.String(), "\n")
		if jsonMode && (errLines != 0 || outLines != 4) || !jsonMode && (errLines != 2 || outLines != 2) {
			t.Errorf("json %v: stdout %q, stderr %q", jsonMode, out.String(), errOut.String())
		}
	}
}

// What a one-shot command waits for.
func TestReadiness(t *testing.T) {
	want := map[string]readiness{
		"get": needSync, "keys": needSync, "dump": needSync, "set": needSync, "del": needSync,
		"pub": needPeer, "send": needPeer, "req": needResponder, "peers": mayWaitPeer,
		"sub": needStream, "watch": needStream, "reply": needStream,
		"id": needNothing, "stats": needNothing, "wait-peers": needNothing,
	}
	for name, r := range want {
		if got := readinessOf(name); got != r {
			t.Errorf("%s: %d, want %d", name, got, r)
		}
	}
}

// In raw mode Ctrl-C reaches the demo as a byte: ctrlCReader turns each
// into a call (SIGINT to itself) and passes the rest through.
func TestCtrlCReader(t *testing.T) {
	calls := 0
	r := &ctrlCReader{r: strings.NewReader("ab\x03c\x03\x03"), onCtrlC: func() { calls++ }}
	b := make([]byte, 16)
	n, err := r.Read(b)
	if string(b[:n]) != "abc" || err != nil || calls != 3 {
		t.Errorf("read %q, %v, %d calls; want abc, nil, 3", b[:n], err, calls)
	}
}
