// Package reflectnode is the Reflect node of the bench's -procs
// participants (cmd/reflect-node; cmd/reflect-store adds the store): node.New
// with the default configuration, only loopback listening and mDNS off, as
// the bench's in-process reflect system, raw-byte Publish and Subscribe.
package reflectnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/reflectmesh/reflect/bench/participant"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// Member is one node; it implements participant.Member.
type Member struct {
	Node *node.Node
}

// Open starts the node on the network of secret key.
func Open(key string) (*Member, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: a Reflect participant needs -key", participant.ErrFlags)
	}
	nd, err := node.New(node.Config{
		Key:         key,
		DisableMDNS: true,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
	})
	if err != nil {
		return nil, err
	}
	return &Member{Node: nd}, nil
}

// Addr is the node's first listen address with its peer ID (/p2p/...).
func (m *Member) Addr() (string, error) {
	a := m.Node.Addrs()
	if len(a) == 0 {
		return "", errors.New("node has no address")
	}
	return a[0].String(), nil
}

// Connect dials addrs one after the other. A failed dial is retried
// (100 ms, doubling to 1 s) until ctx ends: every participant listens on
// 127.0.0.1, so when dozens dial one node at once they are one source to
// its handshake gate, which refuses more than 8 unfinished handshakes from
// a source (node/gate.go).
func (m *Member) Connect(ctx context.Context, addrs []string) error {
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return err
		}
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			err := m.Node.Connect(ctx, a)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("connect %s: %w", s, err)
			case <-time.After(wait):
			}
		}
	}
	return nil
}

func (m *Member) WaitPeers(ctx context.Context, n int) error { return m.Node.WaitPeers(ctx, n) }

func (m *Member) Subscribe(_ context.Context, deliver func([]byte)) error {
	_, err := m.Node.PubSub().Subscribe(participant.Topic, func(msg pubsub.Message) { deliver(msg.Data) })
	return err
}

func (m *Member) WaitSubscribers(ctx context.Context, n int) error {
	return m.Node.PubSub().WaitSubscribers(ctx, participant.Topic, n)
}

func (m *Member) Publish(ctx context.Context, data []byte) error {
	return m.Node.Publish(ctx, participant.Topic, data)
}

// Drops are the counters the bench's reflect system reads, for this node.
func (m *Member) Drops() map[string]uint64 {
	st := m.Node.PubSub().Stats()
	var sub, failed uint64
	for _, t := range st.Topics {
		sub += t.Dropped
		failed += t.SendFailed
	}
	return map[string]uint64{"Dropped": sub, "SendFailed": failed, "OutboundDropped": st.OutboundDropped, "AnnouncementsDropped": st.AnnouncementsDropped,
		"InboundThrottled": st.InboundThrottled, "InboundUndeliverable": st.InboundUndeliverable}
}

func (m *Member) Close() error { return m.Node.Close() }
