package warnlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Not parallel: it replaces slog.Default.
func TestNewForwardsWarnAndAbove(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(old)

	log := New().With("store", "s").WithGroup("g")
	log.Debug("dbg")
	log.Info("inf")
	log.Warn("wrn", "k", 1)
	log.Error("err")
	out := buf.String()
	for _, gone := range []string{"dbg", "inf"} {
		if strings.Contains(out, gone) {
			t.Errorf("%q logged:\n%s", gone, out)
		}
	}
	for _, want := range []string{"msg=wrn store=s g.k=1", "msg=err"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
}
