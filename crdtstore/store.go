package crdtstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/crdtstore/internal/engine"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/node"
)

// Store is one replica of a named key-value store shared by every node of
// the mesh. It is safe for concurrent use.
type Store struct {
	opts     Options
	log      *slog.Logger
	tr       Transport
	node     *node.Node // the node Open ran on; nil for OpenTransport
	ownsNode bool       // New started node: Close closes it
	syncLim  ormap.Limits
	deltaLim ormap.Limits

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the flusher
	// flushMu serialises flush: the flusher's, Flush's and Close's.
	flushMu sync.Mutex
	opened  time.Time   // when Open ran (for DiscoveryGrace)
	syncCh  chan string // peers to sync with now
	gapCh   chan string // peers whose deltas revealed a gap

	self    string        // this replica's id, hex (Entry.Writer)
	expKick chan struct{} // wakes the expiry timer: an earlier expiry

	mu       sync.Mutex
	m        *ormap.Map
	clock    ormap.HLC
	armed    int64 // the expiry the timer waits for; valid if armedOK
	armedOK  bool
	pending  []queued // local deltas not yet published
	pendSize int
	watchers map[*Watcher]struct{}
	peers    map[string]*peerState
	writers  map[ormap.ReplicaID]string // replica → its node's peer id (Entry.Peer)
	guard    guardState                 // the causality guard's (replicate.go)
	changed  chan struct{}              // closed and replaced when sync state changes
	closed   bool
	caughtUp bool             // a sync has succeeded since Open
	running  int              // syncs in progress, either role
	deferred map[string]bool  // syncs put off while catching up
	lagging  int              // peers behind: peerState.lag.behind set (lag.go)
	now      func() time.Time // the clock of lag and last sync; s.mu guards it (tests set it)

	stats    counters
	lim      syncLimits // the sync limits' state (synclimits.go)
	syncWarn syncWarn   // rate limit of the sync failures' Warn logs (progress.go)

	collector prometheus.Collector // registered with opts.Metrics (metrics.go)

	db         engine.DB   // Options.Dir's engine, nil without (persist.go)
	diskFailed atomic.Bool // a save failed: local writes are refused

	// Returning the memory of a bulk load (memory.go).
	received     atomic.Uint64 // bytes received from peers: deltas, sync reads
	releasedAt   atomic.Uint64 // received at the last release
	relKick      chan struct{} // wakes the release loop
	freeOSMemory func()        // what a release runs; s.mu guards it (tests replace it)
	releaseQuiet time.Duration // memory.go's releaseQuiet; s.mu guards it (tests shorten it)
}

// peerState is what the store knows of one peer: a joined one (the
// transport reported it up), or one it synced with that is not (yet).
type peerState struct {
	up      bool // joined: between the transport's PeerUp and PeerDown
	synced  bool // a sync completed since it connected (or it has no store)
	syncing bool // a sync with it is running, in either direction

	lag           peerLag   // lag.go
	lastSync      time.Time // end of the last sync exchange, either role
	lastSyncErr   string    // its error, "" if it succeeded
	lastSyncBytes int       // the bytes it moved, both directions

	run        *countingStream // the sync exchange running now, nil if none (progress.go)
	runStarted time.Time       // when it started
}

type counters struct {
	deltasSent, deltasReceived, deltasInvalid, deltasDropped atomic.Uint64
	gaps, syncs, syncFailures, syncServed                    atomic.Uint64
	syncBytesIn, syncBytesOut, syncBusy                      atomic.Uint64
	// The causality guard's (replicate.go).
	deltasForged, deltasOverBounds, pendingDropped atomic.Uint64
}

