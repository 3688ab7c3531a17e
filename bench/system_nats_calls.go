package main

import (
	"context"

	"github.com/nats-io/nats.go"
)

// Request/reply and queue groups on NATS core (CallSystem).

func (*natsSystem) DescribeCalls() string {
	return "NATS core: nc.RequestWithContext (nats.go's shared reply inbox) answered by msg.Respond on another connection; QueueSubscribe; server and connections as above"
}

// natsRequester is connection 0 asking connection n−1.
type natsRequester struct{ *natsCluster }

func (*natsSystem) OpenRequest(ctx context.Context, n int, _ OpenOptions) (RequestCluster, error) {
	c, err := openNATS(ctx, n, func(i int, nc *nats.Conn) (*nats.Subscription, error) {
		if i != n-1 {
			return nil, nil
		}
		return nc.Subscribe(requestTopic, func(m *nats.Msg) { _ = m.Respond(m.Data) })
	})
	if err != nil {
		return nil, err
	}
	return natsRequester{c}, nil
}

func (c natsRequester) Request(ctx context.Context, data []byte) ([]byte, error) {
	m, err := c.conns[0].RequestWithContext(ctx, requestTopic, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func (*natsSystem) OpenQueue(ctx context.Context, n int, _ OpenOptions, deliver func(int, []byte)) (PubSubCluster, error) {
	return openNATS(ctx, n, func(i int, nc *nats.Conn) (*nats.Subscription, error) {
		if i == 0 {
			return nil, nil
		}
		return nc.QueueSubscribe(topicName, queueGroup, func(m *nats.Msg) { deliver(i, m.Data) })
	})
}
