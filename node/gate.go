package node

import (
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

const (
	// maxPendingPerSource bounds the inbound connections of one source
	// address (an IPv4 address, an IPv6 /64) that have not passed the
	// handshakes. An honest peer holds one while it connects (a few
	// milliseconds on a LAN), so 8 leaves room for several instances
	// starting at once on one host; a stranger holds at most 8 of the
	// resource manager's transient inbound slots (about 80).
	maxPendingPerSource = 8
	// maxPendingTotal bounds the gate's table across all sources; past it,
	// new inbound connections are refused until entries expire.
	maxPendingTotal = 4096
	// pendingSlack is added to the handshake timeout before a pending
	// entry expires: libp2p starts its accept timeout a little after the
	// gate sees the connection.
	pendingSlack = time.Second
)

// handshakeGate is the node's libp2p ConnectionGater. It caps, per source
// address, the inbound connections that have not passed the handshakes:
// an entry is made when a connection is accepted and removed when it is
// secured (the peer had the network key and finished Noise); a connection
// that never is expires with libp2p's accept timeout (Config.HandshakeTimeout)
// and its entry a second later. So one address can start at most 8 failing
// handshakes per timeout, from a private range or not: on a LAN the
// stranger is the threat. Every other decision goes to the caller's gater,
// if Config.Libp2pOptions set one.
type handshakeGate struct {
	inner  connmgr.ConnectionGater // the caller's gater, or nil
	expiry time.Duration
	now    func() time.Time
	count  *counters
	warns  *warnLimiter

	mu      sync.Mutex
	pending map[netip.Prefix][]pendingConn
	total   int
	swept   time.Time
	failed  []ma.Multiaddr // remote addresses of expired handshakes not yet logged
	timeout time.Duration
	work    chan struct{} // signalled when a handshake starts: the sweeper wakes (Node.sweepHandshakes)
}

// maxFailedUnlogged bounds the expired handshakes waiting to be logged:
// each remote address logs at most once per warnEvery anyway.
const maxFailedUnlogged = 64

// pendingConn is one inbound connection still in its handshakes.
type pendingConn struct {
	id     string // local and remote address: unique among live TCP connections
	remote ma.Multiaddr
	at     time.Time
	// quiet is set when a connection from the same source passed the
	// handshakes after this one started: a member that dialled us first
	// without knowing our peer id (an address-only bootstrap peer) and
	// hung up when it learnt it. Its expiry is not logged.
	quiet bool
}

func newHandshakeGate(timeout time.Duration, count *counters, warns *warnLimiter) *handshakeGate {
	return &handshakeGate{
		expiry:  timeout + pendingSlack,
		now:     time.Now,
		count:   count,
		warns:   warns,
		pending: map[netip.Prefix][]pendingConn{},
		timeout: timeout,
		work:    make(chan struct{}, 1),
	}
}

// option installs the gate as the host's connection gater, wrapping the
// one the caller's options set. It must come after them.
func (g *handshakeGate) option() libp2p.Option {
	return func(c *config.Config) error {
		g.inner = c.ConnectionGater
		c.ConnectionGater = g
		return nil
	}
}

// sourceOf returns the address block a connection's cap is counted in:
// the IPv4 address, or the IPv6 /64 (a host on a LAN can take any address
// of its /64 at will). ok is false for a connection without an IP address.
func sourceOf(a ma.Multiaddr) (netip.Prefix, bool) {
	ip, err := manet.ToIP(a)
	if err != nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	addr = addr.Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, err := addr.Prefix(bits)
	return p, err == nil
}

func connID(c network.ConnMultiaddrs) string {
	return c.LocalMultiaddr().String() + " " + c.RemoteMultiaddr().String()
}

// InterceptAccept admits an inbound connection unless its source already
// has maxPendingPerSource connections in their handshakes.
func (g *handshakeGate) InterceptAccept(c network.ConnMultiaddrs) bool {
	if g.inner != nil && !g.inner.InterceptAccept(c) {
		return false
	}
	src, ok := sourceOf(c.RemoteMultiaddr())
	if !ok {
		return true
	}
	now := g.now()
	g.mu.Lock()
	if now.Sub(g.swept) > g.expiry {
		g.sweepLocked(now)
	}
	list := g.pruneLocked(src, now)
	if len(list) >= maxPendingPerSource || g.total >= maxPendingTotal {
		total := g.total
		g.mu.Unlock()
		g.count.handshakesRefused.Add(1)
		g.warns.warn("handshake-cap", "node: refusing inbound connections: too many unfinished handshakes (a stranger without the key?)",
			"source", src, "pending_from_source", len(list), "pending_total", total, "cap", maxPendingPerSource)
		return false
	}
	g.pending[src] = append(list, pendingConn{id: connID(c), remote: c.RemoteMultiaddr(), at: now})
	g.total++
	g.mu.Unlock()
	select {
	case g.work <- struct{}{}:
	default:
	}
	g.reportFailed()
	return true
}

// InterceptSecured removes a secured inbound connection from the pending
// table: its peer had the network key and finished Noise.
func (g *handshakeGate) InterceptSecured(dir network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	if dir == network.DirInbound {
		if src, ok := sourceOf(c.RemoteMultiaddr()); ok {
			id := connID(c)
			g.mu.Lock()
			list := g.pending[src]
			for i, pc := range list {
				if pc.id == id {
					list = append(list[:i], list[i+1:]...)
					g.total--
					break
				}
			}
			for i := range list {
				list[i].quiet = true
			}
			g.setLocked(src, list)
			g.mu.Unlock()
		}
	}
	return g.inner == nil || g.inner.InterceptSecured(dir, p, c)
}

// pruneLocked drops src's expired entries and returns what is left. An
// expired entry is a connection that did not pass the handshakes in time
// (HandshakeTimeout): unless quiet, it counts in Stats.HandshakesFailed and
// is kept for reportFailed.
func (g *handshakeGate) pruneLocked(src netip.Prefix, now time.Time) []pendingConn {
	list := g.pending[src]
	keep := list[:0]
	for _, pc := range list {
		switch {
		case now.Sub(pc.at) < g.expiry:
			keep = append(keep, pc)
		case pc.quiet:
		default:
			g.count.handshakesFailed.Add(1)
			if len(g.failed) < maxFailedUnlogged {
				g.failed = append(g.failed, pc.remote)
			}
		}
	}
	g.total -= len(list) - len(keep)
	g.setLocked(src, keep)
	return keep
}

func (g *handshakeGate) setLocked(src netip.Prefix, list []pendingConn) {
	if len(list) == 0 {
		delete(g.pending, src)
		return
	}
	g.pending[src] = list
}

// sweepLocked drops every expired entry; it runs at most once per expiry
// period, so the table holds only the sources of that period.
func (g *handshakeGate) sweepLocked(now time.Time) {
	for src := range g.pending {
		g.pruneLocked(src, now)
	}
	g.swept = now
}

// quiet keeps the pending connections from a's address from being logged
// when they expire: this node dialled itself there (forgetSelf).
func (g *handshakeGate) quiet(a ma.Multiaddr) {
	src, ok := sourceOf(a)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.pending[src] {
		g.pending[src][i].quiet = true
	}
}

// sweep expires the entries past their time and logs them (reportFailed),
// and reports whether any handshake is still unfinished. The node calls it
// every second while one is (Node.sweepHandshakes), so a failed handshake
// is logged within about HandshakeTimeout plus two seconds even when no
// other connection comes.
func (g *handshakeGate) sweep() (pending bool) {
	now := g.now()
	g.mu.Lock()
	g.sweepLocked(now)
	pending = g.total > 0
	g.mu.Unlock()
	g.reportFailed()
	return pending
}

// reportFailed logs the inbound connections that did not pass the
// handshakes in time, at most once per warnEvery per remote IP address.
// The usual cause is a node with another secret: the private network
// handshake turns its bytes into garbage, and our side waits for a Noise
// message that never makes sense until the accept timeout closes it.
func (g *handshakeGate) reportFailed() {
	g.mu.Lock()
	failed := g.failed
	g.failed = nil
	g.mu.Unlock()
	for _, remote := range failed {
		key := remote.String()
		if ip, err := manet.ToIP(remote); err == nil {
			key = ip.String()
		}
		g.warns.warnKey("handshake-failed", key,
			"node: an inbound connection did not finish the handshakes in time (different secret?)",
			"remote", remote, "timeout", g.timeout)
	}
}

// pendingCount returns the entries not yet expired.
func (g *handshakeGate) pendingCount() int {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
	return g.total
}

func (g *handshakeGate) InterceptPeerDial(p peer.ID) bool {
	return g.inner == nil || g.inner.InterceptPeerDial(p)
}

func (g *handshakeGate) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return g.inner == nil || g.inner.InterceptAddrDial(p, a)
}

func (g *handshakeGate) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if g.inner == nil {
		return true, 0
	}
	return g.inner.InterceptUpgraded(c)
}
