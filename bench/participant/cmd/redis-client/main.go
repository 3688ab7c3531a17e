// Command redis-client is one go-redis client of the bench's -procs mode:
// a subscriber reading PubSub.Channel(), or the publisher with the bench's
// pipelined queue (as its in-process redis system: a queue of 4,096 that
// one goroutine drains into pipelines of up to 256 PUBLISH commands or
// 128 KiB), driven by the bench over stdin and stdout (package
// participant).
package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/reflectmesh/reflect/bench/participant"
)

func main() { os.Exit(participant.Main("redis-client", open)) }

type member struct {
	participant.Base
	cl *redis.Client
	ps *redis.PubSub
	wg sync.WaitGroup

	// publisher only
	queue  chan []byte
	stop   chan struct{}
	failed atomic.Uint64 // messages of failed pipelines
}

func open(ctx context.Context, f participant.Flags) (participant.Member, error) {
	if f.URL == "" {
		return nil, fmt.Errorf("%w: redis-client needs -url", participant.ErrFlags)
	}
	m := &member{cl: redis.NewClient(&redis.Options{Addr: f.URL}), stop: make(chan struct{})}
	if err := m.cl.Ping(ctx).Err(); err != nil {
		_ = m.cl.Close()
		return nil, fmt.Errorf("redis %s: %w", f.URL, err)
	}
	if f.Pub {
		m.queue = make(chan []byte, 4096)
		m.wg.Add(1)
		go m.pipeline()
	}
	return m, nil
}

func (m *member) Subscribe(ctx context.Context, deliver func([]byte)) error {
	ps := m.cl.Subscribe(ctx, participant.Topic)
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

func (m *member) WaitSubscribers(ctx context.Context, n int) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		v, err := m.cl.PubSubNumSub(ctx, participant.Topic).Result()
		if err == nil && v[participant.Topic] >= int64(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (m *member) Publish(ctx context.Context, data []byte) error {
	if m.queue == nil {
		return participant.ErrUnsupported
	}
	select {
	case m.queue <- bytes.Clone(data):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.stop:
		return net.ErrClosed
	}
}

// pipeline sends whatever is queued in one pipeline: no timer, a lone
// message goes at once.
func (m *member) pipeline() {
	defer m.wg.Done()
	ctx := context.Background()
	for {
		var msg []byte
		select {
		case msg = <-m.queue:
		case <-m.stop:
			return
		}
		p := m.cl.Pipeline()
		p.Publish(ctx, participant.Topic, msg)
		count, size := 1, len(msg)
	fill:
		for count < 256 && size < 128<<10 {
			select {
			case msg = <-m.queue:
				p.Publish(ctx, participant.Topic, msg)
				count++
				size += len(msg)
			default:
				break fill
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			m.failed.Add(uint64(count))
		}
	}
}

// Drops counts the messages of failed pipelines; redis-server's log lines
// are read by the bench, which started the server.
func (m *member) Drops() map[string]uint64 {
	return map[string]uint64{"messages of failed pipelines": m.failed.Load()}
}

func (m *member) Close() error {
	close(m.stop)
	if m.ps != nil {
		_ = m.ps.Close() // closes its Channel, ending the reader
	}
	m.wg.Wait()
	return m.cl.Close()
}
