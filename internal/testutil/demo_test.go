package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netlab"
)

// The two processes the driver serves.
var (
	_ Process = (*netlab.Proc)(nil)
	_ Process = (*Cmd)(nil)
)

// The driver against a scripted fake demo on io.Pipes: no process, no
// network.

// pipeProc is a Process whose output is a pipe: it "exits" (cleanly) when
// the fake closes its end.
type pipeProc struct{ *Lines }

func (p pipeProc) Wait() error {
	<-p.Done()
	return nil
}

// fake runs a fake demo: it writes first, then answers each command line
// with respond's lines, until its input ends or respond returns nil. It
// closes its output when it ends; the test waits for it.
func fake(t *testing.T, first []string, respond func(cmd string) []string) *Demo {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		// A write fails only when the driver side is closed, at the
		// test's end; the fake then has nothing left to do. At its end it
		// closes both its ends, as an exiting process does.
		defer func() {
			if err := outW.Close(); err != nil {
				t.Errorf("fake: closing its output: %v", err)
			}
			if err := inR.CloseWithError(io.ErrClosedPipe); err != nil {
				t.Errorf("fake: closing its input: %v", err)
			}
		}()
		for _, l := range first {
			if _, err := io.WriteString(outW, l+"\n"); err != nil {
				return
			}
		}
		sc := bufio.NewScanner(inR)
		for sc.Scan() {
			lines := respond(sc.Text())
			if lines == nil {
				return
			}
			for _, l := range lines {
				if _, err := io.WriteString(outW, l+"\n"); err != nil {
					return
				}
			}
		}
	})
	t.Cleanup(func() {
		// Unblocks the fake's reads and writes, then waits for it.
		if err := inR.CloseWithError(io.ErrClosedPipe); err != nil {
			t.Error(err)
		}
		if err := outR.CloseWithError(io.ErrClosedPipe); err != nil {
			t.Error(err)
		}
		wg.Wait()
	})
	d := NewDemo(t, "fake", inW, pipeProc{ReadLines(outR)})
	d.Timeout = 2 * time.Second
	return d
}

const readyLine = `{"event":"ready","id":"P1","addrs":["/ip4/127.0.0.1/tcp/1/p2p/P1"]}`

// echo answers like the demo: ok naming the command, value for get, the
// kind of the command for keys, peers, ..., an error for "fail".
func echo(cmd string) []string {
	f := strings.Fields(cmd)
	switch f[0] {
	case "get":
		return []string{fmt.Sprintf(`{"event":"value","key":%q,"value":1,"found":true}`, f[1])}
	case "peers":
		return []string{`{"event":"peers","peers":["P2","P3"]}`}
	case "dump":
		return []string{`{"event":"dump","entries":[{"key":"a","value":{"x":[1,2]}},{"key":"b","value":"s"}]}`}
	case "stats":
		return []string{`{"event":"stats","goroutines":7,"store":{"keys":3}}`}
	case "fail":
		return []string{`{"event":"error","cmd":"fail","error":"as asked"}`}
	case "req":
		return []string{fmt.Sprintf(`{"event":"response","topic":%q,"from":"P2","data":{"text":"pong"}}`, f[1])}
	}
	return []string{fmt.Sprintf(`{"event":"ok","cmd":%q}`, f[0])}
}

func TestDemoReady(t *testing.T) {
	d := fake(t, []string{readyLine}, echo)
	if err := d.WaitReady(time.Second); err != nil {
		t.Fatal(err)
	}
	if d.ID != "P1" || !reflect.DeepEqual(d.Addrs, []string{"/ip4/127.0.0.1/tcp/1/p2p/P1"}) {
		t.Errorf("id %q, addrs %q", d.ID, d.Addrs)
	}
	for name, first := range map[string][]string{
		"event first": {`{"event":"peer","id":"P2","state":"joined"}`, readyLine},
		"not JSON":    {"panic: oh no"},
		"no id":       {`{"event":"ready","addrs":[]}`},
		"nothing":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			d := fake(t, first, echo)
			if err := d.WaitReady(200 * time.Millisecond); err == nil {
				t.Errorf("WaitReady accepted %q", first)
			}
		})
	}
}