// Stats counts the store's replication traffic on this node, and gives
// its size (Keys, Bytes). The JSON names are the fields' in snake_case.
type Stats struct {
	DeltasSent     uint64 `json:"deltas_sent"`
	DeltasReceived uint64 `json:"deltas_received"`
	// DeltasInvalid counts received deltas that did not decode or were
	// refused by Join; the store ignored them.
	DeltasInvalid uint64 `json:"deltas_invalid"`
	// DeltasDropped counts local deltas not published because too many were
	// waiting; peers recover them by sync.
	DeltasDropped uint64 `json:"deltas_dropped"`
	// Gaps counts received deltas that revealed missed ones (each triggers
	// a sync with the sender).
	Gaps uint64 `json:"gaps"`
	// Syncs counts completed sync exchanges this node started, SyncServed
	// those it answered, SyncFailures those that failed.
	Syncs        uint64 `json:"syncs"`
	SyncServed   uint64 `json:"sync_served"`
	SyncFailures uint64 `json:"sync_failures"`
	// SyncBytesIn and SyncBytesOut count the bytes read and written by sync
	// exchanges, both directions.
	SyncBytesIn  uint64 `json:"sync_bytes_in"`
	SyncBytesOut uint64 `json:"sync_bytes_out"`
	// SyncBusy counts syncs this replica put off while catching up with
	// another peer (it downloads the state from one peer at a time).
	SyncBusy uint64 `json:"sync_busy"`
	// The causality guard (see "Trust" in the package documentation).
	// DeltasForged counts received deltas and sync replies refused as not
	// their sender's to send: a delta that is not one replica's own writes
	// (no origin, a sync reply, entries of another replica), whose origin
	// replica is not its publisher's, or that claims dots of this replica
	// it never minted; a sync reply that is not a diff. DeltasOverBounds
	// counts those refused because joining them would make the store know
	// more replica ids or context intervals than its peers decode, or
	// because their sender introduced too many replicas. Both are also in
	// DeltasInvalid (deltas) or SyncFailures (sync replies).
	DeltasForged     uint64 `json:"deltas_forged"`
	DeltasOverBounds uint64 `json:"deltas_over_bounds"`
	// PendingDeltas and PendingBytes are the received deltas held now until
	// the dots they need arrive, and their estimated memory (bounded: see
	// "Limits"); PendingDropped counts those dropped to stay within the
	// bounds (a sync repairs what they carried).
	PendingDeltas  int    `json:"pending_deltas"`
	PendingBytes   int    `json:"pending_bytes"`
	PendingDropped uint64 `json:"pending_dropped"`
	// The sync limits (package documentation, Replication), each counted
	// when it refuses a peer: SyncStreamsReset counts served sync streams
	// reset because the same peer opened another; SyncRateLimited and
	// SyncBudgetLimited count sync requests answered "busy" because the
	// peer asked for too many syncs per second, or took too many reply
	// bytes; SyncFramesTooLarge counts frames refused for their declared
	// length; SyncReadWaits counts large frames that waited for one of the
	// store's large-read slots.
	SyncStreamsReset   uint64 `json:"sync_streams_reset"`
	SyncRateLimited    uint64 `json:"sync_rate_limited"`
	SyncBudgetLimited  uint64 `json:"sync_budget_limited"`
	SyncFramesTooLarge uint64 `json:"sync_frames_too_large"`
	SyncReadWaits      uint64 `json:"sync_read_waits"`
	// Keys is the number of keys with a value.
	Keys int `json:"keys"`
	// Bytes is the size of the live data: each key with a value once,
	// plus every value stored under it (siblings included). An expired
	// value counts until the expiry timer removes it, moments later. It
	// is kept as the data changes; reading it costs nothing.
	Bytes int `json:"bytes"`
}

const (
	// maxPendingBytes bounds local deltas waiting to be published; beyond
	// it the oldest are dropped (peers repair by sync).
	maxPendingBytes = 64 << 20
	// deltaBudget bounds the size of one published delta made of merged
	// ones (unless MaxValueLen is smaller).
	deltaBudget = 256 << 10
	// perEntryOverhead approximates the encoded size of one entry besides
	// its key and value.
	perEntryOverhead = 48
	// replicaIDLen is the size of a random replica id.
	replicaIDLen = 16
)

