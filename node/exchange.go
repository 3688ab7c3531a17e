package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/reflectmesh/reflect/internal/coarse"
)

// Peer exchange.
//
// mDNS finds the nodes of one LAN segment, and only those whose packets
// arrive; a bootstrap peer is one node. So members tell each other whom
// they know: a node asks a member, on a stream of the private network
// (<mesh>/peers/1.0.0), for the members it has joined, each with the
// listen addresses the member announced to it, and takes every one it does
// not know as a candidate (candidates.go: dialled with slots of its own,
// forgotten after failed dials). One discovered or bootstrap peer is then
// enough to find the whole mesh, on a LAN or across networks.
//
// A node asks each peer that joins while it has fewer than exchangeEager
// peers (it is new, or was alone), and one random peer every exchangeEvery
// (two groups that met through one link learn each other). An answer lists
// at most maxExchanged members; a node answers each peer at most once per
// exchangeMinGap.
const (
	exchangeProtocol = "/peers/1.0.0"
	exchangeEager    = 3
	exchangeEvery    = 30 * time.Second
	exchangeTimeout  = 5 * time.Second
	exchangeMinGap   = time.Second
	maxExchanged     = 1024
	maxExchangeBytes = 1 << 20
)

// ErrExchange is wrapped by the errors of decodeExchange: a peer exchange
// answer that does not parse.
var ErrExchange = errors.New("node: malformed peer exchange answer")

// exchangeProtocolID returns the protocol of a mesh's peer exchange.
func exchangeProtocolID(prefix string) protocol.ID {
	return protocol.ID(prefix + exchangeProtocol)
}

// encodeExchange encodes an answer: a count, then each member's id and
// addresses, all length-prefixed.
func encodeExchange(ais []peer.AddrInfo) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ais)))
	for _, ai := range ais {
		b = binary.AppendUvarint(b, uint64(len(ai.ID)))
		b = append(b, ai.ID...)
		b = binary.AppendUvarint(b, uint64(len(ai.Addrs)))
		for _, a := range ai.Addrs {
			b = binary.AppendUvarint(b, uint64(len(a.Bytes())))
			b = append(b, a.Bytes()...)
		}
	}
	return b
}

// decodeExchange decodes an answer, trusting no count beyond the bytes
// present. An address that does not parse is left out; anything else
// malformed fails the answer with ErrExchange.
func decodeExchange(b []byte) ([]peer.AddrInfo, error) {
	next := func(what string) ([]byte, error) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: %s", ErrExchange, what)
		}
		v := b[k : k+int(l)]
		b = b[k+int(l):]
		return v, nil
	}
	count := func(limit uint64, what string) (int, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > limit || n > uint64(len(b)) {
			return 0, fmt.Errorf("%w: %s count", ErrExchange, what)
		}
		b = b[k:]
		return int(n), nil
	}
	n, err := count(maxExchanged, "member")
	if err != nil {
		return nil, err
	}
	out := make([]peer.AddrInfo, 0, n)
	for range n {
		raw, err := next("peer id")
		if err != nil {
			return nil, err
		}
		id, err := peer.IDFromBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: peer id: %v", ErrExchange, err)
		}
		na, err := count(maxAdvertAddrs, "address")
		if err != nil {
			return nil, err
		}
		ai := peer.AddrInfo{ID: id}
		for range na {
			raw, err := next("address")
			if err != nil {
				return nil, err
			}
			if a, err := ma.NewMultiaddrBytes(raw); err == nil {
				ai.Addrs = append(ai.Addrs, a)
			}
		}
		out = append(out, ai)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrExchange, len(b))
	}
	return out, nil
}

// exchangeList returns the members we have joined, but except, with the
// listen addresses they announced (at most maxExchanged, in random order):
// only those with room, announcing fewer than MaxPeers peers, unless none
// has room. A newcomer dials the members it is told of before it knows how
// many peers each has; told of all, the hundred nodes of a mesh starting
// together dialled the first to start most (one took 38 connections) and
// trimmed 360 connections back, each a handshake, a store sync and
// announcements that every node verifies.
func (ms *members) exchangeList(except peer.ID) []peer.AddrInfo {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	most := ms.maxPeersLocked()
	var room, full []peer.AddrInfo
	for p, m := range ms.peers {
		if !m.joined || p == except || len(m.addrs) == 0 {
			continue
		}
		ai := peer.AddrInfo{ID: p, Addrs: m.addrs[:min(len(m.addrs), maxAdvertAddrs)]}
		if d, ok := ms.degrees[p]; ok && d >= most {
			full = append(full, ai)
		} else {
			room = append(room, ai)
		}
	}
	out := room
	if len(out) == 0 {
		out = full
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:min(len(out), maxExchanged)]
}

