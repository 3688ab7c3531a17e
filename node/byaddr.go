package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// Bootstrap addresses without a peer id.
//
// libp2p dials peers, not addresses: a dial needs the peer id, and Noise
// checks that the peer that answers has it. So an address given without
// /p2p/<id> is kept as a member under a placeholder id, a random one no
// node has. Its dial reaches the node at the address, passes the private
// network handshake (so that node has the secret) and fails Noise with
// sec.ErrPeerIDMismatch, which carries the id the node proved it has. The
// member then moves to that id (learnID) and is dialled again, now for
// real. When a node with yet another id answers there later (the peer
// restarted without its identity), its redial fails the same way and the
// member moves again. The node that answered sees one inbound handshake
// fail: its gate does not log it, because the real connection from the
// same address follows (handshakeGate.InterceptSecured). A node already
// connected that announced the address as its own is taken at once,
// without a dial.

// newPlaceholder returns a peer id no node has: that of a new key.
func newPlaceholder() (peer.ID, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("node: placeholder id: %w", err)
	}
	return peer.IDFromPrivateKey(k)
}

// keepAddr keeps a, an address without a peer id, as a member under a
// placeholder id, and starts its dial loop if background is set.
func (ms *members) keepAddr(a ma.Multiaddr, background bool) (peer.ID, error) {
	ph, err := newPlaceholder()
	if err != nil {
		return "", err
	}
	ms.mu.Lock()
	ms.peers[ph] = &member{keep: true, placeholder: true, boot: []ma.Multiaddr{a}, lostAt: time.Now()}
	ms.mu.Unlock()
	if background {
		ms.dial(ph, true)
	}
	return ph, nil
}

// learnID moves the member old, whose addresses are answered by the node
// actual, to actual: kept, and dialled at old's bootstrap addresses too. It
// returns false if old is gone (another dial moved it). With dial set it
// starts actual's dial loop.
func (ms *members) learnID(old, actual peer.ID, dial bool) bool {
	if actual == ms.self || actual == "" {
		return false
	}
	ms.mu.Lock()
	m := ms.peers[old]
	if m == nil || m.connected {
		ms.mu.Unlock()
		return false
	}
	delete(ms.peers, old)
	nm := ms.peers[actual]
	if nm == nil {
		nm = &member{lostAt: time.Now()}
		ms.peers[actual] = nm
	}
	nm.keep = true
	for _, a := range m.boot {
		if !slices.ContainsFunc(nm.boot, a.Equal) {
			nm.boot = append(nm.boot, a)
		}
	}
	boot := slices.Clone(nm.boot)
	ms.mu.Unlock()
	ms.protect(actual)
	ms.h.Peerstore().ClearAddrs(old)
	ms.h.Peerstore().RemovePeer(old)
	if m.placeholder {
		ms.log.Debug("node: learnt the peer id at a bootstrap address", "addrs", boot, "peer", actual)
	} else {
		ms.log.Info("node: another node answers at a bootstrap address (restarted under a new peer id?); following it",
			"addrs", boot, "old_peer", old, "peer", actual)
	}
	if dial {
		ms.dial(actual, true)
	}
	return true
}

// dialledSelf reports whether a dial failed because the address is this
// node's: libp2p refuses to dial its own listen addresses, and another of
// its addresses (the LAN one for a node listening on all interfaces)
// answers with its own id.
func (ms *members) dialledSelf(err error) bool {
	_, actual := dialFailure(err)
	return actual == ms.self || errors.Is(err, swarm.ErrDialToSelf)
}

// connectedAt returns a connected member that announced one of addrs as
// its listen address (it dialled us first), or "".
func (ms *members) connectedAt(addrs []ma.Multiaddr) peer.ID {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for q, m := range ms.peers {
		if !m.connected || m.placeholder {
			continue
		}
		for _, a := range addrs {
			if slices.ContainsFunc(m.addrs, a.Equal) {
				return q
			}
		}
	}
	return ""
}

// forgetSelf drops the placeholder member p whose addresses turned out to
// be this node's own (every node given one list of bootstrap addresses,
// its own among them), and keeps the gate from logging the aborted
// handshake of that dial as a stranger's: the connections pending from
// this host's addresses at this moment are not logged.
func (ms *members) forgetSelf(p peer.ID, addrs []ma.Multiaddr) {
	ms.mu.Lock()
	delete(ms.peers, p)
	ms.mu.Unlock()
	ms.h.Peerstore().ClearAddrs(p)
	ms.h.Peerstore().RemovePeer(p)
	if ms.gate != nil {
		// The aborted connection came from one of this host's addresses:
		// the one dialled, or another (the kernel picks the source).
		local, _ := ms.h.Network().InterfaceListenAddresses()
		for _, a := range slices.Concat(addrs, local) {
			ms.gate.quiet(a)
		}
	}
	ms.log.Debug("node: a bootstrap address is this node's own; ignoring it", "addrs", addrs)
}

// connectAddr is Node.Connect for an address without a peer id: it learns
// the id of the node at a, connects to it, and keeps it connected.
func (ms *members) connectAddr(ctx context.Context, a ma.Multiaddr) error {
	if len(dialable([]ma.Multiaddr{a}, true)) == 0 {
		return fmt.Errorf("%w: %q: not an address to dial", ErrConfig, a)
	}
	ph, err := ms.keepAddr(a, false)
	if err != nil {
		return err
	}
	if q := ms.connectedAt([]ma.Multiaddr{a}); q != "" && ms.learnID(ph, q, false) {
		return nil // connected already: no need to dial
	}
	err = ms.connect(ctx, peer.AddrInfo{ID: ph, Addrs: []ma.Multiaddr{a}}, false)
	what, actual := dialFailure(err)
	if ms.dialledSelf(err) {
		ms.forgetSelf(ph, []ma.Multiaddr{a})
		return fmt.Errorf("%w: %s is this node's own address", ErrConfig, a)
	}
	if actual == "" || !ms.learnID(ph, actual, false) {
		ms.dial(ph, false) // keep trying in the background
		return fmt.Errorf("node: connect %s: it %s: %w", a, what, err)
	}
	ai := peer.AddrInfo{ID: actual, Addrs: []ma.Multiaddr{a}}
	if err := ms.connect(ctx, ai, false); err != nil {
		ms.dial(actual, false)
		what, _ := dialFailure(err)
		return fmt.Errorf("node: connect %s (%s): it %s: %w", a, actual, what, err)
	}
	return nil
}
