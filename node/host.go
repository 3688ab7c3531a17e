package node

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/config"
	coreconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	ipnet "github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/fx"

	"github.com/reflectmesh/reflect/pnet"
)

// pskIncompatible lists transport packages that refuse a private network
// key; their constructors fail deep inside libp2p.New otherwise.
var pskIncompatible = []string{
	"github.com/libp2p/go-libp2p/p2p/transport/quic.",
	"github.com/libp2p/go-libp2p/p2p/transport/webtransport.",
	"github.com/libp2p/go-libp2p/p2p/transport/webrtc.",
}

// userOptions is what the caller's libp2p options configure, found by
// applying them to a scratch config.
type userOptions struct {
	transports, listen, rcmgr, connmgr bool
	// registerer: the caller gave libp2p a Prometheus registerer;
	// noMetrics: the caller turned libp2p's metrics off.
	registerer, noMetrics bool
}

func inspectOptions(opts []libp2p.Option) (userOptions, error) {
	var scratch config.Config
	if err := scratch.Apply(opts...); err != nil {
		return userOptions{}, fmt.Errorf("%w: libp2p option: %w", ErrConfig, err)
	}
	for _, t := range scratch.Transports {
		if err := checkTransport(t); err != nil {
			return userOptions{}, err
		}
	}
	return userOptions{
		transports: len(scratch.Transports) > 0,
		listen:     len(scratch.ListenAddrs) > 0,
		rcmgr:      scratch.ResourceManager != nil,
		connmgr:    scratch.ConnManager != nil,
		registerer: scratch.PrometheusRegisterer != nil,
		noMetrics:  scratch.DisableMetrics,
	}, nil
}

// checkTransport refuses a transport constructor from a package that cannot
// run under a PSK. fx describes a provided constructor by its full name.
func checkTransport(o fx.Option) error {
	desc := fmt.Sprint(o)
	for _, bad := range pskIncompatible {
		if strings.Contains(desc, bad) {
			name := strings.TrimSuffix(bad[strings.LastIndex(strings.TrimSuffix(bad, "."), "/")+1:], ".")
			return fmt.Errorf("%w: %s (use TCP or WebSocket)", ErrTransport, name)
		}
	}
	return nil
}

// newHost builds the libp2p host: PSK, TCP with kernel keepalives (unless
// the caller names transports), Noise, yamux (pinging only on the caller's
// transports), LAN-friendly resource limits, the handshake gate and
// timeout, no relay, and libp2p's metrics only with a registerer
// (Config.Metrics, or the caller's option). It does not listen yet.
func newHost(cfg Config, net *pnet.Network, key crypto.PrivKey, uo userOptions, gate *handshakeGate) (host.Host, *tcpConns, error) {
	// On the node's own TCP transport the kernel watches the links
	// (tcpalive.go); yamux pings only on the caller's transports.
	kernelAlive := kernelKeepalive && !uo.transports
	var conns *tcpConns
	opts := []libp2p.Option{
		libp2p.PrivateNetwork(net.PSK()),
		libp2p.Identity(key),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, muxer(cfg, kernelAlive)),
		libp2p.NoListenAddrs,
		libp2p.DisableRelay(),
		libp2p.WithDialTimeout(cfg.DialTimeout),
		libp2p.UserAgent("reflect"),
	}
	// libp2p refuses a registerer once metrics are disabled, so metrics
	// are disabled only when nobody gave one (else libp2p would register
	// with prometheus.DefaultRegisterer).
	switch {
	case uo.registerer || uo.noMetrics:
		// The caller's choice stands.
	case cfg.Metrics != nil:
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Metrics))
	default:
		opts = append(opts, libp2p.DisableMetrics())
	}
	if !uo.transports {
		// Port reuse lets two peers dialling each other at once end up on
		// one TCP connection where both act as initiator (simultaneous
		// open), and Noise fails on both sides. Separate ports avoid it.
		if kernelAlive {
			alive := newTCPAlive(cfg.KeepAlive, cfg.WriteTimeout, cfg.Logger)
			alive.conns = newTCPConns(alive.userTimeout)
			conns = alive.conns
			opts = append(opts, libp2p.Transport(alive.transport()))
		} else {
			opts = append(opts, libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()))
		}
	}
	if !uo.rcmgr {
		metrics := !uo.noMetrics && (uo.registerer || cfg.Metrics != nil)
		rm, err := newResourceManager(metrics)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, libp2p.ResourceManager(rm))
	}
	if !uo.connmgr {
		// A safety net above the node's own trimming (degree.go).
		most := cfg.MaxPeers
		if most == 0 {
			most = DefaultFullMesh - 1
		}
		low := most + trimSlack(most)
		// It checks once a minute (libp2p's default: every 10 s), not to
		// wake an idle node for a net that rarely catches anything.
		cm, err := connmgr.NewConnManager(low, 2*low, connmgr.WithSilencePeriod(time.Minute))
		if err != nil {
			return nil, nil, fmt.Errorf("node: connection manager: %w", err)
		}
		opts = append(opts, libp2p.ConnectionManager(cm))
	}
	opts = append(opts, cfg.Libp2pOptions...)
	// After the caller's options: the gate wraps their gater, if any.
	opts = append(opts, gate.option(), handshakeTimeout(cfg.HandshakeTimeout))
	h, err := newLibp2p(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("node: libp2p host: %w", err)
	}
	return h, conns, nil
}

