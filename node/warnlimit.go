package node

import (
	"log/slog"
	"sync"
	"time"
)

// warnEvery is how often one kind of warning about strangers may be logged.
const warnEvery = 10 * time.Second

// warnLimiter logs a warning of each kind at most once per interval, and
// says how many of that kind it held back since the last one: a flood of
// strangers must not become a flood of logs.
type warnLimiter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*warnKind
}

type warnKind struct {
	last       time.Time
	suppressed int
}

func newWarnLimiter(log *slog.Logger, every time.Duration) *warnLimiter {
	return &warnLimiter{log: log, every: every, now: time.Now, kinds: map[string]*warnKind{}}
}

// maxWarnKeys bounds the limiter's table when warnings are limited per key
// (a remote address, a peer): past it, the entries older than the interval
// are dropped, and if that is not enough, every new key of a kind shares
// one entry.
const maxWarnKeys = 1024

// warn logs msg with args unless a warning of kind was logged less than the
// interval ago; it reports whether it logged. The kinds are a fixed set of
// constants, so the map stays small.
func (w *warnLimiter) warn(kind, msg string, args ...any) bool {
	return w.warnKey(kind, "", msg, args...)
}

// warnKey is warn limited per kind and key: each key of a kind (a remote
// address, a peer id) may log once per interval. The table is bounded by
// maxWarnKeys.
func (w *warnLimiter) warnKey(kind, key, msg string, args ...any) bool {
	now := w.now()
	id := kind
	if key != "" {
		id = kind + "\x00" + key
	}
	w.mu.Lock()
	k := w.kinds[id]
	if k == nil {
		if len(w.kinds) >= maxWarnKeys {
			for old, ok := range w.kinds {
				if now.Sub(ok.last) >= w.every {
					delete(w.kinds, old)
				}
			}
			if len(w.kinds) >= maxWarnKeys {
				id = kind + "\x00*"
			}
		}
		if k = w.kinds[id]; k == nil {
			k = &warnKind{}
			w.kinds[id] = k
		}
	}
	if !k.last.IsZero() && now.Sub(k.last) < w.every {
		k.suppressed++
		w.mu.Unlock()
		return false
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	w.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	w.log.Warn(msg, args...)
	return true
}