func TestDemoReplies(t *testing.T) {
	d := fake(t, []string{readyLine}, func(cmd string) []string {
		// Events before each reply: they are in by the time it is.
		return append([]string{`{"event":"peer","id":"P9","state":"joined"}`,
			`{"event":"message","topic":"t","from":"P2","data":{"n":1}}`}, echo(cmd)...)
	})
	if err := d.WaitReady(time.Second); err != nil {
		t.Fatal(err)
	}
	if e := d.Must("sub t"); e.Kind() != "ok" || e.Str("cmd") != "sub" {
		t.Errorf("sub: %v", e)
	}
	if e := d.Must("get k"); e.Num("value") != 1 || e["found"] != true {
		t.Errorf("get: %v", e)
	}
	if got := d.Peers(); !reflect.DeepEqual(got, []string{"P2", "P3"}) {
		t.Errorf("peers %q", got)
	}
	if got := d.Dump(); !reflect.DeepEqual(got, map[string]string{"a": `{"x":[1,2]}`, "b": `"s"`}) {
		t.Errorf("dump %v", got)
	}
	if s := d.Stats(); s.Num("goroutines") != 7 || s.Num("store", "keys") != 3 || s.Num("store", "nothing") != 0 {
		t.Errorf("stats %v", s)
	}
	if e := d.Must("req svc ping"); e.Kind() != "response" || e.Str("topic") != "svc" {
		t.Errorf("req: %v", e)
	}
	e, err := d.Do("fail now")
	if !errors.Is(err, ErrReply) || e.Str("error") != "as asked" {
		t.Errorf("fail: %v, %v", e, err)
	}
	if e := d.MustFail("fail again"); e.Str("cmd") != "fail" {
		t.Errorf("MustFail: %v", e)
	}
	if _, err := d.Do("  # comment"); err == nil {
		t.Error("Do sent a comment, which gets no reply")
	}
	// Every command left a peer event and a message unread, in order.
	if ms := d.Drain(IsMessage("t", "P2")); len(ms) != 8 {
		t.Errorf("drained %d messages, want 8", len(ms))
	}
	if ps := d.Drain(IsPeer("P9", "")); len(ps) != 8 {
		t.Errorf("drained %d peer events, want 8", len(ps))
	}
	if ps := d.Drain(IsKind("peer", "message")); len(ps) != 0 {
		t.Errorf("drained %v twice", ps)
	}
}