// yamuxFrame is the largest yamux frame the node sends (libp2p's default
// is 64 KiB). A pub/sub frame of a 64 KiB message, or of a full batch of
// small ones (128 KiB), then goes out as one yamux frame, not two or three:
// fewer writes and encryptions of a few bytes each. Measured, one process
// per node, N = 5: 64 KiB messages 7–15 % faster per subscriber (4
// interleaved pairs), CPU per delivery 6–13 % lower. Another stream's
// frame waits at most one such frame on the link: 2 ms at 1 Gbit/s.
const yamuxFrame = 256 << 10

// yamuxRTTEvery is how often yamux measures a connection's round-trip
// time (libp2p's default: every 30 s). The RTT only tunes how fast a
// stream's receive window grows, and a LAN's hardly changes after the
// measurement yamux makes when the connection opens. Each measurement is a
// ping and its answer, and both ends measure: an idle node with 8
// connections was woken about once a second by them alone (runtime trace
// of one idle node in a mesh of 50: 29 of its ~720 wake-ups in 30 s).
const yamuxRTTEvery = 10 * time.Minute

// muxer is yamux with the node's write timeout and frames of up to
// yamuxFrame, pinging every KeepAlive unless the kernel watches the links
// (kernelAlive), and measuring the RTT every yamuxRTTEvery.
func muxer(cfg Config, kernelAlive bool) *yamux.Transport {
	ymx := *yamux.DefaultTransport
	ymx.EnableKeepAlive = !kernelAlive
	ymx.KeepAliveInterval = cfg.KeepAlive
	ymx.ConnectionWriteTimeout = cfg.WriteTimeout
	ymx.MaxMessageSize = yamuxFrame
	ymx.MeasureRTTInterval = yamuxRTTEvery
	return &ymx
}

// newLibp2p is libp2p.New, with the panic libp2p raises when it cannot
// register its metrics (a registry holding metrics of the same names with
// other labels) turned into an error wrapping ErrConfig. libp2p registers
// them before it builds anything, so nothing is left running.
func newLibp2p(opts []libp2p.Option) (h host.Host, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("%w: Metrics: libp2p could not register its metrics: %v", ErrConfig, r)
		}
	}()
	return libp2p.New(opts...)
}

// Per-address connection caps of the resource manager. They count every
// connection, in or out, authenticated or not, of one remote address, and
// apply to private ranges as to public ones (a stranger on the LAN is the
// threat); a member holds one or two connections to each peer, so 64 leaves
// room for dozens of instances sharing one address (one host, or a NAT).
// Loopback is the exception: only a process on this host can use it, and
// test meshes run many nodes there, so all of 127.0.0.0/8 and ::1 share one
// cap of 1024.
const (
	connsPerIP       = 64
	connsPerIPv6Net  = 256 // per /64: LAN hosts share one (link-local fe80::/64)
	connsForLoopback = 1024
)

