package crdtstore

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/node"
)

// What the external tests (package crdtstore_test) need of the internals.

// FrameContext is the kind byte of a sync frame holding a context.
const FrameContext = frameContext

// Context returns s's causal context: equal contexts mean equal states.
func Context(s *Store) ormap.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Context()
}

// SnapshotBytes is the size of s's whole state as one delta: what a new
// replica downloads.
func SnapshotBytes(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(ormap.EncodeDelta(s.m.Diff(ormap.Context{})))
}

// Pending counts the local deltas not yet handed to the transport.
func Pending(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Syncing reports whether a sync with p is running, in either direction.
func Syncing(s *Store, p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.peers[p]
	return ps != nil && ps.syncing
}

// ErrSyncRunning is ClaimSync's refusal.
var ErrSyncRunning = errors.New("a sync with the peer is running")

// ClaimSync marks a sync with p as running, as the store does before it
// starts one, so that the store starts no other with p until
// RunClaimedSync.
func ClaimSync(s *Store, p string) error {
	if ok, _ := s.claim(p, true); !ok {
		return ErrSyncRunning
	}
	return nil
}

// ReleaseSync ends the claim of ClaimSync without a sync of s's own.
func ReleaseSync(s *Store, p string) { s.release(p, false) }

// Joined reports whether the transport has reported p up, and not down.
func Joined(s *Store, p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.peers[p]
	return ps != nil && ps.up
}

// RunClaimedSync runs the sync with p that ClaimSync claimed, s starting it,
// and releases the claim.
func RunClaimedSync(s *Store, p string) error {
	err := s.syncWith(p)
	s.release(p, err == nil)
	return err
}

// SyncNow runs one sync with p now, s starting it.
func SyncNow(s *Store, p string) error {
	if err := ClaimSync(s, p); err != nil {
		return err
	}
	return RunClaimedSync(s, p)
}

// OpenSync opens a sync stream to p through s's transport.
func OpenSync(ctx context.Context, s *Store, p string) (Stream, error) {
	return s.tr.OpenSync(ctx, p)
}

// SyncProtocol is the stream protocol of a store opened on a node, in the
// current version (SyncV2).
func SyncProtocol(s *Store) protocol.ID { return s.tr.(*nodeTransport).protos[0] }

// SyncProtocolV1 is the store's stream protocol of SyncV1.
func SyncProtocolV1(s *Store) protocol.ID { return s.tr.(*nodeTransport).protos[1] }

// OpenV1 opens a store on n as a release before SyncV2 did: its transport
// serves and opens SyncV1 streams only.
func OpenV1(n *node.Node, opts Options) (*Store, error) {
	opts.MaxDeltaBytes = n.PubSub().MaxMessageSize()
	opts.Logger = n.Logger()
	opts = opts.withDefaults()
	tr := newNodeTransport(n, opts.Name)
	tr.protos[0] = tr.protos[1]
	s, err := open(tr, opts)
	if err == nil {
		s.node = n
	}
	return s, err
}

// SetUnarmed stores an expiring value written at wall time at, without
// waking the expiry timer: reads must hide it once expired all the same.
func SetUnarmed(s *Store, key string, value []byte, at time.Time, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.SetTTL(key, value, ormap.Timestamp{Wall: at.UnixNano()}, int64(ttl))
}

// Stored counts the keys the map holds, expired or not.
func Stored(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Len()
}

// Armed reports whether the expiry timer waits for an expiry.
func Armed(s *Store) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.armedOK
}

// NewReplicaID returns a fresh replica id of peer's, as a store on peer
// makes one: what an attacker can mint for itself.
func NewReplicaID(peer string) []byte {
	rid, err := newReplicaID(peer)
	if err != nil {
		panic(err)
	}
	return rid
}

// Replicas returns how many replica ids s knows.
func Replicas(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Replicas()
}

// Sync frame kinds, for tests that speak the protocol on raw streams.
const (
	FrameDelta     = frameDelta
	FrameEqual     = frameEqual
	FrameSyncChunk = frameSyncChunk
)

// SyncBuffered returns the bytes of sync frame buffers s holds now, and
// the most it has held since ResetSyncBufferedPeak.
func SyncBuffered(s *Store) (now, peak int64) {
	return s.lim.gate.buffered.Load(), s.lim.gate.peak.Load()
}

// ResetSyncBufferedPeak restarts the count of SyncBuffered's peak.
func ResetSyncBufferedPeak(s *Store) { s.lim.gate.peak.Store(s.lim.gate.buffered.Load()) }

// Sync limits, for the bounds the tests check.
const (
	SmallFrame       = smallFrame
	LargeReads       = largeReads
	ServeBytesWindow = serveBytesWindow
)

// SetClock makes s read now for the replica lag and the last sync times.
func SetClock(s *Store, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// ExpireNow runs the expiry timer's work now: expired values are removed.
func ExpireNow(s *Store) { s.expireDue() }

// DeliverDelta hands s a delta as its transport does, from peer from.
func DeliverDelta(s *Store, from string, d ormap.Delta) { s.onDelta(from, d) }

// OnRelease makes s call f instead of returning memory to the OS when a
// release is due (memory.go), and wait ShortReleaseQuiet, not releaseQuiet,
// for a load to end.
func OnRelease(s *Store, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freeOSMemory = f
	s.releaseQuiet = ShortReleaseQuiet
}

// ShortReleaseQuiet is how long nothing must arrive before a release in a
// store given OnRelease.
const ShortReleaseQuiet = 250 * time.Millisecond
