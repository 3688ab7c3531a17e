package disk

import (
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs a child mode when the test binary is re-executed by a test
// (see child_test.go), and checks for leaked goroutines otherwise.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)
