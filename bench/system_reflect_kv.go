package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pnet"
	"github.com/reflectmesh/reflect/pubsub"
)

// storeTopic is the reserved pub/sub topic of crdtstore's default store.
const storeTopic = pubsub.ReservedPrefix + "store/" + crdtstore.DefaultName

func (*reflectSystem) DescribeKV() string {
	return "Reflect crdtstore: crdtstore.Open(node, Options{}) (defaults) on the nodes above, every pair connected; " +
		"Set/Delete, Watch(\"\") on the other nodes, WaitSynced and Stats().SyncBytesIn/Out for joins and reconnects " +
		"(a connection gater, the only non-default node option, cuts a node off for the reconnect)"
}

// reflectKV is n nodes, each with a replica of the default store.
type reflectKV struct {
	secret   string
	nodes    []*node.Node
	stores   []*crdtstore.Store
	gates    []*peerGate
	watchers []*crdtstore.Watcher
	wg       sync.WaitGroup
}

// peerGate refuses connections with the peers in its set (both ways): a
// partition of one node that a test can heal peer by peer.
type peerGate struct {
	mu      sync.Mutex
	blocked map[peer.ID]bool
}

func (g *peerGate) is(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked[p]
}

func (g *peerGate) set(p peer.ID, block bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.blocked == nil {
		g.blocked = map[peer.ID]bool{}
	}
	g.blocked[p] = block
}

func (g *peerGate) InterceptPeerDial(p peer.ID) bool                 { return !g.is(p) }
func (g *peerGate) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.is(p) }
func (g *peerGate) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *peerGate) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.is(p)
}
func (g *peerGate) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return !g.is(c.RemotePeer()), 0
}

func (*reflectSystem) OpenKV(ctx context.Context, n int) (KVCluster, error) {
	secret, err := pnet.GenerateSecret()
	if err != nil {
		return nil, err
	}
	c := &reflectKV{secret: secret}
	fail := func(err error) (KVCluster, error) {
		_ = c.Close()
		return nil, err
	}
	for i := 0; i < n; i++ {
		nd, s, g, err := c.newReplica()
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		c.nodes, c.stores, c.gates = append(c.nodes, nd), append(c.stores, s), append(c.gates, g)
	}
	err = connectAll(ctx, n, false, func(ctx context.Context, i, j int) error {
		return c.nodes[i].Connect(ctx, c.nodes[j].Addrs()[0])
	})
	if err != nil {
		return fail(err)
	}
	for i := range c.nodes {
		if err := c.nodes[i].WaitPeers(ctx, n-1); err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		if n > 1 {
			if err := c.nodes[i].PubSub().WaitSubscribers(ctx, storeTopic, n-1); err != nil {
				return fail(fmt.Errorf("node %d: %w", i, err))
			}
		}
		if err := c.stores[i].WaitSynced(ctx); err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
	}
	if n > 1 {
		time.Sleep(gossipSettle) // GossipSub's first heartbeats build the meshes
	}
	return c, nil
}

