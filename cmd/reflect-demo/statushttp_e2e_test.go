package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/reflectmesh/reflect/internal/netns"
)

// -http refuses a non-loopback address without -http-public (exit 2,
// before joining anything), reports an address it cannot listen on (exit
// 1), and serves the page where it can.
func TestHTTPFlag(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	for _, addr := range []string{":8080", "0.0.0.0:8080", "192.0.2.7:80", "[::]:8080"} {
		out, errOut, code := runOnce(t, "id\n", nil, "-key", testKey(t), "-mdns=false", "-http", addr)
		if code != 2 || out != "" || !strings.Contains(errOut, "-http "+addr+" is not a loopback address") || !strings.Contains(errOut, "-http-public") {
			t.Errorf("-http %s: exit %d, stdout %q, stderr %q; want 2 and an error naming -http-public", addr, code, out, errOut)
		}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	out, errOut, code := runOnce(t, "id\n", nil, "-key", testKey(t), "-mdns=false", "-http", busy.Addr().String())
	if code != 1 || out != "" || !strings.Contains(errOut, "reflect-demo: -http "+busy.Addr().String()+": ") {
		t.Errorf("-http on a port in use: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// -http-public lets it listen on every interface; the page answers
	// any Host then.
	p := startDemo(t, "a", nil, "-json", "-key", testKey(t), "-mdns=false", "-http", "0.0.0.0:0", "-http-public")
	if !strings.HasPrefix(p.HTTP, "http://localhost:") {
		t.Fatalf("ready line's http = %q", p.HTTP)
	}
	req, _ := http.NewRequest("GET", p.HTTP+"status", nil)
	req.Host = "mesh-host.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), p.ID) {
		t.Errorf("GET /status with -http-public: %s\n%.500s", resp.Status, body)
	}
	if code := p.EndInput(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

func TestPageURL(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv6unspecified, Port: 4242}
	for asked, want := range map[string]string{
		"127.0.0.1:0": "http://127.0.0.1:4242/", "localhost:8080": "http://localhost:4242/",
		"[::1]:0": "http://[::1]:4242/", "0.0.0.0:0": "http://localhost:4242/", ":0": "http://localhost:4242/",
		"[::]:0": "http://localhost:4242/", "10.1.2.3:80": "http://10.1.2.3:4242/",
	} {
		if got := pageURL(asked, bound); got != want {
			t.Errorf("pageURL(%q) = %q, want %q", asked, got, want)
		}
	}
}
