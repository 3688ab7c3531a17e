package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/pnet"
	"github.com/reflectmesh/reflect/pubsub"
)

// Node is one member of a mesh: a libp2p host on the private network
// derived from the secret, LAN discovery, a reconnect loop, and pub/sub.
// It is safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	net     *pnet.Network
	host    host.Host
	ps      *pubsub.PubSub
	members *members
	mdns    *mdnsService
	gate    *handshakeGate
	count   counters
	// collectors are registered with Config.Metrics (metrics.go).
	collectors []prometheus.Collector

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeMu sync.Mutex
	closed  bool
}

// New starts a node: it derives the keys from the secret, starts the host,
// listens, connects to the bootstrap peers and starts mDNS discovery. It
// does not wait for peers (see WaitPeers).
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger

	network := cfg.Network
	if network == nil {
		var err error
		if network, err = pnet.FromPassphrase(cfg.Key); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if pnet.Weak(cfg.Key) {
			log.Warn("node: the secret is short and could be guessed; use pnet.GenerateSecret for a strong one",
				"min_length", pnet.MinSecretLength)
		}
	}
	key, err := identity(cfg)
	if err != nil {
		return nil, err
	}
	uo, err := inspectOptions(cfg.Libp2pOptions)
	if err != nil {
		return nil, err
	}
	bootstrap, bareBootstrap, _ := parseBootstrap(cfg.BootstrapPeers) // validated above

	n := &Node{cfg: cfg, log: log, net: network}
	warns := newWarnLimiter(log, warnEvery)
	n.gate = newHandshakeGate(cfg.HandshakeTimeout, &n.count, warns)
	h, conns, err := newHost(cfg, network, key, uo, n.gate)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.host, n.ctx, n.cancel = h, ctx, cancel
	fail := func(err error) (*Node, error) {
		cancel()
		n.unregisterMetrics()
		if n.ps != nil {
			_ = n.ps.Close()
		}
		_ = h.Close()
		n.wg.Wait()
		return nil, err
	}

	// Watch membership before any connection can happen.
	if n.members, err = newMembers(ctx, &n.wg, h, cfg, &n.count, warns); err != nil {
		return fail(fmt.Errorf("node: event bus: %w", err))
	}
	n.members.gate = n.gate
	n.members.tcp = conns
	n.members.exchangeProto = exchangeProtocolID(network.ProtocolPrefix())
	h.SetStreamHandler(n.members.exchangeProto, n.members.serveExchange)
	n.members.keepProto = keepProtocolID(network.ProtocolPrefix())
	h.SetStreamHandler(n.members.keepProto, n.members.serveKeep)
	n.members.goOwned(n.members.run)
	n.members.goOwned(n.members.exchangeLoop)
	n.members.goOwned(n.members.dialCandidates)
	n.members.goOwned(n.sweepHandshakes)

	pcfg := cfg.PubSub
	pcfg.TopicPrefix = network.TopicPrefix()
	pcfg.Logger = log
	if n.ps, err = pubsub.New(h, n.members, pcfg); err != nil {
		return fail(err)
	}
	n.members.goOwned(func() { n.members.followMesh(n.ps) })
	if err := n.registerMetrics(); err != nil {
		return fail(err)
	}
	if !uo.listen || len(cfg.ListenAddrs) > 0 {
		if err := listen(h, cfg.ListenAddrs); err != nil {
			return fail(err)
		}
	}
	for _, ai := range bootstrap {
		n.members.discovered(ai, fromBootstrap)
	}
	for _, a := range bareBootstrap {
		if _, err := n.members.keepAddr(a, true); err != nil {
			return fail(err)
		}
	}
	if !cfg.DisableMDNS {
		n.warnIfMDNSBlind()
		n.startMDNS()
	}
	log.Info("node: started", "id", h.ID(), "addrs", h.Addrs(), "mesh", network.Fingerprint())
	return n, nil
}

// identity returns the configured key, the one in IdentityFile, or a new one.
func identity(cfg Config) (crypto.PrivKey, error) {
	switch {
	case cfg.Identity != nil:
		return cfg.Identity, nil
	case cfg.IdentityFile != "":
		return LoadIdentity(cfg.IdentityFile)
	default:
		return nil, nil // libp2p generates an Ed25519 key
	}
}

// Close leaves the mesh: it stops discovery and redials, closes pub/sub
// (which first sends the broadcasts still queued and waits, for a few
// seconds at most, until the peers have received them), waits for every
// goroutine the node started, and closes the host. Peers see this node
// leave. A second Close returns ErrClosed. Close must not be called from a
// message handler or peer-event callback.
func (n *Node) Close() error {
	n.closeMu.Lock()
	if n.closed {
		n.closeMu.Unlock()
		return ErrClosed
	}
	n.closed = true
	n.closeMu.Unlock()

	n.unregisterMetrics()
	var errs []error
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	n.cancel()
	if err := n.ps.Close(); err != nil && !errors.Is(err, pubsub.ErrClosed) {
		errs = append(errs, err)
	}
	n.members.stopWatchers()
	// Our goroutines end before the host closes: a dial still running
	// inside a closing host can crash libp2p (libp2p/go-libp2p#1545).
	n.wg.Wait()
	errs = append(errs, n.host.Close())
	return errors.Join(errs...)
}

// ID returns this node's peer id.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Addrs returns this node's full addresses (with /p2p/<id>), suitable as
// another node's BootstrapPeers.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	return addrs
}

// Host returns the libp2p host, for protocols of your own.
func (n *Node) Host() host.Host { return n.host }

// Network returns the keys and names derived from the secret.
func (n *Node) Network() *pnet.Network { return n.net }

// PubSub returns the node's pub/sub, for the calls Node does not forward.
func (n *Node) PubSub() *pubsub.PubSub { return n.ps }

