package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// One-shot commands against a running instance: each run joins it with
// -peer, waits as its command needs, prints the result and exits.
func TestOneShot(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := startDemo(t, "a", nil, loopback(key)...)
	a.Must("set color light blue")
	a.Must("set user/1 ann")
	a.Must("set user/2 bob")
	a.Must("sub chat")
	a.Must("watch")
	a.Must("reply svc pong")
	shot := func(args ...string) (string, string, int) {
		t.Helper()
		flags := []string{"-key", key, "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0", "-peer", a.tcp4()}
		return runOnce(t, "", nil, append(flags, args...)...)
	}
	check := func(what string, out, errOut string, code int, wantOut string) {
		t.Helper()
		if code != 0 || out != wantOut {
			t.Errorf("%s: exit %d, stdout %q, want 0 and %q; stderr:\n%s", what, code, out, wantOut, errOut)
		}
	}

	out, errOut, code := shot("get", "color")
	check("get", out, errOut, code, "light blue\n")
	out, errOut, code = shot("keys", "user/")
	check("keys", out, errOut, code, "user/1\nuser/2\n")
	out, errOut, code = shot("set", "color", "dark", "red")
	check("set", out, errOut, code, "ok\n")
	if c := a.Next(testutil.IsChange("color", "remote")); c["value"] != "dark red" {
		t.Errorf("a: change %v", c)
	}
	out, errOut, code = shot("pub", "chat", "hi", "there")
	check("pub", out, errOut, code, "ok\n")
	if d := a.Next(testutil.IsKind("message")); d.Str("topic") != "chat" || !reflect.DeepEqual(d["data"], map[string]any{"text": "hi there"}) {
		t.Errorf("a: message %v", d)
	}
	out, errOut, code = shot("req", "svc", "ping")
	if code != 0 || !strings.HasSuffix(out, ": pong\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("req: exit %d, stdout %q; stderr:\n%s", code, out, errOut)
	}

	// -json: the ready line, then the reply.
	out, errOut, code = shot("-json", "get", "color")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var ready, reply map[string]any
	if code != 0 || len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &ready) != nil || json.Unmarshal([]byte(lines[1]), &reply) != nil ||
		ready["event"] != "ready" || reply["event"] != "value" || reply["value"] != "dark red" {
		t.Errorf("-json get: exit %d, stdout %q; stderr:\n%s", code, out, errOut)
	}

	// Another store on the same mesh: empty, but the read still syncs.
	out, errOut, code = shot("-store", "other", "get", "color")
	check("-store other get", out, errOut, code, "(color not found)\n")

	// A failure: the error on stderr, nothing on stdout, exit 1.
	out, errOut, code = shot("req", "-t", "0.2", "nobody", "x")
	if code != 1 || out != "" || !strings.Contains(errOut, "error: req [no-responders]") {
		t.Errorf("req nobody: exit %d, stdout %q, stderr %q; want 1, nothing, the error", code, out, errOut)
	}
	a.Must("id") // still running
}