// newReplica starts one node (defaults, loopback, no mDNS, a gate) and
// opens the default store on it with default options.
func (c *reflectKV) newReplica() (*node.Node, *crdtstore.Store, *peerGate, error) {
	g := &peerGate{}
	nd, err := node.New(node.Config{
		Key:           c.secret,
		DisableMDNS:   true,
		ListenAddrs:   []string{"/ip4/127.0.0.1/tcp/0"},
		Libp2pOptions: []libp2p.Option{libp2p.ConnectionGater(g)},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := crdtstore.Open(nd, crdtstore.Options{})
	if err != nil {
		_ = nd.Close()
		return nil, nil, nil, err
	}
	return nd, s, g, nil
}

func (c *reflectKV) Put(_ context.Context, i int, key string, value []byte) error {
	return c.stores[i].Set(key, value)
}

func (c *reflectKV) Delete(_ context.Context, i int, key string) error {
	return c.stores[i].Delete(key)
}

// Flush waits until the store's local writes have been handed to the
// network (Store.Flush).
func (c *reflectKV) Flush(ctx context.Context, i int) error {
	return c.stores[i].Flush(ctx)
}

func (c *reflectKV) Watch(i int, fn func(key string, missed int)) error {
	w := c.stores[i].Watch("", crdtstore.WithBuffer(1<<17))
	c.watchers = append(c.watchers, w)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for ch := range w.Updates() {
			if ch.Origin == crdtstore.OriginRemote {
				fn(ch.Key, int(ch.Missed))
			}
		}
	}()
	return nil
}

// Join starts one more node and connects it to every node at once (as mDNS
// does on a LAN); it is done when WaitSynced returns, after it saw all of
// them.
func (c *reflectKV) Join(ctx context.Context, keys int, held func()) (SyncFigures, error) {
	nd, s, _, err := c.newReplica()
	if err != nil {
		return SyncFigures{}, err
	}
	defer func() {
		_ = s.Close()
		_ = nd.Close()
	}()
	t0 := time.Now()
	err = connectAll(ctx, len(c.nodes)+1, true, func(ctx context.Context, i, j int) error {
		return nd.Connect(ctx, c.nodes[i-1].Addrs()[0]) // the star's centre (0) is the new node
	})
	if err != nil {
		return SyncFigures{}, err
	}
	if err := nd.WaitPeers(ctx, len(c.nodes)); err != nil {
		return SyncFigures{}, err
	}
	if err := s.WaitSynced(ctx); err != nil {
		return SyncFigures{}, err
	}
	f := SyncFigures{Secs: time.Since(t0).Seconds()}
	st := s.Stats()
	f.BytesIn, f.BytesOut, f.Keys = st.SyncBytesIn, st.SyncBytesOut, st.Keys
	f.Exchanges = int(st.Syncs + st.SyncServed)
	f.RoundTrips = 1.5 // context → delta + context → delta or "equal", with each peer at once
	f.How = fmt.Sprintf("WaitSynced after connecting to all %d nodes at once: %d syncs (%d failed), %d gaps",
		len(c.nodes), f.Exchanges, st.SyncFailures, st.Gaps)
	if f.Keys != keys {
		f.How += fmt.Sprintf("; it held %d of %d keys when WaitSynced returned", f.Keys, keys)
	}
	if held != nil {
		held()
	}
	return f, nil
}

// Reconnect cuts node i off from every peer (gate + closing the
// connections), runs change, then reconnects it to one peer at a time, in
// order, waiting for each sync: the sync with the first peer brings the
// difference, the others should find the contexts equal (one round trip).
// The figures are node i's sync counters over all of them.
func (c *reflectKV) Reconnect(ctx context.Context, i int, change func(context.Context) error, changed []string) (SyncFigures, error) {
	nd, s, g := c.nodes[i], c.stores[i], c.gates[i]
	var peers []int
	for j := range c.nodes {
		if j != i {
			peers = append(peers, j)
			g.set(c.nodes[j].ID(), true)
			_ = nd.Host().Network().ClosePeer(c.nodes[j].ID())
		}
	}
	if err := waitFor(ctx, func() bool {
		if len(nd.Neighbours()) > 0 {
			return false
		}
		for _, j := range peers {
			for _, p := range c.nodes[j].Neighbours() {
				if p == nd.ID() {
					return false
				}
			}
		}
		return true
	}); err != nil {
		return SyncFigures{}, fmt.Errorf("disconnecting: %w", err)
	}
	if err := change(ctx); err != nil {
		return SyncFigures{}, err
	}
	ref := c.stores[peers[0]]
	caughtUp := func() bool {
		for _, k := range changed {
			a, aok := s.Get(k)
			b, bok := ref.Get(k)
			if aok != bok || !bytes.Equal(a, b) {
				return false
			}
		}
		return true
	}
	synced := func(st crdtstore.Stats) uint64 { return st.Syncs + st.SyncServed + st.SyncFailures }
	start := s.Stats()
	t0 := time.Now()
	f := SyncFigures{}
	var steps []string
	for k, j := range peers {
		before := s.Stats()
		g.set(c.nodes[j].ID(), false)
		if err := nd.Connect(ctx, c.nodes[j].Addrs()[0]); err != nil {
			return f, fmt.Errorf("reconnect to %d: %w", j, err)
		}
		// Direct peers: Peers counts the members the first one announces.
		if err := waitFor(ctx, func() bool { return len(nd.Neighbours()) >= k+1 }); err != nil {
			return f, fmt.Errorf("reconnect to %d: %w", j, err)
		}
		if err := waitFor(ctx, func() bool { return synced(s.Stats()) > synced(before) }); err != nil {
			return f, fmt.Errorf("sync with %d: %w", j, err)
		}
		if err := s.WaitSynced(ctx); err != nil {
			return f, err
		}
		if f.Secs == 0 && caughtUp() {
			f.Secs = time.Since(t0).Seconds()
		}
		after := s.Stats()
		in, out := after.SyncBytesIn-before.SyncBytesIn, after.SyncBytesOut-before.SyncBytesOut
		rt := syncRoundTrips(in, out)
		f.RoundTrips = max(f.RoundTrips, rt)
		f.MaxExchangeBytes = max(f.MaxExchangeBytes, in+out)
		steps = append(steps, fmt.Sprintf("%d B/%g RT", in+out, rt))
	}
	if err := waitFor(ctx, caughtUp); err != nil {
		return f, fmt.Errorf("catching up: %w", err)
	}
	if f.Secs == 0 {
		f.Secs = time.Since(t0).Seconds()
	}
	end := s.Stats()
	f.BytesIn, f.BytesOut = end.SyncBytesIn-start.SyncBytesIn, end.SyncBytesOut-start.SyncBytesOut
	f.Exchanges = int(synced(end) - synced(start))
	f.Keys = end.Keys
	f.How = fmt.Sprintf("reconnected to one peer at a time; syncs: %v; deltas received meanwhile %d, gaps %d, sync failures %d",
		steps, end.DeltasReceived-start.DeltasReceived, end.Gaps-start.Gaps, end.SyncFailures-start.SyncFailures)
	return f, nil
}

// syncRoundTrips tells the path one sync took from its byte counts: the
// "equal" answer is one 2-byte frame (one round trip); otherwise the
// initiator's context is answered with a delta and a context, and the
// initiator sends a last frame back (1½).
func syncRoundTrips(in, out uint64) float64 {
	if in == 2 || out == 2 {
		return 1
	}
	return 1.5
}

func (c *reflectKV) ServerMem(context.Context) uint64 { return 0 }
func (c *reflectKV) ServerPIDs() []int                { return nil }

func (c *reflectKV) Close() error {
	errs := make([]error, len(c.nodes))
	parallel(len(c.stores), func(i int) {
		if err := c.stores[i].Close(); err != nil && !errors.Is(err, crdtstore.ErrClosed) {
			errs[i] = err
		}
	})
	c.wg.Wait() // Close ends the watchers' channels
	parallel(len(c.nodes), func(i int) { errs[i] = errors.Join(errs[i], c.nodes[i].Close()) })
	return errors.Join(errs...)
}
