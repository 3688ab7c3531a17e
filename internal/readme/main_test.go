package readme

import (
	"os"
	"testing"

	"github.com/reflectmesh/reflect/internal/netns"
)

// TestFirstSnippetRuns runs instances with mDNS: the package's tests run in
// a fresh network namespace.
func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }
