package main

import (
	"context"
	"fmt"

	"github.com/reflectmesh/reflect/pubsub"
)

// Request/reply and queue groups on Reflect (CallSystem).

// Subject of the request scenarios and the queue group's name, for every
// system.
const (
	requestTopic = "bench.req"
	queueGroup   = "workers"
)

func (*reflectSystem) DescribeCalls() string {
	return "Reflect pubsub Handle/Request (the answer on the direct stream back) and Subscribe(WithQueueGroup), node defaults as above"
}

// reflectRequester is participant 0 asking participant n−1.
type reflectRequester struct{ *reflectCluster }

func (*reflectSystem) OpenRequest(ctx context.Context, n int, opts OpenOptions) (RequestCluster, error) {
	c, err := openReflectNodes(ctx, n, opts, func(c *reflectCluster) error {
		_, err := c.nodes[n-1].PubSub().Handle(requestTopic, func(_ context.Context, m pubsub.Message) ([]byte, error) {
			return m.Data, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := c.nodes[0].PubSub().WaitResponders(ctx, requestTopic, 1); err != nil {
		_ = c.Close()
		return nil, err
	}
	return reflectRequester{c}, nil
}

func (c reflectRequester) Request(ctx context.Context, data []byte) ([]byte, error) {
	m, err := c.nodes[0].PubSub().Request(ctx, requestTopic, data)
	return m.Data, err
}

func (*reflectSystem) OpenQueue(ctx context.Context, n int, opts OpenOptions, deliver func(int, []byte)) (PubSubCluster, error) {
	return openReflectNodes(ctx, n, opts, func(c *reflectCluster) error {
		for i := 1; i < n; i++ {
			i := i
			if _, err := c.nodes[i].PubSub().Subscribe(topicName, func(m pubsub.Message) { deliver(i, m.Data) },
				pubsub.WithQueueGroup(queueGroup)); err != nil {
				return fmt.Errorf("subscribe %d: %w", i, err)
			}
		}
		return nil
	})
}
