package disk

import (
	"context"
	"fmt"
	"log/slog"
)

// pebbleLogger sends pebble's log lines to an slog.Logger: Infof at Debug,
// Errorf at Warn (background errors an operator should see), Fatalf at Error
// followed by a panic, because pebble calls Fatalf only when it cannot go on
// (a failed MANIFEST or WAL write, a broken invariant) and expects it not to
// return, like its default logger that exits the process.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Warn("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic(msg)
}