// A reply that answers another command is an error, not a success: a
// reply left unread shows up at the next command.
func TestDemoOutOfStep(t *testing.T) {
	d := fake(t, []string{readyLine}, echo)
	if err := d.WaitReady(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Send("sub a"); err != nil { // its reply stays unread
		t.Fatal(err)
	}
	if _, err := d.Do("pub a x"); !errors.Is(err, ErrOutOfStep) {
		t.Errorf("pub after an unread sub reply: %v, want ErrOutOfStep", err)
	}
	// The pub reply is now unread in turn: get gets an ok.
	if _, err := d.Do("get k"); !errors.Is(err, ErrOutOfStep) {
		t.Errorf("get after an unread pub reply: %v, want ErrOutOfStep", err)
	}
	if _, err := d.Do("get other"); !errors.Is(err, ErrOutOfStep) {
		t.Errorf("get other after an unread get k reply: %v, want ErrOutOfStep", err)
	}
	if err := d.Send("a\nb"); err == nil {
		t.Error("Send accepted a line break")
	}

	cases := []struct{ line, reply string }{
		{"get k", `{"event":"value","key":"other","value":1,"found":true}`},
		{"keys", `{"event":"ok","cmd":"keys"}`},
		{"set k v", `{"event":"ok","cmd":"sub"}`},
		{"set k v", `{"event":"error","cmd":"sub","error":"x"}`},
		{"peers", `{"event":"keys","keys":[]}`},
		{"req t x", `{"event":"ok","cmd":"req"}`},
		{"pub t x", `{"event":"response","topic":"t","from":"P2","data":{}}`},
	}
	for _, c := range cases {
		e, err := parseEvent(c.reply)
		if err != nil {
			t.Fatal(err)
		}
		if err := answers(c.line, e); !errors.Is(err, ErrOutOfStep) {
			t.Errorf("%s answered by %s: %v, want ErrOutOfStep", c.line, c.reply, err)
		}
	}
}

// A reply that comes after its command's wait ended is read by the next
// command, before its own: the commands after it stay in step.
func TestDemoLateReply(t *testing.T) {
	d := fake(t, []string{readyLine}, func(cmd string) []string {
		if strings.HasPrefix(cmd, "wait-peers") {
			time.Sleep(300 * time.Millisecond) // past the driver's wait
		}
		return echo(cmd)
	})
	if err := d.WaitReady(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DoWithin(50*time.Millisecond, "wait-peers 3 0.050"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait-peers answered after the wait: %v, want a deadline error", err)
	}
	if e, err := d.Do("get k"); err != nil || e.Str("key") != "k" {
		t.Fatalf("get after a late reply: %v, %v; want the value of k", e, err)
	}
	if _, err := d.Do("peers"); err != nil {
		t.Fatalf("peers after it: %v", err)
	}

	// A late reply that does not come within the next command's wait
	// fails that command, unsent; the one after it waits again.
	if _, err := d.DoWithin(50*time.Millisecond, "wait-peers 3 0.050"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second wait-peers: %v, want a deadline error", err)
	}
	if _, err := d.DoWithin(50*time.Millisecond, "get k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get while the late reply is still to come: %v, want a deadline error", err)
	}
	if e, err := d.Do("get j"); err != nil || e.Str("key") != "j" {
		t.Fatalf("get j once the late reply came: %v, %v; want the value of j", e, err)
	}
}

func TestDemoEvents(t *testing.T) {
	d := fake(t, []string{readyLine,
		`{"event":"change","key":"k","value":1,"deleted":false,"origin":"remote"}`,
		`{"event":"message","topic":"t","from":"P2","data":"not an object"}`,
		`{"event":"message","topic":"t","from":"P3","data":{"text":"hi"}}`,
	}, echo)
	if err := d.WaitReady(time.Second); err != nil {
		t.Fatal(err)
	}
	// Out of order: what does not match stays.
	if data := d.Message("t", "P3"); data["text"] != "hi" {
		t.Errorf("message data %v", data)
	}
	if c := d.Next(IsChange("k", "remote")); c.Num("value") != 1 {
		t.Errorf("change %v", c)
	}
	start := time.Now()
	_, err := d.TryNext(100*time.Millisecond, IsChange("k", "local"))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrExited) {
		t.Errorf("TryNext of a missing event: %v, want a timeout", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("TryNext gave up after %v", el)
	}
	if e := d.Next(IsKind("message")); e.Str("from") != "P2" {
		t.Errorf("message %v", e)
	}
}

// A line that is not a JSON event fails the wait that meets it.
func TestDemoNotEvent(t *testing.T) {
	d := fake(t, []string{readyLine}, func(cmd string) []string {
		return []string{"warning: something", `{"event":"ok","cmd":"sub"}`}
	})
	if err := d.WaitReady(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Do("sub t"); !errors.Is(err, ErrNotEvent) {
		t.Errorf("Do: %v, want ErrNotEvent", err)
	}
	for _, l := range []string{`{"event":""}`, `{"x":1}`, `{"event":"ok"`, `[1]`, ``} {
		if _, ok := kindOf(l); ok {
			t.Errorf("kindOf(%q) ok", l)
		}
	}
	for l, want := range map[string]string{
		`{"event":"ok","cmd":"x"}`:    "ok",
		`{"cmd":"x","event":"value"}`: "value",
		`{ "event" : "keys" }`:        "keys",
	} {
		if k, ok := kindOf(l); !ok || k != want {
			t.Errorf("kindOf(%q) = %q, %v", l, k, ok)
		}
	}
}

// SetMany counts the ok replies and stops with ErrExited when the demo
// dies, returning what was acked before.
func TestDemoSetMany(t *testing.T) {
	n := 0
	d := fake(t, []string{readyLine}, func(cmd string) []string {
		n++
		switch {
		case n == 250:
			return nil // dies: closes its output
		case n%10 == 0:
			return []string{`{"event":"error","cmd":"set","error":"full"}`}
		}
		return []string{`{"event":"change","key":"x","value":1,"deleted":false,"origin":"local"}`, `{"event":"ok","cmd":"set"}`}
	})
	if err := d.WaitReady(time.Second); err != nil {
		t.Fatal(err)
	}
	kv := make([][2]string, 300)
	for i := range kv {
		kv[i] = [2]string{fmt.Sprintf("k%03d", i), "v"}
	}
	acked, err := d.SetMany(kv)
	if !errors.Is(err, ErrExited) {
		t.Errorf("SetMany: %v, want ErrExited", err)
	}
	// Commands 1..249 answered; every tenth with an error.
	if len(acked) != 249-24 || acked[0] != "k000" || acked[8] != "k008" || acked[9] != "k010" {
		t.Errorf("acked %d: %q...", len(acked), acked[:min(len(acked), 10)])
	}
	if _, err := d.Do("id"); !errors.Is(err, ErrExited) {
		t.Errorf("Do after the exit: %v, want ErrExited", err)
	}
}

// ExitStatus and EndInput on a real process (sh, no network).
func TestDemoExitStatus(t *testing.T) {
	for script, want := range map[string]int{
		`echo '` + readyLine + `'; read line; echo '{"event":"ok","cmd":"quit"}'; cat >/dev/null; exit 3`: 3,
		`echo '` + readyLine + `'; read line; echo '{"event":"ok","cmd":"quit"}'; cat >/dev/null`:         0,
	} {
		c, err := StartCmd(t, exec.Command("sh", "-c", script))
		if err != nil {
			t.Fatal(err)
		}
		d := NewDemo(t, "sh", c.Stdin, c)
		if err := d.WaitReady(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		d.Must("quit")
		if got := d.EndInput(); got != want {
			t.Errorf("exit status %d, want %d", got, want)
		}
	}
}