// A one-shot read or publish with no peer to join fails after -wait
// rather than printing this node's empty store.
func TestOneShotAlone(t *testing.T) {
	t.Parallel()
	flags := []string{"-key", testKey(t), "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0", "-wait", "0.3s"}
	for _, args := range [][]string{{"get", "color"}, {"set", "k", "v"}, {"pub", "chat", "hi"}} {
		out, errOut, code := runOnce(t, "", nil, append(flags, args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, "error: "+args[0]+": no peer joined within 300ms (-wait)") {
			t.Errorf("%v alone: exit %d, stdout %q, stderr %q; want 1, nothing, no peer", args, code, out, errOut)
		}
	}
	// Commands that need no peer run at once; peers just lists none.
	for _, args := range [][]string{{"id"}, {"peers"}, {"wait-peers", "0"}} {
		out, errOut, code := runOnce(t, "", nil, append(flags, args...)...)
		if code != 0 || out == "" {
			t.Errorf("%v alone: exit %d, stdout %q; stderr %s", args, code, out, errOut)
		}
	}
}

// A one-shot sub prints the messages until a signal, then exits 0.
func TestOneShotSub(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := startDemo(t, "a", nil, loopback(key)...)
	s := startDemo(t, "s", nil, append(loopback(key, a.tcp4()), "sub", "chat")...)
	if r := s.Next(testutil.IsReply); r["event"] != "ok" || r["cmd"] != "sub" {
		t.Fatalf("s: reply %v", r)
	}
	a.Must("wait-subscribers chat 1")
	a.Must("pub chat one")
	a.Must("pub chat two")
	for _, want := range []string{"one", "two"} {
		if d := s.Message("chat", a.ID); d["text"] != want {
			t.Errorf("s got %v, want %s", d, want)
		}
	}
	s.signal(syscall.SIGINT)
	if code := s.ExitStatus(); code != 0 {
		t.Errorf("s: exit status %d after SIGINT, want 0", code)
	}
}

// Scripts learn from the exit status that a command failed: 1 with -json
// (errors stay on stdout as JSON), 0 when every command worked.
func TestScriptExitStatus(t *testing.T) {
	t.Parallel()
	flags := []string{"-key", testKey(t), "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0"}
	out, errOut, code := runOnce(t, "frob\nid\n", nil, append(flags, "-json")...)
	if code != 1 || !strings.Contains(out, `{"event":"error","cmd":"frob"`) || !strings.Contains(out, `{"event":"id"`) {
		t.Errorf("-json with a failure: exit %d, stdout %q; stderr %s", code, out, errOut)
	}
	out, errOut, code = runOnce(t, "id\nset k v\n", nil, append(flags, "-json")...)
	if code != 0 {
		t.Errorf("-json without failures: exit %d, stdout %q; stderr %s", code, out, errOut)
	}
	out, errOut, code = runOnce(t, "get\n", nil, flags...)
	if code != 1 || strings.Contains(out, "error") || !strings.Contains(errOut, "error: get: usage: get KEY\n") {
		t.Errorf("human mode with a failure: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A -listen address that parses but cannot be used is an error naming it,
// even when another address works: a transport the demo lacks, an IP not
// on this host, a port in use.
func TestUnusableListen(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	inUse := "/ip4/127.0.0.1/tcp/" + strconv.Itoa(port)
	bad := []string{"/ip4/0.0.0.0/udp/1/quic-v1", "/ip4/127.0.0.1/tcp/0/ws", "/ip4/192.0.2.7/tcp/0", inUse}
	for _, b := range bad {
		t.Run(b, func(t *testing.T) {
			out, errOut, code := runOnce(t, "id\n", nil, "-key", testKey(t), "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0", "-listen", b)
			if code != 1 || out != "" || !strings.Contains(errOut, "reflect-demo: -listen "+b+": ") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, an error naming %s", code, out, errOut, b)
			}
		})
	}
	// Alone, the address in use stops node.New; the message names it.
	out, errOut, code := runOnce(t, "id\n", nil, "-key", testKey(t), "-mdns=false", "-listen", inUse)
	if code != 1 || out != "" || !strings.Contains(errOut, strconv.Itoa(port)) {
		t.Errorf("only %s: exit %d, stdout %q, stderr %q", inUse, code, out, errOut)
	}
}

// -h lists every visible flag and every command with an example, on
// stdout; the test-only flags are left out but still work. -version prints
// one line.
func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	out, errOut, code := runOnce(t, "", nil, "-h")
	if code != 0 || errOut != "" {
		t.Fatalf("-h: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"-key secret", "-listen multiaddr", "-store name", "-wait duration", "-version", "Exit status: ", "reflect-demo -key SECRET get color"} {
		if !strings.Contains(out, want) {
			t.Errorf("-h lacks %q:\n%s", want, out)
		}
	}
	for _, u := range usage {
		if !strings.Contains(out, "\n  "+strings.TrimSpace(u.name+" "+u.args)+"\n") || !strings.Contains(out, "e.g. "+examples[u.name]+"\n") {
			t.Errorf("-h lacks %s or its example", u.name)
		}
	}
	if strings.Contains(out, "fast-timers") {
		t.Errorf("-h shows the test-only -fast-timers:\n%s", out)
	}
	if _, errOut, code := runOnce(t, "id\n", nil, "-key", testKey(t), "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0", "-fast-timers"); code != 0 {
		t.Errorf("-fast-timers: exit %d; stderr %s", code, errOut)
	}
	out, errOut, code = runOnce(t, "", nil, "-version")
	if code != 0 || !strings.HasPrefix(out, "reflect-demo ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, "go1.") {
		t.Errorf("-version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// -data keeps the store and the identity: a second run, alone, finds the
// keys the first one wrote, under the same peer id.
func TestDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := testKey(t)
	out, errOut, code := runOnce(t, "set color blue\nset doomed x\ndel doomed\nid\n", nil, "-key", key, "-mdns=false", "-json", "-data", dir)
	if code != 0 {
		t.Fatalf("first run: exit %d, stderr %q", code, errOut)
	}
	firstID := strings.SplitN(strings.SplitN(out, `"id":"`, 2)[1], `"`, 2)[0]
	out, errOut, code = runOnce(t, "get color\nget doomed\n", nil, "-key", key, "-mdns=false", "-json", "-data", dir)
	if code != 0 || !strings.Contains(out, `"id":"`+firstID+`"`) ||
		!strings.Contains(out, `{"event":"value","key":"color","value":"blue","found":true}`) ||
		!strings.Contains(out, `{"event":"value","key":"doomed","value":null,"found":false}`) {
		t.Errorf("second run: exit %d, stdout:\n%s\nstderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "identity")); err != nil {
		t.Errorf("no identity in -data: %v", err)
	}
}
