// Command nats-client is one NATS client connection of the bench's -procs
// mode, with nats.go defaults (as the bench's in-process nats system),
// verifying the server's certificate against -ca when it is given
// (nats-tls); with -kv a JetStream KV client (the writer, -role pub,
// creates the bucket). The bench drives it over stdin and stdout (package
// participant).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/reflectmesh/reflect/bench/participant"
)

func main() { os.Exit(participant.Main("nats-client", open)) }

type member struct {
	participant.Base
	nc         *nats.Conn
	sub        *nats.Subscription
	slow, disc atomic.Uint64

	// -kv: JetStream, the bucket (bound at open for the writer, -role
	// pub, which creates it; at the join for the others), what a join
	// loaded, and the first asynchronous publish error.
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	loaded   map[string][]byte
	errMu    sync.Mutex
	firstErr error
}

// bucket is the store's bucket, configured as the bench's in-process
// NATS KV: memory storage, History 1, 1 replica.
var bucket = jetstream.KeyValueConfig{Bucket: "bench", History: 1, Storage: jetstream.MemoryStorage, Replicas: 1}

func open(ctx context.Context, f participant.Flags) (participant.Member, error) {
	if f.URL == "" {
		return nil, fmt.Errorf("%w: nats-client needs -url", participant.ErrFlags)
	}
	m := &member{}
	opts := []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				m.slow.Add(1)
			}
		}),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { m.disc.Add(1) }),
	}
	if f.CA != "" {
		opts = append(opts, nats.RootCAs(f.CA))
	}
	nc, err := nats.Connect(f.URL, opts...)
	if err != nil {
		return nil, err
	}
	m.nc = nc
	if f.KV {
		if err := m.openKV(ctx, f.Pub); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return m, nil
}

func (m *member) openKV(ctx context.Context, create bool) error {
	var err error
	m.js, err = jetstream.New(m.nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			m.errMu.Lock()
			if m.firstErr == nil {
				m.firstErr = err
			}
			m.errMu.Unlock()
		}))
	if err != nil {
		return err
	}
	if create {
		m.kv, err = m.js.CreateKeyValue(ctx, bucket)
	}
	return err
}

// KVReady: a client replicates nothing itself.
func (m *member) KVReady(context.Context, int) error { return nil }

// KVFill publishes every key asynchronously to the bucket's subject (what
// kv.Put sends, ≤ 4,096 acknowledgements pending) and waits for the
// acknowledgements.
func (m *member) KVFill(ctx context.Context, count, size int) error {
	if m.kv == nil {
		return errors.New("only the writer (-kv -role pub) fills")
	}
	for k := range count {
		v := participant.StoreValue(make([]byte, size), k)
		if _, err := m.js.PublishAsync("$KV."+bucket.Bucket+"."+participant.StoreKey(k), v, jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("put %d: %w", k, err)
		}
	}
	select {
	case <-m.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	m.errMu.Lock()
	defer m.errMu.Unlock()
	return m.firstErr
}

// KVKeys is the keys a join loaded; -1 before (the server holds them).
func (m *member) KVKeys() int {
	if m.loaded == nil {
		return -1
	}
	return len(m.loaded)
}

// KVJoin binds the bucket and loads every key with a watch that first
// delivers each key's current value (an ordered push consumer), keeping
// the values as an application's copy of the store would.
func (m *member) KVJoin(ctx context.Context, _ []string, count int) error {
	if m.js == nil {
		return errors.New("started without -kv")
	}
	kv, err := m.js.KeyValue(ctx, bucket.Bucket)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	m.loaded = make(map[string][]byte, count)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch ended")
			}
			if e == nil { // the initial values are in
				if len(m.loaded) >= count {
					return nil
				}
				continue
			}
			m.loaded[e.Key()] = e.Value()
			if len(m.loaded) >= count {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("%d of %d keys: %w", len(m.loaded), count, ctx.Err())
		}
	}
}

func (m *member) Subscribe(ctx context.Context, deliver func([]byte)) error {
	s, err := m.nc.Subscribe(participant.Topic, func(msg *nats.Msg) { deliver(msg.Data) })
	if err != nil {
		return err
	}
	m.sub = s
	// The server has the subscription once it answered a PING sent after it.
	return m.nc.FlushWithContext(ctx)
}

func (m *member) Publish(_ context.Context, data []byte) error {
	return m.nc.Publish(participant.Topic, data)
}

func (m *member) Drops() map[string]uint64 {
	var dropped uint64
	if m.sub != nil {
		if d, err := m.sub.Dropped(); err == nil {
			dropped = uint64(d)
		}
	}
	return map[string]uint64{"Subscription.Dropped": dropped, "ErrSlowConsumer": m.slow.Load(), "disconnects": m.disc.Load()}
}

func (m *member) Close() error {
	m.nc.Close()
	return nil
}
