package crdtstore

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/crdtstore/internal/engine"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/warnlog"
	"github.com/reflectmesh/reflect/pubsub"
)

// Defaults for zero Options fields.
const (
	// DefaultName is the store name when Options.Name is empty.
	DefaultName = "default"
	// DefaultSyncInterval is how often the store runs a background sync
	// with a random peer (anti-entropy), repairing deltas lost in transit.
	DefaultSyncInterval = 10 * time.Second
	// DefaultSyncTimeout bounds each frame of a sync exchange, read or
	// written.
	DefaultSyncTimeout = 30 * time.Second
	// DefaultMaxSyncFrame bounds one sync frame: the removals of a reply,
	// or a whole reply to a peer of a release before chunked sync (about
	// 400,000 keys of 100 bytes).
	DefaultMaxSyncFrame = 64 << 20
	// DefaultWatchBuffer is a watcher's channel capacity.
	DefaultWatchBuffer = 1024
	// DefaultDiscoveryGrace is how long a store with no peer waits for one
	// before it calls itself synced: mDNS finds LAN peers in well under a
	// second, so an app that calls WaitSynced right after starting sees
	// the mesh's data rather than an empty store.
	DefaultDiscoveryGrace = time.Second
	// DefaultMaxDeltaBytes bounds a received delta for a store opened with
	// OpenTransport (Open takes its node's pub/sub MaxMessageSize instead):
	// pub/sub's default message size, 1 MiB.
	DefaultMaxDeltaBytes = pubsub.DefaultMaxMessageSize
	// valueHeadroom is what MaxValueLen leaves by default for the key and
	// the framing of a delta: 4 KiB, or half of a smaller MaxDeltaBytes.
	valueHeadroom = 4096
)

// diskPackage is the package that registers the engine of Options.Dir.
const diskPackage = "github.com/reflectmesh/reflect/crdtstore/disk"

// diskRegistered reports whether the program imported diskPackage (a
// variable for the test of the error without it).
var diskRegistered = engine.Registered

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Options configures a store. The zero value is usable.
type Options struct {
	// Name selects one of several stores on a mesh (letters, digits, '.',
	// '_', '-'; at most 64). Default DefaultName.
	Name string
	// Dir keeps the store on disk in this directory (created if missing),
	// so that it survives restarts: the entries, the causal context and
	// the replica id (see Persistence in the package documentation). One
	// store per directory, opened by one process at a time. The program
	// must import the engine, package crdtstore/disk (for its side
	// effect); without it Open fails with ErrConfig. Default: the store
	// lives in memory only.
	Dir string
	// Fsync makes a write that returned survive a power loss too (each
	// Set, SetTTL and Delete waits for an fsync, shared by concurrent
	// writers). Without it, a write that returned survives the crash of
	// the process (kill -9), not of the machine. Only with Dir.
	Fsync bool
	// SyncInterval is the anti-entropy period, jittered by a quarter
	// either way. From 2 s up, each wait ends on the same whole seconds as
	// the process's other slow timers, so that an idle process wakes once
	// for all of them. Default DefaultSyncInterval; negative disables it
	// (syncs still run on connect and on gaps).
	SyncInterval time.Duration
	// SyncTimeout bounds each frame of a sync exchange, read or written,
	// and the opening of its stream: a sync runs as long as it makes
	// progress. Default DefaultSyncTimeout.
	SyncTimeout time.Duration
	// MaxSyncFrame bounds a sync frame in bytes: the chunks of a reply aim
	// at 512 KiB (or MaxSyncFrame/2, if smaller), its removals are one
	// frame, and context frames have a much smaller bound (see
	// Replication in the package documentation). It is also the reply
	// budget of each peer: a reply starts only while the peer has taken
	// less than MaxSyncFrame bytes, refilled over a minute. Default
	// DefaultMaxSyncFrame.
	MaxSyncFrame int
	// WatchBuffer is each watcher's channel capacity. Default
	// DefaultWatchBuffer.
	WatchBuffer int
	// DiscoveryGrace is how long after Open a store with no connected peer
	// still waits for one before Synced reports true. Default
	// DefaultDiscoveryGrace; negative means no wait.
	DiscoveryGrace time.Duration
	// MaxDeltaBytes bounds one encoded delta received from a peer; a
	// larger one is refused (Stats.DeltasInvalid). The store merges local
	// deltas into published ones of at most about MaxValueLen (and
	// 256 KiB), so that they fit. Every node of a mesh should use the same
	// limits. Default: Open uses the node's pub/sub MaxMessageSize (a
	// larger delta could not be published anyway), OpenTransport
	// DefaultMaxDeltaBytes.
	MaxDeltaBytes int
	// MaxValueLen bounds a value: Set refuses a larger one with
	// ErrTooLarge, and received deltas holding one are refused. Default
	// MaxDeltaBytes minus 4 KiB for the key and the framing (half of
	// MaxDeltaBytes if it is under 8 KiB). It must be less than
	// MaxDeltaBytes.
	MaxValueLen int
	// Logger receives the store's logs. Default: Open uses the node's
	// logger; OpenTransport a logger that sends warnings and errors to
	// slog.Default() and drops debug and info records (as a node does by
	// default).
	Logger *slog.Logger
	// Metrics, if set, receives the store's Prometheus metrics, labelled
	// store=Name and read from Stats and PeerSyncStatus when scraped: the
	// gauges reflect_store_keys, reflect_store_bytes,
	// reflect_store_pending_deltas and reflect_store_pending_bytes; per
	// peer (label peer, one series per peer PeerSyncStatus lists), the
	// gauges reflect_store_replica_lag_seconds (PeerSyncStatus.Lag) and
	// reflect_store_last_sync_timestamp_seconds (LastSync, once a sync
	// with the peer has ended); and the counters
	// reflect_store_{deltas_sent, deltas_received, deltas_invalid,
	// deltas_dropped, deltas_forged, deltas_over_bounds, pending_dropped,
	// gaps, syncs, syncs_served, sync_failures, sync_busy,
	// sync_received_bytes, sync_sent_bytes, sync_streams_reset,
	// sync_rate_limited, sync_budget_limited, sync_frames_too_large,
	// sync_read_waits}_total. Two stores of one name cannot share a
	// Registerer. Default: the node's (node.Config.Metrics) for Open, none
	// for OpenTransport.
	Metrics prometheus.Registerer
	// KeepFreedMemory leaves to the Go runtime the memory a bulk load
	// freed. By default, once the store has received at least 4 MiB and a
	// quarter of its size (Stats.Bytes) since it last did so, and then
	// nothing for a second, it returns the freed memory to the OS with
	// one forced garbage collection (runtime/debug.FreeOSMemory): see
	// "Memory" in the package documentation.
	KeepFreedMemory bool
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = DefaultSyncTimeout
	}
	if o.MaxSyncFrame == 0 {
		o.MaxSyncFrame = DefaultMaxSyncFrame
	}
	if o.WatchBuffer == 0 {
		o.WatchBuffer = DefaultWatchBuffer
	}
	if o.DiscoveryGrace == 0 {
		o.DiscoveryGrace = DefaultDiscoveryGrace
	}
	if o.MaxDeltaBytes == 0 {
		o.MaxDeltaBytes = DefaultMaxDeltaBytes
	}
	if o.MaxValueLen == 0 {
		o.MaxValueLen = o.MaxDeltaBytes - min(valueHeadroom, o.MaxDeltaBytes/2)
	}
	if o.Logger == nil {
		o.Logger = warnlog.New()
	}
	return o
}

