package crdtstore

import (
	"context"
	"io"
	"time"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// Transport is everything the store needs from the network: publish deltas
// and receive them decoded, open and serve sync streams, and hear which
// peers come and go. Open uses one over a node (deltas on a reserved pub/sub
// topic, sync on a libp2p stream protocol); package crdttest has an
// in-memory one for tests.
//
// The store calls Start once, before every other method but Self, and Close
// once, last. Publish, Flush and OpenSync may be called concurrently.
type Transport interface {
	// Self is this replica's peer id, as the other peers' transports name
	// it in their callbacks.
	Self() string
	// Start installs the handlers; the transport calls them from then on,
	// on any goroutine, until Close.
	Start(h Handlers) error
	// Publish sends an encoded delta to every peer that runs the store,
	// best effort: a peer that misses one repairs it by sync.
	Publish(ctx context.Context, data []byte) error
	// Flush returns once every delta Publish accepted has been handed to
	// the network (for a node: written to every peer's connection), or
	// ctx ends.
	Flush(ctx context.Context) error
	// OpenSync opens a sync stream to the store of peer. If peer is
	// reachable but does not run this store, the error wraps ErrNoStore.
	OpenSync(ctx context.Context, peer string) (Stream, error)
	// Close stops calling the handlers (a call in progress may end after
	// it returns) and releases the transport.
	Close() error
}

// Handlers are the store's callbacks for a Transport.
type Handlers struct {
	// DecodeDelta decodes a delta received from a peer. The transport calls
	// it once per delta it receives, before delivering or relaying it: an
	// error refuses the delta (it reaches neither Delta nor other peers).
	DecodeDelta func(data []byte) (ormap.Delta, error)
	// Delta receives a delta published by peer from, as DecodeDelta
	// returned it. Delivery may lose, repeat or reorder deltas: the store
	// joins duplicates harmlessly, holds early ones and repairs gaps by
	// sync.
	Delta func(from string, d ormap.Delta)
	// Sync serves a sync stream opened by peer; it closes s when done.
	Sync func(peer string, s Stream)
	// PeerUp reports a peer that joined (Publish reaches it, OpenSync can
	// try it), including the peers joined before Start; PeerDown reports
	// that it left. The calls for one peer come in order and alternate,
	// starting with PeerUp: the store's membership is exactly what they
	// report.
	PeerUp, PeerDown func(peer string)
}

// Stream is a bidirectional byte stream with deadlines (a libp2p stream).
// It speaks the current version of the sync protocol (SyncV2) unless it is
// a VersionedStream.
type Stream interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
	// Reset aborts the stream (both directions) after an error.
	Reset() error
}

// Versions of the sync protocol. A store speaks both: SyncV2, where a
// reply goes in chunks of bounded size (a store of any size reaches a new
// replica), and SyncV1, where it is one frame of at most
// Options.MaxSyncFrame, with peers of releases before SyncV2.
const (
	SyncV1 = 1
	SyncV2 = 2
)

// VersionedStream is a Stream that says which version of the sync protocol
// it speaks: a transport that negotiates the version with each peer wraps
// its streams so (the node's transport does, by libp2p protocol id,
// preferring SyncV2).
type VersionedStream interface {
	Stream
	SyncVersion() int
}

// streamVersion is the sync protocol version st speaks.
func streamVersion(st Stream) int {
	if v, ok := st.(VersionedStream); ok {
		return v.SyncVersion()
	}
	return SyncV2
}
