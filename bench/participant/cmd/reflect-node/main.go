// Command reflect-node is one Reflect node of the bench's -procs mode:
// node.New with the default configuration, only loopback listening and
// mDNS off (as the bench's in-process reflect system), raw-byte Publish and
// Subscribe, driven by the bench over stdin and stdout (package
// participant).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/reflectmesh/reflect/bench/participant"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

func main() { os.Exit(participant.Main("reflect-node", open)) }

type member struct {
	nd *node.Node
}

func open(_ context.Context, f participant.Flags) (participant.Member, error) {
	if f.Key == "" {
		return nil, fmt.Errorf("%w: reflect-node needs -key", participant.ErrFlags)
	}
	nd, err := node.New(node.Config{
		Key:         f.Key,
		DisableMDNS: true,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
	})
	if err != nil {
		return nil, err
	}
	return &member{nd: nd}, nil
}

// Addr is the node's first listen address with its peer ID (/p2p/...).
func (m *member) Addr() (string, error) {
	a := m.nd.Addrs()
	if len(a) == 0 {
		return "", errors.New("node has no address")
	}
	return a[0].String(), nil
}

func (m *member) Connect(ctx context.Context, addrs []string) error {
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

func (m *member) WaitPeers(ctx context.Context, n int) error { return m.nd.WaitPeers(ctx, n) }

func (m *member) Subscribe(_ context.Context, deliver func([]byte)) error {
	_, err := m.nd.PubSub().Subscribe(participant.Topic, func(msg pubsub.Message) { deliver(msg.Data) })
	return err
}

func (m *member) WaitSubscribers(ctx context.Context, n int) error {
	return m.nd.PubSub().WaitSubscribers(ctx, participant.Topic, n)
}

func (m *member) Publish(ctx context.Context, data []byte) error {
	return m.nd.Publish(ctx, participant.Topic, data)
}

// Drops are the counters the bench's reflect system reads, for this node.
func (m *member) Drops() map[string]uint64 {
	st := m.nd.PubSub().Stats()
	var sub, failed uint64
	for _, t := range st.Topics {
		sub += t.Dropped
		failed += t.SendFailed
	}
	return map[string]uint64{"Dropped": sub, "SendFailed": failed, "OutboundDropped": st.OutboundDropped,
		"InboundThrottled": st.InboundThrottled, "InboundUndeliverable": st.InboundUndeliverable}
}

func (m *member) Close() error { return m.nd.Close() }