// rateExempt are the ranges exempt from libp2p's per-address limit on the
// rate of new connections: a LAN peer's reconnect loop would otherwise wait
// seconds for its token. Their connections are still capped in number (the
// resource manager) and, while unauthenticated, by the handshake gate.
var rateExempt = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// newResourceManager returns libp2p's default limits, with the per-address
// caps above in place of libp2p's 8 (which exempts loopback entirely), and
// without the connection-rate limit for private and loopback addresses.
// Unauthenticated inbound connections live in the transient scope (about
// 80 on this kind of machine: 32 plus 16 per GiB of an eighth of the
// memory) until they pass the handshakes; the handshake gate keeps one
// address from taking more than 8 of them.
//
// It reports to libp2p's resource-manager metrics only when libp2p's
// metrics are on (metrics). Otherwise every resource event (a connection,
// a stream, a memory reservation) was still stamped with its time as
// text and counted into collectors no registry reads: 2 % of the CPU of
// a mesh of 100 forming (one profile of all 100 processes).
func newResourceManager(metrics bool) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	var rl []rate.PrefixLimit
	for _, p := range rateExempt {
		rl = append(rl, rate.PrefixLimit{Prefix: p, Limit: rate.Limit{}})
	}
	limiter := &rate.Limiter{
		NetworkPrefixLimits: rl,
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: 1, Burst: 32}}},
			IPv6SubnetLimits: []rate.SubnetLimit{{PrefixLength: 56, Limit: rate.Limit{RPS: 1, Burst: 32}}},
			GracePeriod:      0,
		},
	}
	opts := []rcmgr.Option{
		rcmgr.WithNetworkPrefixLimit(
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("127.0.0.0/8"), ConnCount: connsForLoopback}},
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("::1/128"), ConnCount: connsForLoopback}}),
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: connsPerIP}},
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 128, ConnCount: connsPerIP}, {PrefixLength: 64, ConnCount: connsPerIPv6Net}}),
		rcmgr.WithConnRateLimiters(limiter),
	}
	if !metrics {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), opts...)
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	return rm, nil
}

// handshakeTimeout sets libp2p's accept timeout, which bounds an inbound
// connection's handshakes (private network, security, multiplexer) and
// defaults to 15 s. libp2p has the knob (upgrader.WithAcceptTimeout) but no
// host option for it, so the upgrader libp2p.New builds is replaced by one
// made from the same parts with the timeout.
func handshakeTimeout(d time.Duration) libp2p.Option {
	return libp2p.WithFxOption(fx.Decorate(func(in upgraderParts) (transport.Upgrader, error) {
		return tptu.New(in.Security, in.Muxers, in.PSK, in.RcMgr, in.Gater, tptu.WithAcceptTimeout(d))
	}))
}

// upgraderParts are what libp2p.New builds its upgrader from.
type upgraderParts struct {
	fx.In
	Replaced transport.Upgrader    // the default one, unused: what is decorated
	Security []sec.SecureTransport `name:"security"`
	Muxers   []tptu.StreamMuxer
	PSK      ipnet.PSK
	RcMgr    network.ResourceManager
	Gater    coreconnmgr.ConnectionGater
}

// defaultListenCandidates are tried, in order, when nobody chose listen
// addresses: each is used if one of the host's transports can listen on it,
// so swapping TCP for WebSocket still leaves the host reachable.
var defaultListenCandidates = []string{
	"/ip4/0.0.0.0/tcp/0", "/ip6/::/tcp/0",
	"/ip4/0.0.0.0/tcp/0/ws", "/ip6/::/tcp/0/ws",
}

// listen starts listening on the configured addresses or, if none, on the
// defaults the host's transports support.
func listen(h host.Host, addrs []string) error {
	var want []ma.Multiaddr
	if len(addrs) > 0 {
		for _, s := range addrs {
			want = append(want, ma.StringCast(s))
		}
	} else {
		sw, ok := h.Network().(*swarm.Swarm)
		for _, s := range defaultListenCandidates {
			a := ma.StringCast(s)
			if !ok || sw.TransportForListening(a) != nil {
				want = append(want, a)
			}
		}
	}
	if len(want) == 0 {
		return fmt.Errorf("%w: no configured transport can listen on %v", ErrNoListen, defaultListenCandidates)
	}
	if err := h.Network().Listen(want...); err != nil {
		return fmt.Errorf("%w: %w", ErrNoListen, err)
	}
	return nil
}