// Logger returns the node's logger (for packages built on the node).
func (n *Node) Logger() *slog.Logger { return n.log }

// Subscribe calls handler with every message other nodes broadcast on
// topic, decoded from JSON into a map: the simplest form, the pair of
// Broadcast. See pubsub.PubSub.Subscribe for delivery guarantees and
// pubsub.SubscribeJSON for typed messages.
func (n *Node) Subscribe(topic string, handler func(map[string]any)) (*pubsub.Subscription, error) {
	return n.ps.SubscribeMap(topic, handler)
}

// Broadcast sends msg as JSON to every other node subscribed to topic.
func (n *Node) Broadcast(ctx context.Context, topic string, msg map[string]any) error {
	return n.ps.Broadcast(ctx, topic, msg)
}

// Request sends req as JSON to the nodes that answer requests on topic
// (Handle) and returns the first answer, decoded. It fails at once with
// pubsub.ErrNoResponders when nobody answers on topic, and with ctx's
// error when no answer came in time; a responder's error comes back
// wrapping pubsub.ErrRemote. See pubsub.PubSub.Request.
func (n *Node) Request(ctx context.Context, topic string, req map[string]any) (map[string]any, error) {
	return pubsub.RequestJSON[map[string]any, map[string]any](ctx, n.ps, topic, req)
}

// Handle answers the requests other nodes send on topic with handler's
// result (JSON objects both ways), until the subscription's Unsubscribe.
// See pubsub.PubSub.Handle for queue groups and raw bytes.
func (n *Node) Handle(topic string, handler func(req map[string]any) (map[string]any, error)) (*pubsub.Subscription, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: nil handler", pubsub.ErrConfig)
	}
	return pubsub.HandleJSON(n.ps, topic, func(_ context.Context, req map[string]any, _ pubsub.Message) (map[string]any, error) {
		return handler(req)
	})
}

// Send sends msg as JSON to one peer's subscribers of topic only. See
// pubsub.PubSub.Send.
func (n *Node) Send(ctx context.Context, to peer.ID, topic string, msg map[string]any) error {
	return pubsub.SendJSON(ctx, n.ps, to, topic, msg)
}

// Publish sends raw bytes on topic.
func (n *Node) Publish(ctx context.Context, topic string, data []byte) error {
	return n.ps.Publish(ctx, topic, data)
}

// Peers returns the members of the mesh this node knows of (see OnPeer),
// sorted.
func (n *Node) Peers() []peer.ID {
	ps, _ := n.members.joined()
	return ps
}

// OnPeer calls fn for every member of the mesh that joins or leaves, in
// order, on a goroutine of its own, starting with a PeerJoined for each
// member known now. It returns a function that stops the calls.
//
// A directly connected peer joins when its pub/sub is ready (a broadcast
// from then on reaches its subscriptions), or after it has been connected
// for three seconds without that (a libp2p peer that runs no Reflect
// pub/sub). On a partial mesh (bootstrap peers, a firewall,
// Config.MaxPeers), a member that is not connected to this node joins
// a little over a second after a node this node reaches announces that it
// is connected to it, once the nodes between relay this node's broadcasts
// to it. A member leaves when it is neither connected to this node nor
// announced by another: a peer whose connection to this node broke but
// that others still reach stays a member. Neighbours and OnNeighbour
// report the direct peers only.
func (n *Node) OnPeer(fn func(PeerEvent)) (stop func()) {
	return n.members.watch(fn)
}

// Neighbours returns the peers this node is connected to that have joined
// (see OnPeer), sorted: in a full mesh, the same as Peers.
func (n *Node) Neighbours() []peer.ID {
	ps, _ := n.members.joinedNeighbours()
	return ps
}

// OnNeighbour is OnPeer for the direct peers: fn is called for every peer
// that joins (connected and ready) or whose last connection to this node
// closes, starting with a PeerJoined for each joined now. The store syncs
// with its neighbours on these events.
func (n *Node) OnNeighbour(fn func(PeerEvent)) (stop func()) {
	return n.members.watchNeighbours(fn)
}

// Connect dials the peer at addr and keeps it connected from then on, like
// a bootstrap peer. With /p2p/<id>, only that peer is accepted at addr;
// without, the peer id is learnt from the node that answers, and learnt
// again if a node with another id answers there later (see
// Config.BootstrapPeers).
func (n *Node) Connect(ctx context.Context, addr ma.Multiaddr) error {
	if _, err := addr.ValueForProtocol(ma.P_P2P); err != nil {
		if n.ctx.Err() != nil {
			return ErrClosed
		}
		return n.members.connectAddr(ctx, addr)
	}
	ai, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrConfig, addr, err)
	}
	return n.ConnectPeer(ctx, *ai)
}

// ConnectPeer is Connect for a peer.AddrInfo.
func (n *Node) ConnectPeer(ctx context.Context, ai peer.AddrInfo) error {
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	ms := n.members
	ms.keepPeer(ai)
	if err := ms.connect(ctx, ai, false); err != nil {
		ms.dial(ai.ID, false) // keep trying in the background
		what, _ := dialFailure(err)
		return fmt.Errorf("node: connect %s: it %s: %w", ai.ID, what, err)
	}
	return nil
}

// WaitPeers blocks until at least count members have joined (see OnPeer)
// or ctx ends. A broadcast made after it returns reaches the subscriptions
// those peers had when they joined (on a partial mesh, where relaying
// nodes subscribe to the topic too: see package pubsub).
func (n *Node) WaitPeers(ctx context.Context, count int) error {
	for {
		joined, changed := n.members.joined()
		if len(joined) >= count {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("node: waiting for %d peers, have %d: %w", count, len(joined), ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}
