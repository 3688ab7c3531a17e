// Command reflect-store is one Reflect node with the default crdtstore
// (crdtstore.Open, default options) for the bench's -procs store scenario:
// the node of package reflectnode plus the store's commands
// (participant.KV), driven by the bench over stdin and stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/reflectmesh/reflect/bench/participant"
	"github.com/reflectmesh/reflect/bench/participant/reflectnode"
	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/pubsub"
)

func main() { os.Exit(participant.Main("reflect-store", open)) }

type member struct {
	*reflectnode.Member
	store *crdtstore.Store
}

func open(_ context.Context, f participant.Flags) (participant.Member, error) {
	n, err := reflectnode.Open(f.Key)
	if err != nil {
		return nil, err
	}
	s, err := crdtstore.Open(n.Node, crdtstore.Options{})
	if err != nil {
		_ = n.Close()
		return nil, err
	}
	return &member{Member: n, store: s}, nil
}

func (m *member) Close() error {
	err := m.store.Close()
	if errors.Is(err, crdtstore.ErrClosed) {
		err = nil
	}
	return errors.Join(err, m.Member.Close())
}

// storeTopic is the reserved pub/sub topic of crdtstore's default store.
const storeTopic = pubsub.ReservedPrefix + "store/" + crdtstore.DefaultName

// KVReady waits until n other nodes subscribe to the store's topic and the
// store synced with its peers.
func (m *member) KVReady(ctx context.Context, n int) error {
	if n > 0 {
		if err := m.Node.PubSub().WaitSubscribers(ctx, storeTopic, n); err != nil {
			return err
		}
	}
	return m.store.WaitSynced(ctx)
}

// KVFill Sets every key, then Flushes: the writes were handed to the
// network.
func (m *member) KVFill(ctx context.Context, count, size int) error {
	for k := range count {
		if err := m.store.Set(participant.StoreKey(k), participant.StoreValue(make([]byte, size), k)); err != nil {
			return fmt.Errorf("set %d: %w", k, err)
		}
	}
	return m.store.Flush(ctx)
}

func (m *member) KVKeys() int {
	return m.store.Stats().Keys
}

// KVJoin connects to every address at once (as mDNS gives on a LAN),
// waits for WaitSynced and then for count keys.
func (m *member) KVJoin(ctx context.Context, addrs []string, count int) error {
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { errs[i] = m.Connect(ctx, []string{a}) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := m.Node.WaitPeers(ctx, len(addrs)); err != nil {
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
