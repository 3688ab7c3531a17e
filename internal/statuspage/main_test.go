package statuspage

import (
	"os"
	"testing"

	"github.com/reflectmesh/reflect/internal/netns"
)

// The tests open sockets: they run in a fresh network namespace.
func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }
