package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// redisMember is one go-redis client in a process of its own: a
// subscriber reading PubSub.Channel(), or the publisher with redisSystem's
// pipelined queue (redisCluster.pipeline).
type redisMember struct {
	baseMember
	cl  *redis.Client
	ps  *redis.PubSub
	wg  sync.WaitGroup
	pub *redisCluster // the publisher's queue and pipeline goroutine
}

func newRedisMember(ctx context.Context, addr string, pub bool) (*redisMember, error) {
	m := &redisMember{cl: redis.NewClient(&redis.Options{Addr: addr})}
	if err := m.cl.Ping(ctx).Err(); err != nil {
		_ = m.cl.Close()
		return nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	if pub {
		m.pub = &redisCluster{pub: m.cl, queue: make(chan []byte, 4096), stop: make(chan struct{})}
		m.pub.wg.Add(1)
		go m.pub.pipeline()
	}
	return m, nil
}

func (m *redisMember) Subscribe(ctx context.Context, deliver func([]byte)) error {
	ps := m.cl.Subscribe(ctx, topicName)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		_ = ps.Close()
		return err
	}
	m.ps = ps
	ch := ps.Channel()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for msg := range ch {
			deliver([]byte(msg.Payload))
		}
	}()
	return nil
}

func (m *redisMember) WaitSubscribers(ctx context.Context, n int) error {
	return waitFor(ctx, func() bool {
		v, err := m.cl.PubSubNumSub(ctx, topicName).Result()
		return err == nil && v[topicName] >= int64(n)
	})
}

func (m *redisMember) Publish(ctx context.Context, data []byte) error {
	if m.pub == nil {
		return errUnsupported
	}
	return m.pub.Publish(ctx, data)
}

// Drops counts the messages of failed pipelines; the server's log lines
// are read by the parent, which started the server.
func (m *redisMember) Drops() Drops {
	var failed uint64
	if m.pub != nil {
		failed = m.pub.failed.Load()
	}
	return newDrops("messages of failed pipelines", failed)
}

func (m *redisMember) Close() error {
	if m.pub != nil {
		close(m.pub.stop)
		m.pub.wg.Wait()
	}
	if m.ps != nil {
		_ = m.ps.Close() // closes its Channel, ending the reader
	}
	m.wg.Wait()
	return m.cl.Close()
}
