package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	ma "github.com/multiformats/go-multiaddr"
)

// Diagnostics: the log lines that name why peers do not connect. Each is a
// Warn, limited to one per 10 s per remote address or peer.

// sweepHandshakes expires the gate's unfinished inbound handshakes every
// second while there are any and logs them (handshakeGate.reportFailed);
// otherwise it sleeps until a handshake starts. It runs for the node's
// life.
func (n *Node) sweepHandshakes() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.gate.sweep() {
			t.Reset(time.Second)
			continue
		}
		select {
		case <-n.ctx.Done():
			return
		case <-n.gate.work:
			t.Reset(time.Second)
		}
	}
}

// dialFailure names why a dial failed, for the log: the peer answered with
// another peer id (actual is the id it has), refused the connection, failed
// the handshakes (most often: it has another secret), or timed out.
func dialFailure(err error) (what string, actual peer.ID) {
	var mismatch sec.ErrPeerIDMismatch
	inHandshakes := inHandshakes(err)
	var ne net.Error
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
	switch {
	case err == nil:
		return "", ""
	case errors.As(err, &mismatch):
		return "answered with another peer id", mismatch.Actual
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused the connection (not running, or not on this port)", ""
	case inHandshakes && timedOut:
		return "timed out in the handshakes (different secret, or not a Reflect node?)", ""
	case inHandshakes:
		return "failed the handshakes (different secret?)", ""
	case timedOut:
		return "timed out (unreachable, or firewalled)", ""
	default:
		return "failed", ""
	}
}

// inHandshakes reports whether a dial failed in the handshakes (private
// network key, Noise, or the peer id check that ends Noise). libp2p has no
// typed error for a failed private network or Noise handshake: the
// connection was made, then closed or stalled in the handshakes, which is
// what another secret looks like (each side decrypts the other's bytes to
// garbage and waits for more).
func inHandshakes(err error) bool {
	return err != nil && strings.Contains(err.Error(), "failed to negotiate security protocol")
}

// handshakesFailed reports whether a dial failed the handshakes themselves
// (the "different secret?" cases of dialFailure, timed out or not), rather
// than reaching a node with another peer id: Stats.HandshakesFailed.
func handshakesFailed(err error) bool {
	var mismatch sec.ErrPeerIDMismatch
	return inHandshakes(err) && !errors.As(err, &mismatch)
}

// warnDialFailed logs why a dial of a kept peer (bootstrap, Connect)
// failed, at most once per warnEvery per peer. A placeholder (an address
// whose peer id is not known yet) is named by its addresses only.
func (ms *members) warnDialFailed(p peer.ID, placeholder bool, addrs []ma.Multiaddr, err error) {
	what, actual := dialFailure(err)
	args := []any{"addrs", addrs}
	key := p.String()
	if placeholder {
		key = fmt.Sprint(addrs)
	} else {
		args = append(args, "peer", p)
	}
	if actual != "" {
		args = append(args, "actual_peer", actual)
	}
	args = append(args, "err", err)
	ms.warns.warnKey("dial-failed", key, "node: cannot connect to a bootstrap peer: it "+what, args...)
}

// mdnsAdvertisable reports whether mDNS advertises a (mdns.go): an IP
// address without WebSocket, WebTransport, WebRTC or relay (as
// p2p/discovery/mdns does it).
func mdnsAdvertisable(a ma.Multiaddr) bool {
	first, _ := ma.SplitFirst(a)
	if first == nil || (first.Protocol().Code != ma.P_IP4 && first.Protocol().Code != ma.P_IP6) {
		return false
	}
	ok := true
	ma.ForEach(a, func(c ma.Component) bool {
		switch c.Protocol().Code {
		case ma.P_CIRCUIT, ma.P_WEBTRANSPORT, ma.P_WEBRTC, ma.P_WEBRTC_DIRECT, ma.P_P2P_WEBRTC_DIRECT, ma.P_WS, ma.P_WSS:
			ok = false
		}
		return ok
	})
	return ok
}

// warnIfMDNSBlind warns, once at New, when mDNS is on but none of the
// node's listen addresses is one mDNS advertises (a WebSocket-only
// node): other nodes would never find it on the LAN.
func (n *Node) warnIfMDNSBlind() {
	addrs := n.host.Addrs()
	for _, a := range addrs {
		if mdnsAdvertisable(a) {
			return
		}
	}
	n.log.Warn("node: mDNS is on, but mDNS does not advertise WebSocket (/ws) addresses, the only ones this node listens on: other nodes will not find it on the LAN; add a TCP listen address, or use BootstrapPeers",
		"addrs", addrs)
}
