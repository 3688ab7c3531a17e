package crdtstore

import "sync/atomic"

// Origin says where a change came from.
type Origin int

const (
	// OriginLocal: a Set or Delete on this node.
	OriginLocal Origin = iota + 1
	// OriginRemote: a change made on another node.
	OriginRemote
	// OriginSnapshot: the key's value when the watch started (WithSnapshot).
	OriginSnapshot
	// OriginSnapshotDone marks the end of the snapshot (WithSnapshot): the
	// Change after the last OriginSnapshot one, with no key or value. It
	// comes even if the snapshot is empty; every later Change is a change.
	OriginSnapshotDone
	// OriginExpired: a value's TTL passed on this node (SetTTL). The Change
	// is Deleted, or, if the key had a concurrent value (a sibling) that has
	// not expired, carries that one.
	OriginExpired
)

func (o Origin) String() string {
	switch o {
	case OriginLocal:
		return "local"
	case OriginRemote:
		return "remote"
	case OriginSnapshot:
		return "snapshot"
	case OriginSnapshotDone:
		return "snapshot-done"
	case OriginExpired:
		return "expired"
	}
	return "unknown"
}

// Change is one change of a key's visible value. Its Entry is the new value
// with its metadata (Key, Value, Time, Writer, Siblings, Expires); only Key
// is set if Deleted, nothing for OriginSnapshotDone.
type Change struct {
	Entry
	Deleted bool
	// Origin says where the change came from; OriginExpired for an expiry,
	// OriginSnapshotDone for the end-of-snapshot mark.
	Origin Origin
	// Missed is the number of changes dropped just before this one
	// because the watcher fell behind its buffer. Read the store again
	// (Get, List) to catch up.
	Missed uint64
}

// Watcher delivers the changes of keys under a prefix.
type Watcher struct {
	s      *Store
	prefix string
	ch     chan Change
	missed uint64 // guarded by s.mu
	lost   atomic.Uint64
	closed bool // guarded by s.mu
}

// WatchOption configures Watch.
type WatchOption func(*watchOptions)

type watchOptions struct {
	snapshot bool
	buffer   int
}

// WithSnapshot makes the watcher first deliver every existing key under the
// prefix (Origin OriginSnapshot, in key order), then one Change with Origin
// OriginSnapshotDone that marks the end of the snapshot, then the changes;
// nothing falls between the two.
func WithSnapshot() WatchOption { return func(o *watchOptions) { o.snapshot = true } }

// WithBuffer sets the watcher's channel capacity (default
// Options.WatchBuffer).
func WithBuffer(n int) WatchOption {
	return func(o *watchOptions) {
		if n > 0 {
			o.buffer = n
		}
	}
}

// Watch returns a watcher of the keys starting with prefix ("" for all):
// local and remote changes, in the order this node applied them. If the
// watcher falls behind by more than its buffer, changes are dropped and the
// next delivered Change reports how many (Missed). Stop it when done; Close
// of the store stops it too (its channel is then closed).
func (s *Store) Watch(prefix string, opts ...WatchOption) *Watcher {
	o := watchOptions{buffer: s.opts.WatchBuffer}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var snap []Change
	if o.snapshot && !s.closed {
		v := s.viewLocked()
		for k, e := range v.Scan(prefix) {
			snap = append(snap, Change{Entry: s.entry(k, e, v.Siblings(k)), Origin: OriginSnapshot})
		}
		snap = append(snap, Change{Origin: OriginSnapshotDone})
	}
	w := &Watcher{s: s, prefix: prefix, ch: make(chan Change, o.buffer+len(snap))}
	for _, c := range snap {
		w.ch <- c
	}
	if s.closed {
		w.closeLocked()
		return w
	}
	s.watchers[w] = struct{}{}
	s.m.DiscardChanges(false)
	return w
}

// Updates returns the channel of changes. It is closed by Stop and by the
// store's Close.
func (w *Watcher) Updates() <-chan Change { return w.ch }

// Dropped returns how many changes were dropped because the watcher fell
// behind.
func (w *Watcher) Dropped() uint64 { return w.lost.Load() }

// Stop ends the watch and closes the channel. Safe to call more than once.
func (w *Watcher) Stop() {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	delete(w.s.watchers, w)
	w.s.m.DiscardChanges(len(w.s.watchers) == 0)
	w.closeLocked()
}

func (w *Watcher) closeLocked() {
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
}

// notifyLocked offers c to every matching watcher without blocking; s.mu
// held.
func (s *Store) notifyLocked(c Change) {
	for w := range s.watchers {
		if !hasPrefix(c.Key, w.prefix) {
			continue
		}
		c.Missed = w.missed
		select {
		case w.ch <- c:
			w.missed = 0
		default:
			w.missed++
			w.lost.Add(1)
		}
	}
}