// Open opens the store named opts.Name on n. Its state is in memory (and,
// with opts.Dir, on disk, read back here): it is filled by syncing with the
// peers, at once and whenever a peer connects.
func Open(n *node.Node, opts Options) (*Store, error) {
	if opts.MaxDeltaBytes == 0 {
		opts.MaxDeltaBytes = n.PubSub().MaxMessageSize()
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = n.Logger()
	}
	if opts.Metrics == nil {
		opts.Metrics = n.Metrics()
	}
	opts = opts.withDefaults()
	s, err := open(newNodeTransport(n, opts.Name), opts)
	if err != nil {
		return nil, err
	}
	s.node = n
	return s, nil
}

// New starts a node with cfg and opens the default store on it: the
// one-call form. Close closes both.
//
//	kv, err := crdtstore.New(node.Config{Key: "SECRET"})
func New(cfg node.Config) (*Store, error) {
	n, err := node.New(cfg)
	if err != nil {
		return nil, err
	}
	s, err := Open(n, Options{})
	if err != nil {
		return nil, errors.Join(err, n.Close())
	}
	s.ownsNode = true
	return s, nil
}

// OpenTransport opens a store over any Transport, such as package
// crdttest's in-memory one.
func OpenTransport(tr Transport, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return open(tr, opts.withDefaults())
}

// open opens a store over tr with opts valid and defaulted.
func open(tr Transport, opts Options) (*Store, error) {
	var (
		rid []byte
		m   *ormap.Map
		rs  *restored
		err error
	)
	if opts.Dir != "" {
		if rs, err = openDisk(opts.Dir, opts.Fsync, tr.Self(), opts); err != nil {
			return nil, err
		}
		rid, m = rs.rid, rs.m
	} else {
		if rid, err = newReplicaID(tr.Self()); err != nil {
			return nil, fmt.Errorf("crdtstore: replica id: %w", err)
		}
		m = ormap.New(ormap.ReplicaID(rid))
	}
	m.DiscardChanges(true) // until a watcher comes
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		opts:     opts,
		log:      opts.Logger.With("store", opts.Name),
		tr:       tr,
		syncLim:  ormap.Limits{MaxFrameBytes: opts.MaxSyncFrame},
		deltaLim: opts.deltaLimits(),
		ctx:      ctx,
		cancel:   cancel,
		kick:     make(chan struct{}, 1),
		expKick:  make(chan struct{}, 1),
		relKick:  make(chan struct{}, 1),
		self:     hex.EncodeToString(rid),
		opened:   time.Now(),
		syncCh:   make(chan string, 64),
		gapCh:    make(chan string, 64),
		m:        m,
		watchers: make(map[*Watcher]struct{}),
		peers:    make(map[string]*peerState),
		writers:  map[ormap.ReplicaID]string{ormap.ReplicaID(rid): tr.Self()},
		deferred: make(map[string]bool),
		changed:  make(chan struct{}),
		now:      time.Now,

		freeOSMemory: debug.FreeOSMemory,
		releaseQuiet: releaseQuiet,
	}
	// A peer whose clock runs far ahead must not drag ours along.
	s.clock.MaxOffset = int64(time.Hour)
	if rs != nil {
		s.db = rs.db
		s.resumeLocked(rs) // not shared yet: no lock needed
	}
	s.goOwned(s.flushLoop)
	s.goOwned(s.syncLoop)
	s.goOwned(s.expireLoop)
	if !opts.KeepFreedMemory {
		s.goOwned(s.releaseLoop)
	}
	if err := s.registerMetrics(); err != nil {
		cancel()
		s.wg.Wait()
		return nil, errors.Join(err, s.closeDisk())
	}
	if err := tr.Start(Handlers{DecodeDelta: s.decodeDelta, Delta: s.onDelta, Sync: s.onSync, PeerUp: s.peerUp, PeerDown: s.peerDown}); err != nil {
		s.unregisterMetrics()
		cancel()
		s.wg.Wait()
		return nil, errors.Join(fmt.Errorf("crdtstore: start transport: %w", err), s.closeDisk())
	}
	return s, nil
}

