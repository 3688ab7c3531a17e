package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pnet"
	"github.com/reflectmesh/reflect/pubsub"
)

const topicName = "bench"

// reflectSystem is Reflect as an application gets it: node.New with the
// default configuration (only loopback listening and mDNS off, for the
// benchmark's network safety), raw-byte Publish and Subscribe.
type reflectSystem struct{}

func (*reflectSystem) Name() string { return "reflect" }
func (*reflectSystem) Describe() string {
	return "Reflect node+pubsub, defaults (PSK+TCP+Noise+yamux, GossipSub, batching, flow control), " +
		"ListenAddrs 127.0.0.1, DisableMDNS"
}
func (*reflectSystem) Unavailable() string { return "" }

type reflectCluster struct {
	nodes []*node.Node
}

func (*reflectSystem) OpenPubSub(ctx context.Context, n int, opts OpenOptions, deliver func(int, []byte)) (PubSubCluster, error) {
	c, err := openReflectNodes(ctx, n, opts, func(c *reflectCluster) error {
		for i := 1; i < n; i++ {
			i := i
			if _, err := c.nodes[i].PubSub().Subscribe(topicName, func(m pubsub.Message) { deliver(i, m.Data) }); err != nil {
				return fmt.Errorf("subscribe %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (PubSubCluster, error) {
		_ = c.Close()
		return nil, err
	}
	if err := c.nodes[0].PubSub().WaitSubscribers(ctx, topicName, n-1); err != nil {
		return fail(err)
	}
	// Let GossipSub's first heartbeats build the subscribers' meshes, so
	// the forwarding traffic is in its steady state when measuring.
	time.Sleep(gossipSettle)
	return c, nil
}

// openReflectNodes starts n nodes with the default configuration (but
// loopback only and no mDNS), connects them as opts says, runs setup
// (subscriptions, responders) and waits until each node has its peers.
func openReflectNodes(ctx context.Context, n int, opts OpenOptions, setup func(*reflectCluster) error) (*reflectCluster, error) {
	secret, err := pnet.GenerateSecret()
	if err != nil {
		return nil, err
	}
	c := &reflectCluster{}
	fail := func(err error) (*reflectCluster, error) {
		_ = c.Close()
		return nil, err
	}
	for i := 0; i < n; i++ {
		nd, err := node.New(node.Config{
			Key:         secret,
			DisableMDNS: true,
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		})
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		c.nodes = append(c.nodes, nd)
	}
	err = connectAll(ctx, n, opts.Star, func(ctx context.Context, i, j int) error {
		return c.nodes[i].Connect(ctx, c.nodes[j].Addrs()[0])
	})
	if err != nil {
		return fail(err)
	}
	if err := setup(c); err != nil {
		return fail(err)
	}
	for i, nd := range c.nodes {
		want := n - 1
		if opts.Star && i > 0 {
			want = 1
		}
		if err := nd.WaitPeers(ctx, want); err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
	}
	return c, nil
}

// gossipSettle is a little more than one GossipSub heartbeat (1 s).
const gossipSettle = 1200 * time.Millisecond

func (c *reflectCluster) Publish(ctx context.Context, data []byte) error {
	return c.nodes[0].Publish(ctx, topicName, data)
}

// PublishHeader publishes with benchHeader (HeaderPublisher). The header
// is built per call, as an application attaching a trace id would.
func (c *reflectCluster) PublishHeader(ctx context.Context, data []byte) error {
	h := make(pubsub.Header, len(benchHeader))
	for k, v := range benchHeader {
		h.Set(k, v)
	}
	return c.nodes[0].PubSub().Publish(ctx, topicName, data, pubsub.WithHeader(h))
}

func (c *reflectCluster) Drops() Drops {
	var sub, failed, out, throttled, undeliverable uint64
	for _, nd := range c.nodes {
		st := nd.PubSub().Stats()
		for _, t := range st.Topics {
			sub += t.Dropped
			failed += t.SendFailed
		}
		out += st.OutboundDropped
		throttled += st.InboundThrottled
		undeliverable += st.InboundUndeliverable
	}
	return newDrops("Dropped", sub, "SendFailed", failed, "OutboundDropped", out,
		"InboundThrottled", throttled, "InboundUndeliverable", undeliverable)
}

func (c *reflectCluster) ServerPIDs() []int { return nil }

func (c *reflectCluster) Close() error {
	errs := make([]error, len(c.nodes))
	parallel(len(c.nodes), func(i int) { errs[i] = c.nodes[i].Close() })
	return errors.Join(errs...)
}
