package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsSystem is NATS core pub/sub: nats-server embedded in this process on
// 127.0.0.1 (random port, defaults otherwise), one client connection per
// participant with nats.go defaults, async Subscribe handlers.
type natsSystem struct{}

func (*natsSystem) Name() string { return "nats" }
func (*natsSystem) Describe() string {
	return "NATS core pub/sub: nats-server " + server.VERSION + " embedded (defaults, 127.0.0.1), nats.go " +
		moduleVersion("github.com/nats-io/nats.go") + " defaults, one connection per participant"
}
func (*natsSystem) Unavailable() string { return "" }

type natsCluster struct {
	srv   *server.Server
	conns []*nats.Conn
	subs  []*nats.Subscription
	// slow counts async slow-consumer errors; disc disconnections.
	slow, disc atomic.Uint64
}

func (*natsSystem) OpenPubSub(ctx context.Context, n int, _ OpenOptions, deliver func(int, []byte)) (PubSubCluster, error) {
	return openNATS(ctx, n, func(i int, nc *nats.Conn) (*nats.Subscription, error) {
		if i == 0 {
			return nil, nil
		}
		return nc.Subscribe(topicName, func(m *nats.Msg) { deliver(i, m.Data) })
	})
}

// openNATS starts the server and n client connections; sub, if it returns
// a subscription, subscribes participant i (its subscriptions are known to
// the server when openNATS returns).
func openNATS(ctx context.Context, n int, sub func(i int, nc *nats.Conn) (*nats.Subscription, error)) (*natsCluster, error) {
	srv, err := server.NewServer(&server.Options{
		Host:   "127.0.0.1",
		Port:   server.RANDOM_PORT,
		NoLog:  true,
		NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	go srv.Start()
	c := &natsCluster{srv: srv}
	fail := func(err error) (*natsCluster, error) {
		_ = c.Close()
		return nil, err
	}
	if !srv.ReadyForConnections(10 * time.Second) {
		return fail(errors.New("nats-server did not start"))
	}
	for i := 0; i < n; i++ {
		nc, err := nats.Connect(srv.ClientURL(),
			nats.Name(fmt.Sprint("bench-", i)),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if errors.Is(err, nats.ErrSlowConsumer) {
					c.slow.Add(1)
				}
			}),
			nats.DisconnectErrHandler(func(*nats.Conn, error) { c.disc.Add(1) }),
		)
		if err != nil {
			return fail(fmt.Errorf("connect %d: %w", i, err))
		}
		c.conns = append(c.conns, nc)
		s, err := sub(i, nc)
		if err != nil {
			return fail(err)
		}
		if s == nil {
			continue
		}
		c.subs = append(c.subs, s)
		// The server has the subscription once it answered a PING sent after it.
		if err := nc.FlushWithContext(ctx); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

func (c *natsCluster) Publish(_ context.Context, data []byte) error {
	return c.conns[0].Publish(topicName, data)
}

// PublishHeader publishes with benchHeader (HeaderPublisher), the header
// built per call as for Reflect.
func (c *natsCluster) PublishHeader(_ context.Context, data []byte) error {
	h := make(nats.Header, len(benchHeader))
	for k, v := range benchHeader {
		h.Set(k, v)
	}
	return c.conns[0].PublishMsg(&nats.Msg{Subject: topicName, Data: data, Header: h})
}

func (c *natsCluster) Drops() Drops {
	var dropped uint64
	for _, s := range c.subs {
		if d, err := s.Dropped(); err == nil {
			dropped += uint64(d)
		}
	}
	var srvSlow uint64
	if v, err := c.srv.Varz(nil); err == nil {
		srvSlow = uint64(v.SlowConsumers)
	}
	slow, disc := c.slow.Load(), c.disc.Load()
	return newDrops("Subscription.Dropped", dropped, "ErrSlowConsumer", slow,
		"server slow consumers", srvSlow, "disconnects", disc)
}

func (c *natsCluster) ServerPIDs() []int { return nil }

func (c *natsCluster) Close() error {
	for _, nc := range c.conns {
		nc.Close()
	}
	c.srv.Shutdown()
	c.srv.WaitForShutdown()
	return nil
}
