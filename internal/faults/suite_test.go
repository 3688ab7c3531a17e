package faults

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/reflectmesh/reflect/internal/netlab"
	"github.com/reflectmesh/reflect/internal/netns"
)

// TestMain runs the scenarios, then prints their figures and removes the
// demo's build directory. netns.RunTests returns only in the process that
// ran the tests (the parent that re-executes itself in a namespace exits
// inside it), so this happens once, after every scenario, in whatever order
// they ran.
//
// Where labs cannot be built (not root, no nftables) and
// REFLECT_REQUIRE_NETNS is not set, no scenario runs at all, so that
// `go test ./...` shows "[no tests to run]" beside this package without -v
// (each scenario would only skip, silently).
func TestMain(m *testing.M) {
	if period := os.Getenv(wakeHelperEnv); period != "" {
		os.Exit(runWakeHelper(period)) // a process of measureWake
	}
	if err := netlab.Available(); err != nil && !netns.Required() {
		flag.Parse()
		_ = flag.Set("test.run", "^$")
		fmt.Fprintf(os.Stderr, "faults: the fault suite does not run here: %v\n", err)
	}
	code := netns.RunTests(m)
	printSummary()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintf(os.Stderr, "faults: removing the demo's build: %v\n", err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
	buildDir  string // set by the first setup; removed by TestMain
)

// setup skips or fails t unless labs can be built, then builds the demo
// once for the whole suite.
func setup(t *testing.T) {
	t.Helper()
	netns.Require(t)
	netlab.Require(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "reflect-faults-")
		if buildErr == nil {
			demoBin, buildErr = buildDemo(buildDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// printSummary prints every scenario's figures, if any scenario ran.
func printSummary() {
	figures.Lock()
	defer figures.Unlock()
	if len(figures.lines) == 0 {
		return
	}
	fmt.Fprintln(os.Stderr, "== fault suite summary ==")
	for _, l := range figures.lines {
		fmt.Fprintln(os.Stderr, l)
	}
}
