package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reflectmesh/reflect/internal/netns"
)

// browserEnv makes the browser test fail instead of skipping when no
// Chromium is installed (CI sets it).
const browserEnv = "REFLECT_REQUIRE_BROWSER"

// findChromium returns the path of a Chromium or Chrome, or skips the
// test (fails it under REFLECT_REQUIRE_BROWSER=1).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(browserEnv) == "1" {
		t.Fatalf("no chromium in $PATH and %s=1 (apt-get install chromium)", browserEnv)
	}
	t.Skipf("no chromium in $PATH (apt-get install chromium; %s=1 makes this a failure)", browserEnv)
	return ""
}

// The status page of a 3-node mesh, loaded in a real browser, shows the
// three nodes and their links, and a key set on another node appears in
// its events, as text even when the key name looks like markup.
func TestStatusPageInBrowser(t *testing.T) {
	netns.Require(t)
	chrome := findChromium(t)
	key := testKey(t)
	a := startDemo(t, "a", nil, "-json", "-key", key, "-http", "127.0.0.1:0")
	b := startDemo(t, "b", nil, "-json", "-key", key)
	c := startDemo(t, "c", nil, "-json", "-key", key)
	for _, p := range []*proc{a, b, c} {
		p.Must("wait-peers 2")
	}
	if !strings.HasPrefix(a.HTTP, "http://127.0.0.1:") {
		t.Fatalf("ready line's http = %q, want the page's URL", a.HTTP)
	}

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // tests run as root in their namespace
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	// No timeout on the browser's context: it would stop the browser
	// (chromedp.Run); each action below is bounded.
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()

	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v\npage text:\n%s", what, err, page)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(a.HTTP)); err != nil {
		t.Fatal(err)
	}
	poll("three nodes and three links in the graph",
		`document.querySelectorAll('#graph g.node').length === 3 && document.querySelectorAll('#graph line').length === 3`)
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#graph g.node')].map(g => g.dataset.id).sort()`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.ID, b.ID, c.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("graph nodes %v, want %v", ids, want)
	}
	poll("two joined peers in the table", `document.querySelectorAll('#peers tbody tr').length === 2`)

	const markup = `<i>injected</i>` // a key name: one word
	b.Must("set color light blue")
	c.Must("set " + markup + " 1")
	poll("the key set on b in the events", `[...document.querySelectorAll('#events li')].some(li => li.textContent.includes('key …`+b.ID[len(b.ID)-6:]+` color: set'))`)
	poll("the markup key as text", `[...document.querySelectorAll('#events li')].some(li => li.textContent.includes('`+markup+`: set'))`)
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#events i') !== null`))
	if err != nil {
		t.Fatal(err)
	}
	if injected {
		t.Error("a key name became markup in the page")
	}
	poll("two keys in the store panel", `document.querySelector('#store').textContent.includes('keys2')`)

	// /status and /metrics beside the page.
	for path, want := range map[string]string{"status": `"store"`, "metrics": "reflect_node_peers 2"} {
		resp, err := http.Get(a.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET /%s: %s, want %q in:\n%.2000s", path, resp.Status, want, body)
		}
	}
	for _, p := range []*proc{c, b, a} {
		if code := p.EndInput(); code != 0 {
			t.Errorf("%s: exit status %d", p.Name, code)
		}
	}
}
