package main

import (
	"context"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// reflectMember is one Reflect node in a process of its own, configured as
// in reflectSystem: defaults, loopback only, mDNS off.
type reflectMember struct {
	nd *node.Node
}

func newReflectMember(key string) (*reflectMember, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: reflect needs -key", errParticipantFlags)
	}
	nd, err := node.New(node.Config{
		Key:         key,
		DisableMDNS: true,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
	})
	if err != nil {
		return nil, err
	}
	return &reflectMember{nd: nd}, nil
}

// Addr is the node's first listen address with its peer ID (/p2p/...).
func (m *reflectMember) Addr() (string, error) {
	a := m.nd.Addrs()
	if len(a) == 0 {
		return "", fmt.Errorf("node has no address")
	}
	return a[0].String(), nil
}

func (m *reflectMember) Connect(ctx context.Context, addrs []string) error {
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return err
		}
		if err := m.nd.Connect(ctx, a); err != nil {
			return fmt.Errorf("connect %s: %w", s, err)
		}
	}
	return nil
}

func (m *reflectMember) WaitPeers(ctx context.Context, n int) error { return m.nd.WaitPeers(ctx, n) }

func (m *reflectMember) Subscribe(_ context.Context, deliver func([]byte)) error {
	_, err := m.nd.PubSub().Subscribe(topicName, func(msg pubsub.Message) { deliver(msg.Data) })
	return err
}

func (m *reflectMember) WaitSubscribers(ctx context.Context, n int) error {
	return m.nd.PubSub().WaitSubscribers(ctx, topicName, n)
}

func (m *reflectMember) Publish(ctx context.Context, data []byte) error {
	return m.nd.Publish(ctx, topicName, data)
}

// Drops is reflectCluster.Drops for this node.
func (m *reflectMember) Drops() Drops {
	c := reflectCluster{nodes: []*node.Node{m.nd}}
	return c.Drops()
}

func (m *reflectMember) Close() error { return m.nd.Close() }
