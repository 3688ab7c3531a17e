package node

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/internal/warnlog"
	"github.com/reflectmesh/reflect/pnet"
	"github.com/reflectmesh/reflect/pubsub"
)

// Defaults for zero Config fields. They suit a LAN: failures are noticed in
// seconds, and a peer that comes back is found again within about a second.
const (
	// DefaultDialTimeout bounds one dial, handshakes included. A peer with
	// another key makes a dial hang until this timeout.
	DefaultDialTimeout = 5 * time.Second
	// DefaultHandshakeTimeout bounds the handshakes of an inbound
	// connection (private network, Noise, multiplexer): a LAN peer finishes
	// them in tens of milliseconds; a stranger's connection that sends
	// nothing, or not the network key, is closed after this.
	DefaultHandshakeTimeout = 3 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the jittered,
	// doubling delay between redials of a lost peer.
	DefaultReconnectMin = 250 * time.Millisecond
	DefaultReconnectMax = 3 * time.Second
	// DefaultForgetAfter is how long a lost peer found by mDNS is redialled
	// before it is forgotten (bootstrap peers are never forgotten).
	DefaultForgetAfter = time.Hour
	// DefaultKeepAlive is how long a connection may be silent before it is
	// probed (TCP keepalive on the node's own TCP transport, multiplexer
	// pings on other transports); a connection whose peer went silent is
	// declared dead about DefaultKeepAlive plus DefaultWriteTimeout after
	// the link goes.
	DefaultKeepAlive = 5 * time.Second
	// DefaultWriteTimeout bounds a multiplexer write, and how long probes
	// of a silent connection go unanswered before it is declared dead (at
	// least 3 s on TCP: one probe a second, three at the least).
	DefaultWriteTimeout = 3 * time.Second
	// DefaultFullMesh is the largest mesh that is a full mesh when
	// Config.MaxPeers is not set: up to this many nodes, every node
	// connects to every other (see Config.MaxPeers).
	DefaultFullMesh = 24
	// DefaultMaxPeers is how many direct peers a node keeps in a mesh
	// larger than DefaultFullMesh when Config.MaxPeers is not set.
	DefaultMaxPeers = 8
)

// Config configures a Node. Only the secret is required:
//
//	n, err := node.New(node.Config{Key: "correct horse battery staple"})
//
// Every other zero field takes the default documented on it.
type Config struct {
	// Key is the shared secret. Every node started with the same Key forms
	// one private mesh; nodes with other keys cannot connect to it. It is
	// stretched with Argon2id (see package pnet). Required unless Network
	// is set.
	Key string

	// Network, if set, is used instead of Key: for a raw 32-byte key
	// (pnet.FromKey) or a libp2p swarm key file (pnet.ParseSwarmKey).
	Network *pnet.Network

	// ListenAddrs are the multiaddrs to listen on. Default: every
	// interface, IPv4 and IPv6, any free port, on each of TCP and WebSocket
	// that the host's transports can listen on.
	ListenAddrs []string

	// BootstrapPeers are multiaddrs of nodes to connect to and keep
	// connected, for networks without multicast. An address may end in
	// /p2p/<id>, and then only that peer is accepted there, or not (e.g.
	// "/ip4/192.168.1.10/tcp/4001"): then the peer id is learnt from the
	// node that answers (the private network key already proves it a
	// member), and a node restarted there under a new id is found again.
	BootstrapPeers []string

	// DisableMDNS turns LAN discovery off. By default nodes find each other
	// with mDNS under a service name derived from the secret.
	DisableMDNS bool

	// IdentityFile keeps the node's private key in this file, created (mode
	// 0600) if missing, so a restarted node keeps its peer id. Default: a
	// new identity on every start.
	IdentityFile string

	// Identity is the node's private key; it takes precedence over
	// IdentityFile. Default: see IdentityFile.
	Identity crypto.PrivKey

	// DialTimeout bounds one dial including handshakes. Default
	// DefaultDialTimeout.
	DialTimeout time.Duration

	// HandshakeTimeout bounds the handshakes of an inbound connection
	// (libp2p's accept timeout); see "Strangers" in the package
	// documentation. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// ReconnectMin and ReconnectMax bound the delay between redials of a lost
	// peer. Defaults DefaultReconnectMin and DefaultReconnectMax.
	ReconnectMin, ReconnectMax time.Duration

	// ForgetAfter is how long a lost, non-bootstrap peer is redialled.
	// Default DefaultForgetAfter.
	ForgetAfter time.Duration

	// KeepAlive and WriteTimeout tune dead-link detection: on the node's
	// own TCP transport the kernel's (TCP keepalive and TCP_USER_TIMEOUT,
	// on Linux), elsewhere yamux pings every KeepAlive. Defaults
	// DefaultKeepAlive and DefaultWriteTimeout.
	KeepAlive, WriteTimeout time.Duration

	// MaxPeers is how many direct peers a node keeps. A node connects to
	// every peer it finds while the mesh fits (at most MaxPeers+1 nodes
	// it knows of): a full mesh. In a larger mesh it dials until it has
	// half of MaxPeers (at least 3), and takes the nodes that dial it up
	// to MaxPeers plus a quarter (at least 2): above that it closes
	// connections, sparing its bootstrap peers, peers given to its Connect,
	// and the nodes that keep it so (they tell it: a node that every other
	// node bootstraps to is connected to all of them). So a large
	// mesh is partial: pub/sub relays, and Node.Peers still lists every
	// member (see degree.go).
	//
	// Zero (the default) sizes it to the mesh: a full mesh while the node
	// knows of at most DefaultFullMesh nodes (members, candidates found
	// and itself), DefaultMaxPeers direct peers once it knows of more,
	// and a full mesh again once it knows of at most three quarters of
	// DefaultFullMesh (in its first two seconds, while discovery tells it
	// who is there, DefaultMaxPeers). A full mesh sends every message straight to each
	// subscriber; a bounded degree keeps a large mesh's connections,
	// formation and idle traffic in proportion.
	MaxPeers int

	// PubSub configures topics. TopicPrefix and Logger are set by the node.
	PubSub pubsub.Config

	// Libp2pOptions are appended to the host's options: add or swap
	// transports (e.g. libp2p.Transport(websocket.New)), set a resource
	// manager, enable relay or NAT traversal. Naming any transport replaces
	// the default TCP transport. Transports that cannot use a private network
	// key (QUIC, WebTransport, WebRTC) make New fail with ErrTransport.
	Libp2pOptions []libp2p.Option

	// Metrics, if set, receives the node's Prometheus metrics: Reflect's
	// (reflect_node_*, reflect_pubsub_*, and reflect_store_* of the stores
	// opened on the node; listed on Node.Metrics) and libp2p's own
	// (libp2p_*). Reflect's are read from the Stats snapshots when scraped,
	// so they cost nothing between scrapes. One Registerer serves one node:
	// for several nodes in one process wrap it, e.g. with
	// prometheus.WrapRegistererWith and a label per node. Default: no
	// metrics, and libp2p keeps none either (its resource manager's
	// included).
	Metrics prometheus.Registerer

	// Logger receives the node's logs, and those of its pub/sub and of the
	// stores opened on it (unless they are given loggers of their own).
	// Default: warnings and errors go to slog.Default() (as its handler was
	// when New ran); debug and info records are dropped. Pass
	// slog.New(slog.DiscardHandler) for silence.
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ForgetAfter == 0 {
		c.ForgetAfter = DefaultForgetAfter
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = warnlog.New()
	}
	return c
}

