package warnlog

import (
	"context"
	"log/slog"
)

// New returns a logger that passes records at slog.LevelWarn and above to
// the handler slog.Default() has now, and drops the rest. A library that
// is given no logger uses it, so what an operator must see (a weak secret,
// a peer with another secret, a failed sync) is not lost, and a program's
// logs are not flooded with the library's debug output.
func New() *slog.Logger {
	return slog.New(minLevel{h: slog.Default().Handler(), min: slog.LevelWarn})
}

// minLevel is a handler that drops records below min.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < m.min {
		return nil
	}
	return m.h.Handle(ctx, r)
}

func (m minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(attrs), min: m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h: m.h.WithGroup(name), min: m.min}
}