// serveExchange answers a member's question.
func (ms *members) serveExchange(s network.Stream) {
	defer s.Close()
	asker := s.Conn().RemotePeer()
	now := time.Now()
	ms.mu.Lock()
	last, asked := ms.exchanged[asker]
	if !asked || now.Sub(last) >= exchangeMinGap {
		if len(ms.exchanged) > 2*len(ms.peers)+64 { // bounded by the members
			for q, at := range ms.exchanged {
				if now.Sub(at) >= exchangeMinGap {
					delete(ms.exchanged, q)
				}
			}
		}
		ms.exchanged[asker] = now
	}
	ms.mu.Unlock()
	if asked && now.Sub(last) < exchangeMinGap {
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(now.Add(exchangeTimeout))
	if _, err := s.Write(encodeExchange(ms.exchangeList(asker))); err != nil {
		_ = s.Reset()
	}
}

// streamOver opens a stream of proto to p over a connection this node has
// (it never dials: peer exchange, keep streams), the opening and then the
// stream's use each bounded by timeout; what names it in the debug log.
func (ms *members) streamOver(p peer.ID, proto protocol.ID, what string, timeout time.Duration) (network.Stream, error) {
	ctx, cancel := context.WithTimeout(ms.ctx, timeout)
	defer cancel() // the context bounds the opening only
	s, err := ms.h.NewStream(network.WithNoDial(ctx, what), p, proto)
	if err != nil {
		ms.log.Debug("node: stream not opened", "stream", what, "peer", p, "err", err)
		return nil, err
	}
	_ = s.SetDeadline(time.Now().Add(timeout))
	return s, nil
}

// exchangeWith asks p for its members and takes those we do not know.
func (ms *members) exchangeWith(p peer.ID) {
	s, err := ms.streamOver(p, ms.exchangeProto, "peer exchange", exchangeTimeout)
	if err != nil {
		return
	}
	defer s.Close()
	_ = s.CloseWrite()
	b, err := io.ReadAll(io.LimitReader(s, maxExchangeBytes+1))
	if err == nil && len(b) > maxExchangeBytes {
		err = fmt.Errorf("%w: over %d bytes", ErrExchange, maxExchangeBytes)
	}
	var ais []peer.AddrInfo
	if err == nil {
		ais, err = decodeExchange(b)
	}
	if err != nil {
		_ = s.Reset()
		ms.log.Debug("node: peer exchange failed", "peer", p, "err", err)
		return
	}
	ms.count.exchanges.Add(1)
	for _, ai := range ais {
		if ms.discovered(ai, fromExchange) {
			ms.count.exchanged.Add(1)
		}
	}
}

// joinedForExchange is called when p joins: while we have few peers, ask
// it whom it knows. ms.mu held.
func (ms *members) joinedForExchange(p peer.ID) {
	if ms.exchangeProto == "" {
		return
	}
	joined := 0
	for _, m := range ms.peers {
		if m.joined {
			joined++
		}
	}
	if joined <= exchangeEager && ms.ctx.Err() == nil {
		ms.goOwned(func() { ms.exchangeWith(p) })
	}
}

// exchangeLoop asks one random joined direct peer every exchangeEvery.
// Not any member: on a partial mesh most are far, and asking one opened a
// connection to it, above the node's high-water mark, so it trimmed
// another (a mesh of 50 trimmed a connection every few seconds).
func (ms *members) exchangeLoop() {
	t := time.NewTimer(coarse.Delay(jitter(exchangeEvery)))
	defer t.Stop()
	for {
		select {
		case <-ms.ctx.Done():
			return
		case <-t.C:
		}
		if ps, _ := ms.joinedNeighbours(); len(ps) > 0 {
			ms.exchangeWith(ps[rand.IntN(len(ps))])
		}
		t.Reset(coarse.Delay(jitter(exchangeEvery)))
	}
}