// Validate reports the first problem with c, wrapping ErrConfig.
func (c Config) Validate() error {
	if c.Key == "" && c.Network == nil {
		return fmt.Errorf("%w: Key is empty (set Key, or Network): %w", ErrConfig, pnet.ErrEmptySecret)
	}
	for _, s := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("%w: listen address %q: %w", ErrConfig, s, err)
		}
	}
	if _, _, err := parseBootstrap(c.BootstrapPeers); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", c.DialTimeout}, {"HandshakeTimeout", c.HandshakeTimeout}, {"ReconnectMin", c.ReconnectMin}, {"ReconnectMax", c.ReconnectMax},
		{"ForgetAfter", c.ForgetAfter}, {"KeepAlive", c.KeepAlive}, {"WriteTimeout", c.WriteTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrConfig, d.name, d.v)
		}
	}
	if c.ReconnectMin > 0 && c.ReconnectMax > 0 && c.ReconnectMin > c.ReconnectMax {
		return fmt.Errorf("%w: ReconnectMin %v exceeds ReconnectMax %v", ErrConfig, c.ReconnectMin, c.ReconnectMax)
	}
	if c.MaxPeers < 0 {
		return fmt.Errorf("%w: MaxPeers %d is negative", ErrConfig, c.MaxPeers)
	}
	if err := c.PubSub.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// parseBootstrap parses multiaddrs with /p2p/ into AddrInfos, merging
// addresses of the same peer, and returns those without (bare) apart.
func parseBootstrap(addrs []string) (_ []peer.AddrInfo, bare []ma.Multiaddr, _ error) {
	var out []peer.AddrInfo
	idx := map[peer.ID]int{}
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: bootstrap peer %q: %w", ErrConfig, s, err)
		}
		if _, err := a.ValueForProtocol(ma.P_P2P); err != nil {
			if len(dialable([]ma.Multiaddr{a}, true)) == 0 {
				return nil, nil, fmt.Errorf("%w: bootstrap peer %q: not an address to dial (need an IP address and a port, e.g. /ip4/192.168.1.10/tcp/4001)", ErrConfig, s)
			}
			bare = append(bare, a)
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: bootstrap peer %q: %w", ErrConfig, s, err)
		}
		if i, ok := idx[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		idx[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, bare, nil
}
