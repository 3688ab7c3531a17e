package faults

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/reflectmesh/reflect/internal/netlab"
	"github.com/reflectmesh/reflect/internal/netns"
)

func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }

var (
	buildOnce sync.Once
	buildErr  error
	buildDir  string
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

// TestZSummary prints every scenario's figures (it runs last: tests run in
// source order, and this file sorts after the scenarios' callers).
func TestZSummary(t *testing.T) {
	figures.Lock()
	defer figures.Unlock()
	if buildDir != "" {
		defer os.RemoveAll(buildDir)
	}
	if len(figures.lines) == 0 {
		t.Skip("no scenario ran")
	}
	fmt.Fprintln(os.Stderr, "== fault suite summary ==")
	for _, l := range figures.lines {
		fmt.Fprintln(os.Stderr, l)
	}
}
