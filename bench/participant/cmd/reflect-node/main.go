// Command reflect-node is one Reflect node of the bench's -procs mode:
// node.New with the default configuration, only loopback listening and
// mDNS off (as the bench's in-process reflect system), raw-byte Publish and
// Subscribe; with -kv the default crdtstore on it (crdtstore.Open,
// default options). The bench drives it over stdin and stdout (package
// participant).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/reflectmesh/reflect/bench/participant"
	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

func main() { os.Exit(participant.Main("reflect-node", open)) }

type member struct {
	nd    *node.Node
	store *crdtstore.Store // with -kv: the default store, default options
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
	m := &member{nd: nd}
	if f.KV {
		if m.store, err = crdtstore.Open(nd, crdtstore.Options{}); err != nil {
			_ = nd.Close()
			return nil, err
		}
	}
	return m, nil
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

func (m *member) Close() error {
	var err error
	if m.store != nil {
		if err = m.store.Close(); errors.Is(err, crdtstore.ErrClosed) {
			err = nil
		}
	}
	return errors.Join(err, m.nd.Close())
}

// storeTopic is the reserved pub/sub topic of crdtstore's default store.
const storeTopic = pubsub.ReservedPrefix + "store/" + crdtstore.DefaultName

// errNoStore is a store command to a node started without -kv.
var errNoStore = errors.New("started without -kv")

// KVReady waits until n other nodes subscribe to the store's topic and the
// store synced with its peers.
func (m *member) KVReady(ctx context.Context, n int) error {
	if m.store == nil {
		return errNoStore
	}
	if n > 0 {
		if err := m.nd.PubSub().WaitSubscribers(ctx, storeTopic, n); err != nil {
			return err
		}
	}
	return m.store.WaitSynced(ctx)
}

// KVFill Sets every key, then Flushes: the writes were handed to the
// network.
func (m *member) KVFill(ctx context.Context, count, size int) error {
	if m.store == nil {
		return errNoStore
	}
	for k := range count {
		if err := m.store.Set(participant.StoreKey(k), participant.StoreValue(make([]byte, size), k)); err != nil {
			return fmt.Errorf("set %d: %w", k, err)
		}
	}
	return m.store.Flush(ctx)
}

func (m *member) KVKeys() int {
	if m.store == nil {
		return -1
	}
	return m.store.Stats().Keys
}

// KVJoin connects to every address at once (as mDNS gives on a LAN),
// waits for WaitSynced and then for count keys.
func (m *member) KVJoin(ctx context.Context, addrs []string, count int) error {
	if m.store == nil {
		return errNoStore
	}
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { errs[i] = m.Connect(ctx, []string{a}) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := m.nd.WaitPeers(ctx, len(addrs)); err != nil {
		return err
	}
	if err := m.store.WaitSynced(ctx); err != nil {
		return err
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for m.store.Stats().Keys < count {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d keys: %w", m.store.Stats().Keys, count, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