func (s *Store) goOwned(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Close publishes the last local changes, stops replication and the
// watchers, and waits for every goroutine of the store. A store made by New
// also closes its node. A second Close returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	for w := range s.watchers {
		w.closeLocked()
	}
	s.watchers = nil
	s.mu.Unlock()
	// Not under s.mu: a scrape running now holds the registry and waits
	// for s.mu (Stats).
	s.unregisterMetrics()

	s.flush() // the last writes
	s.cancel()
	err := s.tr.Close()
	s.wg.Wait()
	err = errors.Join(err, s.closeDisk())
	if s.ownsNode {
		err = errors.Join(err, s.node.Close())
	}
	return err
}

// Node returns the node the store was opened on (by Open or New), nil for a
// store opened with OpenTransport.
func (s *Store) Node() *node.Node { return s.node }

func checkKey(key string) error {
	if key == "" || !utf8.ValidString(key) {
		return fmt.Errorf("%w: %q", ErrKey, key)
	}
	return nil
}

// Set stores value under key on every node. It returns at once; the change
// reaches the other nodes in the background. A concurrent Set of the same key
// on another node leaves both values as siblings until one is overwritten;
// Get picks the same one on every node (see GetAll). The value does not
// expire, whatever the key's earlier value did (see SetTTL).
func (s *Store) Set(key string, value []byte) error { return s.set(key, value, 0) }

// set is Set, and SetTTL with ttl > 0.
func (s *Store) set(key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := s.deltaLim.CheckSet(key, value); err != nil {
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	ts := s.clock.Now(time.Now().UnixNano())
	d := s.m.SetTTL(key, value, ts, int64(ttl))
	t := s.saveLocked()
	if t == nil {
		s.queueLocked(d, len(key)+len(value)+perEntryOverhead)
	}
	if ttl > 0 {
		s.armLocked()
	}
	if len(s.watchers) > 0 {
		e := d.Entries(key)[0] // a copy of value
		s.notifyLocked(Change{Entry: s.entry(key, e, 1), Origin: OriginLocal})
	}
	s.mu.Unlock()
	return s.publishSaved(t, d, len(key)+len(value)+perEntryOverhead)
}

// writableLocked returns why a local write cannot be made now, if it
// cannot: the store is closed, or its disk failed; s.mu held.
func (s *Store) writableLocked() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.diskFailed.Load():
		return fmt.Errorf("%w: an earlier save failed", ErrDisk)
	}
	return nil
}

// publishSaved queues the local delta d for publishing once its records
// are saved (t, nil without a disk: queued already) and wakes the
// publisher. With a disk, a delta whose save failed is not published: the
// write returned an error.
func (s *Store) publishSaved(t engine.Ticket, d ormap.Delta, size int) error {
	if t != nil {
		if err := s.saved(t); err != nil {
			return err
		}
		s.mu.Lock()
		s.queueLocked(d, size)
		s.mu.Unlock()
	}
	s.kickFlusher()
	return nil
}

// Delete removes key on every node. A Set of the same key made concurrently
// on another node (before it saw this Delete) wins: the key keeps that value.
// Deleting a missing key does nothing.
func (s *Store) Delete(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	d, ok := s.m.Delete(key)
	if !ok {
		s.mu.Unlock()
		return nil
	}
	t := s.saveLocked()
	if t == nil {
		s.queueLocked(d, len(key)+perEntryOverhead)
	}
	s.notifyLocked(Change{Entry: Entry{Key: key}, Deleted: true, Origin: OriginLocal})
	s.mu.Unlock()
	return s.publishSaved(t, d, len(key)+perEntryOverhead)
}

// Get returns the value of key and whether it has one. An expired value is
// never returned, even before the store's timer has removed it.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	e, ok := s.viewLocked().Get(key)
	s.mu.Unlock()
	return e.Value, ok
}

