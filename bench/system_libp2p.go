package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// libp2pSystem is what a developer writes directly on libp2p: libp2p.New
// with its defaults (listening on 127.0.0.1 TCP only, for the benchmark's
// network safety) and pubsub.NewGossipSub with its defaults (signed
// messages, queues of 32). A counting tracer observes drops; it changes
// nothing.
type libp2pSystem struct{}

func (*libp2pSystem) Name() string { return "libp2p" }
func (*libp2pSystem) Describe() string {
	return "raw go-libp2p " + moduleVersion("github.com/libp2p/go-libp2p") +
		" (libp2p.New defaults, TCP on 127.0.0.1) + go-libp2p-pubsub " +
		moduleVersion("github.com/libp2p/go-libp2p-pubsub") + " NewGossipSub defaults"
}
func (*libp2pSystem) Unavailable() string { return "" }

type libp2pCluster struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	hosts  []host.Host
	topics []*lp2pps.Topic
	subs   []*lp2pps.Subscription
	tr     []*dropTracer
}

func (*libp2pSystem) OpenPubSub(ctx context.Context, n int, opts OpenOptions, deliver func(int, []byte)) (PubSubCluster, error) {
	cctx, cancel := context.WithCancel(context.Background())
	c := &libp2pCluster{ctx: cctx, cancel: cancel}
	fail := func(err error) (PubSubCluster, error) {
		_ = c.Close()
		return nil, err
	}
	for i := 0; i < n; i++ {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			return fail(fmt.Errorf("host %d: %w", i, err))
		}
		c.hosts = append(c.hosts, h)
		tr := &dropTracer{}
		c.tr = append(c.tr, tr)
		ps, err := lp2pps.NewGossipSub(cctx, h, lp2pps.WithRawTracer(tr))
		if err != nil {
			return fail(fmt.Errorf("gossipsub %d: %w", i, err))
		}
		t, err := ps.Join(topicName)
		if err != nil {
			return fail(err)
		}
		c.topics = append(c.topics, t)
		if i == 0 {
			continue
		}
		sub, err := t.Subscribe()
		if err != nil {
			return fail(err)
		}
		c.subs = append(c.subs, sub)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				m, err := sub.Next(cctx)
				if err != nil {
					return
				}
				deliver(i, m.Data)
			}
		}()
	}
	err := connectAll(ctx, n, opts.Star, func(ctx context.Context, i, j int) error {
		return c.hosts[i].Connect(ctx, peer.AddrInfo{ID: c.hosts[j].ID(), Addrs: c.hosts[j].Addrs()})
	})
	if err != nil {
		return fail(err)
	}
	if err := waitFor(ctx, func() bool { return len(c.topics[0].ListPeers()) >= n-1 }); err != nil {
		return fail(fmt.Errorf("publisher sees %d of %d subscribers: %w", len(c.topics[0].ListPeers()), n-1, err))
	}
	time.Sleep(gossipSettle)
	return c, nil
}

func (c *libp2pCluster) Publish(ctx context.Context, data []byte) error {
	// GossipSub keeps the slice in the message; the caller reuses it.
	return c.topics[0].Publish(ctx, bytes.Clone(data))
}

func (c *libp2pCluster) Drops() Drops {
	var out, in, und uint64
	for _, t := range c.tr {
		out += t.dropRPC.Load()
		in += t.throttled.Load()
		und += t.undeliverable.Load()
	}
	return newDrops("DropRPC", out, "validation queue full", in, "UndeliverableMessage", und)
}

func (c *libp2pCluster) ServerPIDs() []int { return nil }

func (c *libp2pCluster) Close() error {
	for _, s := range c.subs {
		s.Cancel()
	}
	c.cancel()
	errs := make([]error, len(c.hosts))
	parallel(len(c.hosts), func(i int) { errs[i] = c.hosts[i].Close() })
	c.wg.Wait()
	return errors.Join(errs...)
}

// dropTracer counts what GossipSub drops.
type dropTracer struct {
	dropRPC, throttled, undeliverable atomic.Uint64
}

func (t *dropTracer) DropRPC(rpc *lp2pps.RPC, _ peer.ID) {
	t.dropRPC.Add(uint64(len(rpc.GetPublish())))
}
func (t *dropTracer) RejectMessage(_ *lp2pps.Message, reason string) {
	if reason == lp2pps.RejectValidationQueueFull || reason == lp2pps.RejectValidationThrottled {
		t.throttled.Add(1)
	}
}
func (t *dropTracer) UndeliverableMessage(*lp2pps.Message)                 { t.undeliverable.Add(1) }
func (t *dropTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *dropTracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *dropTracer) Join(string)                                          {}
func (t *dropTracer) Leave(string)                                         {}
func (t *dropTracer) Graft(peer.ID, string)                                {}
func (t *dropTracer) Prune(peer.ID, string)                                {}
func (t *dropTracer) ValidateMessage(*lp2pps.Message)                      {}
func (t *dropTracer) DeliverMessage(*lp2pps.Message)                       {}
func (t *dropTracer) DuplicateMessage(*lp2pps.Message)                     {}
func (t *dropTracer) ThrottlePeer(peer.ID)                                 {}
func (t *dropTracer) RecvRPC(*lp2pps.RPC)                                  {}
func (t *dropTracer) SendRPC(*lp2pps.RPC, peer.ID)                         {}
func (t *dropTracer) SendRPCCompleted(*lp2pps.RPC, peer.ID, time.Duration) {}

var _ lp2pps.RawTracer = (*dropTracer)(nil)

// waitFor polls cond every 10 ms until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
