package main

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// libp2p listens on every address it can and drops the others with a debug
// log, so a -listen address that looks fine but cannot be used (a transport
// this build lacks, a port in use, an IP not on this host) would go unnoticed
// as long as another one works. The demo compares what it asked for with
// the host's listeners and refuses to run with such an address.

// Why a -listen address is not listened on.
var (
	errNoTransport = errors.New("no transport of this build listens on it (the demo speaks TCP)")
	errNotListened = errors.New("cannot listen on it (port in use, or the IP is not on this host?)")
)

// badListen is a -listen address the host does not listen on, and why.
type badListen struct {
	addr string
	why  error
}

// unusableListen returns the addresses of want (already validated by
// node.New) that none of h's listeners serve.
func unusableListen(h host.Host, want []string) []badListen {
	have := h.Network().ListenAddresses()
	sw, _ := h.Network().(*swarm.Swarm)
	var bad []badListen
	for _, s := range want {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			bad = append(bad, badListen{s, fmt.Errorf("invalid: %w", err)})
			continue
		}
		if listened(a, have) {
			continue
		}
		why := errNotListened
		if sw != nil && sw.TransportForListening(a) == nil {
			why = errNoTransport
		}
		bad = append(bad, badListen{s, why})
	}
	return bad
}

// listened reports whether one of have serves want: the same protocols
// with the same values, where a port 0 in want matches any port.
func listened(want ma.Multiaddr, have []ma.Multiaddr) bool {
	for _, h := range have {
		if sameListener(want, h) {
			return true
		}
	}
	return false
}

func sameListener(want, have ma.Multiaddr) bool {
	if len(want) != len(have) {
		return false
	}
	for i := range want {
		w, h := want[i], have[i]
		if w.Code() != h.Code() {
			return false
		}
		switch w.Code() {
		case ma.P_TCP, ma.P_UDP:
			if w.Value() != "0" && w.Value() != h.Value() {
				return false
			}
		default:
			if !w.Equal(&h) {
				return false
			}
		}
	}
	return true
}
