package statuspage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/internal/statuspage"
	"github.com/reflectmesh/reflect/node"
)

const testKey = "statuspage-test-secret-0123456789"

type member struct {
	n *node.Node
	s *crdtstore.Store
}

// startMember starts a node on loopback with the default store, closed at
// the end of the test; reg, if set, receives its metrics.
func startMember(t *testing.T, reg prometheus.Registerer) member {
	t.Helper()
	n, err := node.New(node.Config{
		Key: testKey, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DisableMDNS: true,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond, Metrics: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := crdtstore.Open(n, crdtstore.Options{SyncInterval: 200 * time.Millisecond, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := errors.Join(s.Close(), n.Close()); err != nil && !errors.Is(err, node.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return member{n, s}
}

// get fetches path from srv with Host host ("" for the server's own).
func get(t *testing.T, srv *httptest.Server, path, host string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// waitStatus polls /status until ok accepts it.
func waitStatus(t *testing.T, srv *httptest.Server, what string, ok func(statuspage.Status) bool) statuspage.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := get(t, srv, "/status", "")
		var st statuspage.Status
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("/status: %v\n%s", err, body)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status never showed %s:\n%s", what, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStatusOfAMesh(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := startMember(t, reg)
	b := startMember(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.n.Connect(ctx, b.n.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	page, err := statuspage.New(statuspage.Config{Node: a.n, Store: a.s, StoreName: "default", Metrics: reg, Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	srv := httptest.NewServer(page.Handler())
	defer srv.Close()

	st := waitStatus(t, srv, "b joined and synced", func(st statuspage.Status) bool {
		return len(st.Peers) == 1 && st.Peers[0].Joined && st.Peers[0].Store != nil && st.Peers[0].Store.Synced
	})
	if st.Self.ID != a.n.ID().String() || st.Self.Version != "v-test" || st.Peers[0].ID != b.n.ID() || st.Store.Name != "default" {
		t.Errorf("status %+v", st)
	}
	const secret = "value-never-shown-0451"
	if err := b.s.Set("color", []byte(secret)); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, srv, "the key set on b", func(st statuspage.Status) bool {
		for _, e := range st.Events {
			if e.Kind == "key" && e.Key == "color" {
				return st.Store.Stats.Keys == 1
			}
		}
		return false
	})
	if _, body := get(t, srv, "/status", ""); strings.Contains(body, secret) {
		t.Errorf("/status shows a value:\n%s", body)
	}
	waitStatus(t, srv, "a round-trip time to b", func(st statuspage.Status) bool { return len(st.Peers) == 1 && st.Peers[0].RTT > 0 })

	resp, body := get(t, srv, "/", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<svg id="graph"`) || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET /: %s %v\n%.300s", resp.Status, resp.Header, body)
	}
	if resp, body := get(t, srv, "/metrics", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "reflect_node_peers 1") || !strings.Contains(body, `reflect_store_keys{store="default"} 1`) {
		t.Errorf("GET /metrics: %s\n%s", resp.Status, body)
	}
	for _, host := range []string{"evil.example", "evil.example:80", "192.0.2.1:8080"} {
		if resp, _ := get(t, srv, "/status", host); resp.StatusCode != http.StatusForbidden {
			t.Errorf("Host %s: %s, want 403", host, resp.Status)
		}
	}
	if resp, _ := get(t, srv, "/status", "localhost:1234"); resp.StatusCode != http.StatusOK {
		t.Errorf("Host localhost: %s, want 200", resp.Status)
	}
	if resp, _ := get(t, srv, "/nothing", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing: %s, want 404", resp.Status)
	}
}

func TestPublicAndWithoutMetrics(t *testing.T) {
	a := startMember(t, nil)
	page, err := statuspage.New(statuspage.Config{Node: a.n, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	srv := httptest.NewServer(page.Handler())
	defer srv.Close()
	if resp, body := get(t, srv, "/status", "mesh-host.example:8080"); resp.StatusCode != http.StatusOK || strings.Contains(body, `"store"`) {
		t.Errorf("Public, no store: %s\n%s", resp.Status, body)
	}
	if resp, _ := get(t, srv, "/metrics", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without Config.Metrics: %s, want 404", resp.Status)
	}
}

func TestNewNeedsANode(t *testing.T) {
	if _, err := statuspage.New(statuspage.Config{}); !errors.Is(err, statuspage.ErrConfig) {
		t.Errorf("New without a node: %v, want ErrConfig", err)
	}
}

// Close stops every goroutine of the page (and is safe twice); the
// handler still answers from the last sample.
func TestCloseStopsThePage(t *testing.T) {
	a := startMember(t, nil)
	page, err := statuspage.New(statuspage.Config{Node: a.n, Store: a.s})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(page.Handler())
	defer srv.Close()
	// Its three loops (samples, pings, the store's changes) show in the
	// goroutine dump once they have started.
	for deadline := time.Now().Add(10 * time.Second); pageGoroutines() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the page found, want 3: the check below could not fail", pageGoroutines())
		}
	}
	if err := errors.Join(page.Close(), page.Close()); err != nil {
		t.Fatal(err)
	}
	// Close has waited for each loop's deferred Done; a loop may still be
	// on its way out of its frame for a moment after that.
	for deadline := time.Now().Add(2 * time.Second); pageGoroutines() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the page 2 s after Close", pageGoroutines())
		}
	}
	if resp, _ := get(t, srv, "/status", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/status after Close: %s", resp.Status)
	}
}

// pageGoroutines counts the goroutines running a loop of a Page.
func pageGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "statuspage.(*Page).") && strings.Contains(g, "Loop(") {
			n++
		}
	}
	return n
}
