package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Dead links on the node's own TCP transport are noticed by the kernel, not
// by multiplexer pings. A yamux keepalive wakes the process on both ends of
// every connection each KeepAlive: a timer, a write and a read on each side
// and a goroutine waiting for the pong. With 8–10 connections per node, an
// idle mesh of 50 spends about 20 % less CPU without them (BENCHMARKS.md,
// "Links watched by the kernel"). TCP keepalive probes cost the
// processes nothing: the kernel sends them once a connection has received
// nothing for KeepAlive, and reports the connection dead to the reader when
// they go unanswered; TCP_USER_TIMEOUT does the same for data left
// unacknowledged. The probes are answered by the peer's kernel, so a peer
// that is alive but starved of CPU is not declared dead, where a ping
// waited for its process. A peer process that hangs keeps its links until
// traffic to it backs up: TCP_USER_TIMEOUT then ends a connection whose
// window stays shut, and pub/sub cuts a peer whose window stays full
// (pubsub.Config.StallTimeout).
//
// libp2p's TCP transport sets a 30 s keepalive on every connection just
// before it hands it to the upgrader, so the options are set in a wrapped
// upgrader, after libp2p's. Where the kernel cannot do it (not Linux), or
// when the caller chooses the transports, yamux keeps pinging.

// tcpAlive is the kernel's dead-link detection for one node's connections.
type tcpAlive struct {
	idle, interval time.Duration // TCP_KEEPIDLE, TCP_KEEPINTVL
	count          int           // TCP_KEEPCNT
	userTimeout    time.Duration // TCP_USER_TIMEOUT
	log            *slog.Logger
	conns          *tcpConns // records each connection set up (silentlinks.go); nil: none
}

// newTCPAlive derives the socket options from the node's keepalive and
// write timeout: the first probe after keepAlive of silence, then one a
// second, and the connection dropped when the peer has not been heard from
// for keepAlive plus writeTimeout, or plus 3 s if that is longer. Each probe
// is a single packet that the kernel does not resend, so at least three go
// out before the verdict: one lost probe must not drop a lossy link.
func newTCPAlive(keepAlive, writeTimeout time.Duration, log *slog.Logger) tcpAlive {
	const interval, probes = time.Second, 3
	idle := max(keepAlive.Round(time.Second), time.Second)
	patience := max(writeTimeout, probes*interval)
	return tcpAlive{idle: idle, interval: interval, count: int(patience / interval), userTimeout: idle + patience, log: log}
}

// transport is a constructor for libp2p.Transport: libp2p's TCP transport
// (without port reuse; see newHost) whose connections carry a.
func (a tcpAlive) transport() any {
	return func(up transport.Upgrader, rcmgr network.ResourceManager) (*tcp.TcpTransport, error) {
		return tcp.NewTCPTransport(aliveUpgrader{Upgrader: up, alive: a}, rcmgr, nil, tcp.DisableReuseport())
	}
}

// aliveUpgrader sets a's options on each TCP connection before the upgrade,
// outbound in Upgrade, inbound in the accepting listener.
type aliveUpgrader struct {
	transport.Upgrader
	alive tcpAlive
}

func (u aliveUpgrader) Upgrade(ctx context.Context, t transport.Transport, c manet.Conn, dir network.Direction, p peer.ID, scope network.ConnManagementScope) (transport.CapableConn, error) {
	if err := u.alive.apply(c); err != nil {
		// As libp2p's upgrader does on an error: close c, release scope.
		c.Close()
		scope.Done()
		return nil, fmt.Errorf("node: TCP keepalive: %w", err)
	}
	u.alive.conns.add(c)
	return u.Upgrader.Upgrade(ctx, t, c, dir, p, scope)
}

func (u aliveUpgrader) UpgradeGatedMaListener(t transport.Transport, l transport.GatedMaListener) transport.Listener {
	return u.Upgrader.UpgradeGatedMaListener(t, aliveListener{GatedMaListener: l, alive: u.alive})
}

// aliveListener sets the options on each accepted connection. A connection
// they cannot be set on (closed already) is dropped, and the listener goes
// on accepting: an error from Accept would close it.
type aliveListener struct {
	transport.GatedMaListener
	alive tcpAlive
}

func (l aliveListener) Accept() (manet.Conn, network.ConnManagementScope, error) {
	for {
		c, scope, err := l.GatedMaListener.Accept()
		if err != nil {
			return c, scope, err
		}
		if err := l.alive.apply(c); err != nil {
			l.alive.log.Debug("node: inbound connection dropped: TCP keepalive", "remote", c.RemoteMultiaddr(), "err", err)
			c.Close()
			scope.Done()
			continue
		}
		l.alive.conns.add(c)
		return c, scope, nil
	}
}

// tcpConn is what apply needs of a connection: *net.TCPConn, which
// go-multiaddr's wrapper embeds.
type tcpConn interface {
	net.Conn
	SetKeepAliveConfig(net.KeepAliveConfig) error
	SyscallConn() (syscall.RawConn, error)
}