// GetAll returns every concurrent value of key (siblings) that has not
// expired, the one Get returns first; nil if key has no value.
func (s *Store) GetAll(key string) [][]byte {
	s.mu.Lock()
	es := s.viewLocked().GetAll(key)
	s.mu.Unlock()
	if es == nil {
		return nil
	}
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.Value
	}
	return out
}

// SetString stores a string value.
func (s *Store) SetString(key, value string) error { return s.Set(key, []byte(value)) }

// GetString returns key's value as a string.
func (s *Store) GetString(key string) (string, bool) {
	v, ok := s.Get(key)
	return string(v), ok
}

// SetJSON stores v encoded as JSON.
func (s *Store) SetJSON(key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("crdtstore: encode %q: %w", key, err)
	}
	return s.Set(key, data)
}

// GetJSON decodes key's JSON value into v. It reports false if key has no
// value, and an error if the value is not JSON for v.
func (s *Store) GetJSON(key string, v any) (bool, error) {
	data, ok := s.Get(key)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("crdtstore: decode %q: %w", key, err)
	}
	return true, nil
}

// KeyValue is one key and its value.
type KeyValue struct {
	Key   string
	Value []byte
}

// Keys returns the keys starting with prefix, sorted.
func (s *Store) Keys(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.viewLocked().Keys(prefix)
}

// List returns the keys starting with prefix with their values, sorted by
// key: a snapshot, taken at one moment under the store's lock. Scan reads a
// large store without copying it.
func (s *Store) List(prefix string) []KeyValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []KeyValue
	for k, e := range s.viewLocked().Scan(prefix) {
		out = append(out, KeyValue{Key: k, Value: e.Value})
	}
	return out
}

// Len returns the number of keys with a value.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.viewLocked().Len()
}

// Stats returns the store's counters and size. It costs O(1): nothing is
// scanned. Per-peer state (sync, replica lag) is in PeerSyncStatus.
func (s *Store) Stats() Stats {
	c := &s.stats
	s.mu.Lock()
	ps := s.m.PendingStats()
	bytes := s.m.Bytes()
	s.mu.Unlock()
	return Stats{
		DeltasSent:     c.deltasSent.Load(),
		DeltasReceived: c.deltasReceived.Load(),
		DeltasInvalid:  c.deltasInvalid.Load(),
		DeltasDropped:  c.deltasDropped.Load(),
		Gaps:           c.gaps.Load(),
		Syncs:          c.syncs.Load(),
		SyncServed:     c.syncServed.Load(),
		SyncFailures:   c.syncFailures.Load(),
		SyncBytesIn:    c.syncBytesIn.Load(),
		SyncBytesOut:   c.syncBytesOut.Load(),
		SyncBusy:       c.syncBusy.Load(),
		// The causality guard's.
		DeltasForged:       c.deltasForged.Load(),
		DeltasOverBounds:   c.deltasOverBounds.Load(),
		PendingDeltas:      ps.Deltas,
		PendingBytes:       ps.Bytes,
		PendingDropped:     c.pendingDropped.Load(),
		SyncStreamsReset:   s.lim.refused[limitStreams].Load(),
		SyncRateLimited:    s.lim.refused[limitRate].Load(),
		SyncBudgetLimited:  s.lim.refused[limitBudget].Load(),
		SyncFramesTooLarge: s.lim.refused[limitFrame].Load(),
		SyncReadWaits:      s.lim.gate.waits.Load(),
		Keys:               s.Len(),
		Bytes:              bytes,
	}
}

// String describes the store for logs.
func (s *Store) String() string {
	return fmt.Sprintf("crdtstore(%s, %d keys)", s.opts.Name, s.Len())
}

// hasPrefix is strings.HasPrefix, named for the watchers.
func hasPrefix(key, prefix string) bool { return strings.HasPrefix(key, prefix) }
