package node

import (
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Kept peers.
//
// A node's bootstrap peers and the peers given to its Connect are kept for
// good: it redials one at once whenever its connection closes. The kept
// peer cannot tell such a node from any other that dialled it, so above its
// MaxPeers it trimmed them, and each came back within a second: a node
// that eleven others bootstrap to, with MaxPeers 3, closed 55 connections
// in 10 s, for good. So a node tells each kept peer that it keeps it, on a
// stream of the private network (<mesh>/keep/1.0.0) opened on each new
// connection to it (and on the one it has when Connect names a connected
// peer); the peer spares that connection from trimming
// (degree.go) until it closes. A node every other bootstraps to is then
// connected to all of them (and its pub/sub sends to them directly). A
// peer of an older version, which does not tell, is spared once it came
// back after a trim (cameBack).
const (
	keepProtocol = "/keep/1.0.0"
	keepVersion  = 1 // the one byte a keep stream carries
	keepTimeout  = 5 * time.Second
)

// keepProtocolID returns the protocol of a mesh's keep streams.
func keepProtocolID(prefix string) protocol.ID {
	return protocol.ID(prefix + keepProtocol)
}

// tellKeptLocked has tellKept run for p, connected and kept for good, on
// a goroutine of its own; ms.mu held.
func (ms *members) tellKeptLocked(p peer.ID) {
	if ms.keepProto != "" && ms.ctx.Err() == nil {
		ms.goOwned(func() { ms.tellKept(p) })
	}
}

// tellKept tells p, a peer this node keeps for good, that it does: one
// byte on a stream over the connection it has (it never dials).
func (ms *members) tellKept(p peer.ID) {
	s, err := ms.streamOver(p, ms.keepProto, "keep", keepTimeout)
	if err != nil {
		return
	}
	if _, err := s.Write([]byte{keepVersion}); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.CloseWrite()
	_, _ = io.Copy(io.Discard, io.LimitReader(s, 1)) // until the peer closes
	_ = s.Close()
}

// serveKeep records that the stream's peer keeps this node for good: trim
// spares its connection until it closes.
func (ms *members) serveKeep(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(keepTimeout))
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != keepVersion {
		_ = s.Reset()
		return
	}
	p := s.Conn().RemotePeer()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.peers[p]
	if m == nil {
		if ms.h.Network().Connectedness(p) != network.Connected {
			return
		}
		m = &member{} // the connection's event comes after
		ms.peers[p] = m
	}
	m.keeps = true
}