// deltaLimits are the limits of the deltas received from the transport.
func (o Options) deltaLimits() ormap.Limits {
	return ormap.Limits{MaxFrameBytes: o.MaxDeltaBytes, MaxValueLen: o.MaxValueLen}
}

// Validate reports the first invalid field, wrapping ErrConfig.
func (o Options) Validate() error {
	switch {
	case o.Name != "" && !nameRE.MatchString(o.Name):
		return fmt.Errorf("%w: Name %q (want 1-64 of A-Z a-z 0-9 . _ -)", ErrConfig, o.Name)
	case o.SyncTimeout < 0:
		return fmt.Errorf("%w: SyncTimeout %v is negative", ErrConfig, o.SyncTimeout)
	case o.MaxSyncFrame < 0:
		return fmt.Errorf("%w: MaxSyncFrame %d is negative", ErrConfig, o.MaxSyncFrame)
	case o.WatchBuffer < 0:
		return fmt.Errorf("%w: WatchBuffer %d is negative", ErrConfig, o.WatchBuffer)
	case o.MaxDeltaBytes < 0:
		return fmt.Errorf("%w: MaxDeltaBytes %d is negative", ErrConfig, o.MaxDeltaBytes)
	case o.MaxValueLen < 0:
		return fmt.Errorf("%w: MaxValueLen %d is negative", ErrConfig, o.MaxValueLen)
	case o.Fsync && o.Dir == "":
		return fmt.Errorf("%w: Fsync without Dir", ErrConfig)
	case o.Dir != "" && !diskRegistered():
		return fmt.Errorf("%w: Dir needs the disk engine: import _ %q in the program", ErrConfig, diskPackage)
	case o.MaxValueLen > 0 && o.MaxDeltaBytes > 0 && o.MaxValueLen >= o.MaxDeltaBytes:
		return fmt.Errorf("%w: MaxValueLen %d does not fit MaxDeltaBytes %d", ErrConfig, o.MaxValueLen, o.MaxDeltaBytes)
	}
	return nil
}
