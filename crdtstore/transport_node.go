package crdtstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// nodeTransport carries a store over a node: deltas on the reserved topic
// "_reflect/store/<name>", sync on the stream protocols
// "<mesh protocol prefix>/store/<name>/sync/2.0.0" (SyncV2, preferred) and
// ".../sync/1.0.0" (SyncV1, for peers of earlier releases), membership
// from the node's peer events.
type nodeTransport struct {
	n      *node.Node
	topic  string
	protos [2]protocol.ID // SyncV2's, SyncV1's: the order of preference

	mu       sync.Mutex
	sub      *pubsub.Subscription
	stopPeer func()
}

func newNodeTransport(n *node.Node, name string) *nodeTransport {
	base := n.Network().ProtocolPrefix() + "/store/" + name + "/sync/"
	return &nodeTransport{
		n:      n,
		topic:  pubsub.ReservedPrefix + "store/" + name,
		protos: [2]protocol.ID{protocol.ID(base + "2.0.0"), protocol.ID(base + "1.0.0")},
	}
}

// versionedStream is a libp2p stream of a negotiated sync protocol version.
type versionedStream struct {
	network.Stream
	v int
}

func (s versionedStream) SyncVersion() int { return s.v }

// version is the sync protocol version of protocol id.
func (t *nodeTransport) version(id protocol.ID) int {
	if id == t.protos[1] {
		return SyncV1
	}
	return SyncV2
}

func (t *nodeTransport) Self() string { return string(t.n.ID()) }

func (t *nodeTransport) Start(h Handlers) error {
	// pub/sub runs the decoder once per received message, before delivery
	// and relaying; a delta that does not decode is refused there (counted
	// in its Stats.Invalid), and the handler gets the decoded delta.
	decode := func(data []byte) (any, error) { return h.DecodeDelta(data) }
	sub, err := t.n.PubSub().Subscribe(t.topic, func(m pubsub.Message) {
		d, ok := m.Decoded.(ormap.Delta)
		if !ok {
			// Only if another subscription of the reserved topic replaced
			// the decoder (the last one given applies): decode here.
			var err error
			if d, err = h.DecodeDelta(m.Data); err != nil {
				return
			}
		}
		h.Delta(string(m.From), d)
	}, pubsub.AllowReserved(), pubsub.WithDecoder(decode))
	if err != nil {
		return err
	}
	for _, id := range t.protos {
		v := t.version(id)
		t.n.Host().SetStreamHandler(id, func(s network.Stream) {
			h.Sync(string(s.Conn().RemotePeer()), versionedStream{s, v})
		})
	}
	// The store syncs with its direct peers (its neighbours): the others
	// are synced by theirs. OnNeighbour starts with a PeerJoined for
	// every neighbour already joined.
	stop := t.n.OnNeighbour(func(e node.PeerEvent) {
		switch e.State {
		case node.PeerJoined:
			h.PeerUp(string(e.ID))
		case node.PeerLeft:
			h.PeerDown(string(e.ID))
		}
	})
	t.mu.Lock()
	t.sub, t.stopPeer = sub, stop
	t.mu.Unlock()
	return nil
}

func (t *nodeTransport) Publish(ctx context.Context, data []byte) error {
	return t.n.PubSub().Publish(ctx, t.topic, data, pubsub.AllowReserved())
}

// Flush waits until the node has written every queued message.
func (t *nodeTransport) Flush(ctx context.Context) error { return t.n.PubSub().Flush(ctx) }

// OpenSync opens a sync stream to p, in the newest protocol version both
// speak, over a connection we have (the store syncs with its neighbours;
// dialling a peer that left would add a connection the node's degree did
// not choose). A peer that speaks neither (multistream: "protocol not
// supported") runs no such store.
func (t *nodeTransport) OpenSync(ctx context.Context, p string) (Stream, error) {
	s, err := t.n.Host().NewStream(network.WithNoDial(ctx, "store sync"), peer.ID(p), t.protos[:]...)
	if err != nil {
		if errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
			return nil, fmt.Errorf("%w: %s: %w", ErrNoStore, p, err)
		}
		return nil, err
	}
	return versionedStream{s, t.version(s.Protocol())}, nil
}

func (t *nodeTransport) Close() error {
	for _, id := range t.protos {
		t.n.Host().RemoveStreamHandler(id)
	}
	t.mu.Lock()
	sub, stop := t.sub, t.stopPeer
	t.sub, t.stopPeer = nil, nil
	t.mu.Unlock()
	if sub != nil {
		sub.Unsubscribe()
	}
	if stop != nil {
		stop()
	}
	return nil
}
