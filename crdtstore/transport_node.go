package crdtstore

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// nodeTransport carries a store over a node: deltas on the reserved topic
// "_reflect/store/<name>", sync on the stream protocol
// "<mesh protocol prefix>/store/<name>/sync/1.0.0".
type nodeTransport struct {
	n     *node.Node
	topic string
	proto protocol.ID

	mu       sync.Mutex
	sub      *pubsub.Subscription
	stopPeer func()
}

func newNodeTransport(n *node.Node, name string) *nodeTransport {
	return &nodeTransport{
		n:     n,
		topic: pubsub.ReservedPrefix + "store/" + name,
		proto: protocol.ID(n.Network().ProtocolPrefix() + "/store/" + name + "/sync/" + syncProtocolVersion),
	}
}

func (t *nodeTransport) Self() string { return string(t.n.ID()) }

func (t *nodeTransport) Start(h Handlers) error {
	sub, err := t.n.PubSub().Subscribe(t.topic, func(m pubsub.Message) {
		h.Delta(string(m.From), m.Data)
	}, pubsub.AllowReserved(), pubsub.WithValidator(h.CheckDelta))
	if err != nil {
		return err
	}
	t.n.Host().SetStreamHandler(t.proto, func(s network.Stream) {
		h.Sync(string(s.Conn().RemotePeer()), s)
	})
	stop := t.n.OnPeer(func(e node.PeerEvent) {
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
	// Peers connected before the store opened.
	for _, p := range t.n.Peers() {
		h.PeerUp(string(p))
	}
	return nil
}

func (t *nodeTransport) Publish(ctx context.Context, data []byte) error {
	return t.n.PubSub().Publish(ctx, t.topic, data, pubsub.AllowReserved())
}

func (t *nodeTransport) OpenSync(ctx context.Context, p string) (Stream, error) {
	return t.n.Host().NewStream(ctx, peer.ID(p), t.proto)
}

func (t *nodeTransport) Peers() []string {
	ps := t.n.Peers()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func (t *nodeTransport) Close() error {
	t.n.Host().RemoveStreamHandler(t.proto)
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

// Flush waits until the node has written every queued message.
func (t *nodeTransport) Flush(ctx context.Context) error { return t.n.PubSub().Flush(ctx) }
