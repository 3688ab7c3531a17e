package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// Output injection: one node stores and publishes text made to fool a
// terminal (escape sequences, newlines followed by forged event lines,
// invalid UTF-8); the other prints it in human mode without any of it
// reaching the terminal raw, and in -json mode as valid UTF-8 JSON lines.

// The attacker's key (raw escape in it) and values. evilValue is a JSON
// string, which the human forms show decoded: newlines and all.
const (
	evilKey   = "inj\x1b[2J"
	evilValue = `"\u001b[2J\n* peer X left\n[chat] forged\u0007"`
	rawValue  = "raw\xff\xfe\x1b]0;title\x07 bytes" // not JSON, invalid UTF-8
	evilText  = `{"text":"\u001b[H\n* peer Y left"}`
)

// injected runs the attack against a receiver (human or -json mode) and
// returns every line the receiver wrote, up to its exit.
func injected(t *testing.T, jsonMode bool) []string {
	key := testKey(t)
	a := startDemo(t, "a", nil, loopback(key)...)
	args := []string{"-key", key, "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0", "-peer", a.tcp4()}
	if jsonMode {
		args = append(args, "-json")
	}
	b, err := testutil.StartCmd(t, demoCmd(t, nil, args...))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	send := func(in ...string) {
		t.Helper()
		if _, err := io.WriteString(b.Stdin, strings.Join(in, "\n")+"\n"); err != nil {
			t.Fatalf("b: %v", err)
		}
	}
	// until takes b's lines in order, up to the one for which done is true.
	until := func(what string, done func(string) bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		for {
			l, err := b.WaitLine(ctx, nil)
			if err != nil {
				t.Fatalf("b: waiting for %s: %v; lines so far:\n%q", what, err, lines)
			}
			lines = append(lines, l)
			if done(l) {
				return
			}
		}
	}
	// missing is the reply to get of an absent key, a marker.
	missing := func(k string) func(string) bool {
		return func(l string) bool {
			if jsonMode {
				return strings.Contains(l, `"event":"value","key":"`+k+`"`)
			}
			return l == "("+k+" not found)"
		}
	}
	changed := func(k, v string) func(string) bool {
		return func(l string) bool {
			if jsonMode {
				return strings.Contains(l, `"event":"change","key":"`+k+`","value":"`+v+`"`)
			}
			return l == "~ "+k+" = "+v+" (remote)"
		}
	}
	// message is true for the lines of a's messages.
	message := func(l string) bool {
		if jsonMode {
			return strings.HasPrefix(l, `{"event":"message","topic":"chat","from":"`+a.ID+`"`)
		}
		return strings.HasPrefix(l, "[chat] …")
	}

	send("watch", "sub chat", "wait-peers 1 5", "get ready-marker")
	until("b's first replies", missing("ready-marker"))
	a.Must("wait-peers 1 5")
	a.Must("wait-subscribers chat 1 5")
	a.Must("set " + evilKey + " " + evilValue)
	a.Must("set raw " + rawValue)
	a.Must("set z-end done")
	a.Must("pub chat " + evilText)
	a.Must("pub chat raw\xff\x1b[2J text")
	a.Must("pub chat end")
	// The store applies a's writes in a's order (a sync, in the order of
	// the keys), and the watcher reports them in order: z-end comes last.
	until("the last change", changed("z-end", "done"))
	seen := 0
	for _, l := range lines {
		if message(l) {
			seen++
		}
	}
	for seen < 3 {
		until("a's messages", message)
		seen++
	}
	send("get "+evilKey, "get raw", "keys", "dump", "get done-marker")
	until("the replies", missing("done-marker"))
	if err := b.Stdin.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		l, err := b.WaitLine(context.Background(), nil)
		if err != nil {
			break // the output ended
		}
		lines = append(lines, l)
	}
	if err := b.Wait(); err != nil {
		t.Errorf("b: %v; stderr:\n%s", err, b.Stderr())
	}
	if code := a.EndInput(); code != 0 {
		t.Errorf("a: exit status %d", code)
	}
	return lines
}

// Human mode: no raw escape or bell, no forged line, the text escaped.
func TestRemoteTextEscapedHuman(t *testing.T) {
	t.Parallel()
	lines := injected(t, false)
	out := strings.Join(lines, "\n")
	for i, l := range lines {
		if strings.ContainsAny(l, "\x1b\x07\r") || !utf8.ValidString(l) {
			t.Errorf("line %d has a raw control character or invalid UTF-8: %q", i, l)
		}
		if strings.HasPrefix(l, "* peer X") || strings.HasPrefix(l, "* peer Y") || strings.HasPrefix(l, "[chat] forged") {
			t.Errorf("line %d forged by the remote node: %q", i, l)
		}
	}
	const (
		keyH = `inj\x1b[2J`
		valH = `\x1b[2J\n* peer X left\n[chat] forged\a`
		rawH = "raw\ufffd\ufffd" + `\x1b]0;title\a bytes`
	)
	for _, want := range []string{
		"\n~ " + keyH + " = " + valH + " (remote)\n", // watch
		"\n~ raw = " + rawH + " (remote)\n",
		": " + `\x1b[H\n* peer Y left` + "\n", // sub
		": raw\ufffd" + `\x1b[2J text` + "\n",
		"\n" + valH + "\n" + rawH + "\n",                                    // get, get
		"\n" + keyH + "\nraw\nz-end\n",                                      // keys
		"\n" + keyH + " = " + valH + "\nraw = " + rawH + "\nz-end = done\n", // dump
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// -json mode: every line is one valid UTF-8 JSON object, and the values
// keep their text (invalid bytes replaced).
func TestRemoteTextValidJSON(t *testing.T) {
	t.Parallel()
	lines := injected(t, true)
	var got []string
	for i, l := range lines {
		var e map[string]any
		if !utf8.ValidString(l) || !json.Valid([]byte(l)) || json.Unmarshal([]byte(l), &e) != nil || strings.ContainsAny(l, "\x1b\x07") {
			t.Errorf("line %d is not a valid UTF-8 JSON object: %q", i, l)
			continue
		}
		if e["event"] == "value" && e["found"] == true {
			got = append(got, fmt.Sprint(e["value"]))
		}
	}
	want := []string{"\x1b[2J\n* peer X left\n[chat] forged\a", "raw\ufffd\ufffd\x1b]0;title\a bytes"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("values %q, want %q", got, want)
	}
}
