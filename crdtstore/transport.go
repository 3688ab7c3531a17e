package crdtstore

import (
	"context"
	"io"
	"time"
)

// Transport is everything the store needs from the network: publish and
// receive deltas, open and accept sync streams, and know who is connected.
// The node-backed implementation (Open) uses a reserved pub/sub topic and
// a libp2p stream protocol; MemNetwork is an in-memory one for tests.
type Transport interface {
	// Self is this replica's peer id.
	Self() string
	// Start installs the handlers. Callbacks may run on any goroutine.
	Start(h Handlers) error
	// Publish sends a delta to the other peers, best effort.
	Publish(ctx context.Context, data []byte) error
	// OpenSync opens a sync stream to peer.
	OpenSync(ctx context.Context, peer string) (Stream, error)
	// Peers lists the connected peers.
	Peers() []string
	// Close stops delivery to the handlers and releases the transport.
	Close() error
}

// Handlers are the store's callbacks for a Transport.
type Handlers struct {
	// Delta receives a delta published by peer from.
	Delta func(from string, data []byte)
	// CheckDelta, if set, vets a received delta before it is delivered or
	// relayed (a pub/sub validator): an error refuses it.
	CheckDelta func(data []byte) error
	// Sync serves a sync stream opened by peer; it closes s when done.
	Sync func(peer string, s Stream)
	// PeerUp and PeerDown report connections to peers.
	PeerUp, PeerDown func(peer string)
}

// Stream is a bidirectional byte stream with deadlines (a libp2p stream).
type Stream interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
	// Reset aborts the stream (both directions) after an error.
	Reset() error
}
