package node

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The mesh's shape: how many direct peers a node keeps.
//
// A node connects to every peer it finds while the mesh fits within its
// MaxPeers (direct peers, bootstrap peers included); so a mesh of up to
// MaxPeers+1 nodes is a full mesh, where pub/sub sends every message
// straight to each peer. MaxPeers is Config.MaxPeers if set; by default it
// follows the mesh's size as this node knows it (maxPeersLocked): everyone
// up to DefaultFullMesh nodes, DefaultMaxPeers in a larger mesh. Measured
// on 2 cores, one process per node, a full mesh of 20 formed in 1.4 s and
// one of 50 in 17–22 s, against 1.8–2.6 s with 8 peers each (idle CPU of
// the whole mesh 60–75 % against 15–19 % of a core); and 8 peers each
// formed a mesh of 50 faster and idled cheaper than 20 each (BENCHMARKS.md,
// Scale). Above that size the mesh is partial:
//
//   - a node dials candidates (mDNS, peer exchange) and redials lost
//     peers only while it has room: fewer connected than its dial target,
//     half of MaxPeers (dialTargetLocked); bootstrap peers and peers given
//     to Connect are always redialled;
//   - it accepts every inbound connection (a newcomer must find a way in),
//     and trims the connections above MaxPeers+trimSlack(MaxPeers)
//     (trim), sparing bootstrap peers, peers given to Connect,
//     connections younger than trimGrace, and the nodes that keep this
//     one for good (they say so: keep.go; or, older versions, they came
//     back at once after a trim: cameBack), so a node that every other
//     bootstraps to is connected to all of them, and its pub/sub sends
//     to them directly; a trimmed peer redials
//     someone if that leaves it short, so every node ends with its dial
//     target to MaxPeers+trimSlack peers and the graph, a random one,
//     stays connected;
//   - a node that falls short (a peer left, a link broke) dials its
//     candidates and its lost peers again, a few at a time (refill); a
//     lost peer that has been no member for a while (no node it reaches
//     announces it: across a partition) it redials whatever its room
//     (strandedLocked), so that a healed partition joins again;
//   - pub/sub relays what a peer does not get directly (GossipSub; every
//     node relays every topic some node subscribes to), the
//     store syncs with its direct peers only and gets the rest through the
//     relayed deltas, and Node.Peers reports the members beyond the direct
//     peers from the peer announcements (meshview.go).
const (
	// trimGrace spares a new connection from trimming while its pub/sub
	// hello, peer exchange and the store's first sync run. Not much
	// longer: with 5 s, the first nodes of a hundred started together
	// took newcomers for 5 s before they trimmed, and the mesh churned
	// until 5 s after the last start (formed 6.0–6.8 s after it; 3.2–5.3 s
	// with 2 s).
	trimGrace = 2 * time.Second
	// trimForget: refill does not redial a peer this node trimmed for
	// this long.
	trimForget = time.Minute
	// refillMax bounds the lost peers redialled at once by refill.
	refillMax = 4
	// minDialTarget: a node of a partial mesh dials up to half its
	// MaxPeers, but at least this many peers (dialTargetLocked): a random
	// graph of degree 3 and more stays connected.
	minDialTarget = 3
	// fullMeshAfter: with Config.MaxPeers unset, a node keeps
	// DefaultMaxPeers peers for this long after it starts, before a small
	// mesh's size lets it connect to everyone (maxPeersLocked). Its
	// connections are younger than trimGrace meanwhile: none is trimmed.
	fullMeshAfter = 2 * time.Second
)

// trimSlack returns how far above maxPeers connections may go before the
// connection manager trims them: inbound connections of newcomers, and
// redials of peers that were trimmed, come on top of the node's own.
func trimSlack(maxPeers int) int {
	return max(2, maxPeers/4)
}

// roomLocked reports whether the node may dial another peer that is not
// kept for good, with pending dials already under way; ms.mu held.
func (ms *members) roomLocked(pending int) bool {
	return ms.nconn+pending < ms.dialTargetLocked()
}

// dialTargetLocked returns how many peers the node dials up to (it
// accepts more: MaxPeers plus trimSlack). While the mesh fits within
// MaxPeers, MaxPeers (by default also in the node's first fullMeshAfter,
// unless it knows the mesh is large); in a partial mesh, half of
// MaxPeers, at least minDialTarget (MaxPeers if fewer): the rest of its
// room is for the nodes that dial it. A hundred nodes started together,
// each dialling up to 8 and taking every newcomer, made 16 links each on
// average, so 360 connections were trimmed in formation (the first to
// start took 38), each one a handshake, a store sync and announcements
// that every node verifies; the mesh formed 8–10 s after the last start.
// Dialling up to 4, 105–128 were trimmed and it formed in 5.4–6.2 s (and
// 3.2–5.3 s with trimGrace at 2 s; BENCHMARKS.md). ms.mu held.
func (ms *members) dialTargetLocked() int {
	most := ms.maxPeersLocked()
	if (ms.cfg.MaxPeers == 0 && !ms.bounded) || ms.meshSizeLocked() <= most+1 {
		return most
	}
	return max(min(most, minDialTarget), most/2)
}

// maxPeersLocked returns how many direct peers the node keeps now:
// Config.MaxPeers if set; else DefaultFullMesh-1 (everyone) while the node
// knows of at most DefaultFullMesh nodes, DefaultMaxPeers once it knows of
// more, until it knows of at most three quarters of DefaultFullMesh again;
// and DefaultMaxPeers for its first fullMeshAfter, while discovery has
// told it little: a node that started among a hundred connected to 23 of
// them before it knew, and trimming those back kept a mesh of 100 from
// forming for half a minute. ms.mu held.
func (ms *members) maxPeersLocked() int {
	if ms.cfg.MaxPeers > 0 {
		return ms.cfg.MaxPeers
	}
	switch n := ms.meshSizeLocked(); {
	case n > DefaultFullMesh:
		ms.bounded = true
	case n <= DefaultFullMesh*3/4:
		ms.bounded = false
	}
	if ms.bounded || time.Since(ms.started) < fullMeshAfter {
		return DefaultMaxPeers
	}
	return DefaultFullMesh - 1
}

// meshSizeLocked returns how many nodes this one knows of: itself, the
// peers it remembers (connected or lost, until ForgetAfter), the members
// beyond them and the candidates found; ms.mu held.
func (ms *members) meshSizeLocked() int {
	n := 1 + len(ms.peers)
	for p := range ms.shown {
		if _, ok := ms.peers[p]; !ok {
			n++
		}
	}
	for p := range ms.cands.byID {
		_, remembered := ms.peers[p]
		_, shown := ms.shown[p]
		if !remembered && !shown {
			n++
		}
	}
	return n
}

// refill redials lost peers, a few at a time (those with room first:
// pickLost), when the node has room and no candidate to dial, and the
// stranded ones (strandedLocked) whatever its room (run calls it after each
// sweep).
func (ms *members) refill() {
	ms.mu.Lock()
	if ms.ctx.Err() != nil {
		ms.mu.Unlock()
		return
	}
	now := time.Now()
	stranded := ms.strandedPicksLocked(now)
	if len(ms.cands.byID) > 0 {
		ms.mu.Unlock()
		ms.redialStranded(stranded)
		return
	}
	for p, m := range ms.peers {
		if !m.keep && !m.connected && !m.dialing && now.Sub(m.lostAt) > ms.cfg.ForgetAfter {
			delete(ms.peers, p) // what dialLoop does for the peers it redials
		}
	}
	pick := ms.refillPicksLocked(now)
	ms.mu.Unlock()
	ms.redialStranded(stranded)
	for _, p := range pick {
		ms.log.Debug("node: refill: redialling a lost peer", "peer", p)
		ms.dial(p, true)
	}
}

// refillPicksLocked returns the lost peers refill would redial now (with
// no candidate: refill's caller checks), at most as many as the node has
// room for; ms.mu held.
func (ms *members) refillPicksLocked(now time.Time) []peer.ID {
	var lost []lostPeer
	dialing := ms.candDialing
	for p, m := range ms.peers {
		switch {
		case m.dialing:
			dialing++
		case !m.keep && !m.connected && !m.placeholder && now.Sub(m.trimmedAt) > trimForget:
			d, ok := ms.degrees[p]
			lost = append(lost, lostPeer{p, !ok, d, rand.Float64()})
		}
	}
	most := ms.dialTargetLocked()
	return pickLost(lost, min(refillMax, most-ms.nconn-dialing), ms.fullDegreeLocked())
}

// strandedAfter: a lost peer that has been no member for this long
// (strandedLocked) is redialled whatever the node's room.
const strandedAfter = 10 * time.Second

// strandedLocked reports whether p, a lost peer (m), is no member now, and
// has been lost for strandedAfter: no node this one reaches announces it,
// so it is across a partition (or gone). It is redialled whatever this
// node's room or p's, as a bootstrap peer is: a partial mesh's nodes have
// their dial target of peers on each side of a partition that heals, and
// none would dial across (a partition of 10 in 100 had not healed 30 s
// after). A peer trimmed in formation is a member again within a second or
// two, through the others' announcements. ms.mu held.
func (ms *members) strandedLocked(p peer.ID, m *member, now time.Time) bool {
	if m.connected || m.placeholder || now.Sub(m.lostAt) < strandedAfter {
		return false
	}
	_, shown := ms.shown[p]
	return !shown
}

// redialStranded starts the dial loops of the stranded lost peers ps.
func (ms *members) redialStranded(ps []peer.ID) {
	for _, p := range ps {
		ms.log.Debug("node: refill: redialling a lost peer that is no member", "peer", p)
		ms.dial(p, true)
	}
}

// strandedPicksLocked returns the stranded lost peers no dial loop redials
// yet, at most refillMax of them; ms.mu held.
func (ms *members) strandedPicksLocked(now time.Time) []peer.ID {
	var out []peer.ID
	for p, m := range ms.peers {
		if !m.dialing && !m.keep && now.Sub(m.lostAt) <= ms.cfg.ForgetAfter && ms.strandedLocked(p, m, now) {
			out = append(out, p)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:min(len(out), refillMax)]
}

// fullLocked reports whether p announces fullDegreeLocked peers or more:
// p is not dialled then, as a candidate or as a lost member (a
// member's redial, refill, the candidate dialer), unless it is kept for
// good. A peer exchange that named such a member made its lost peer
// redial it, and a mesh of 50 kept trimming a connection every few
// seconds. ms.mu held.
func (ms *members) fullLocked(p peer.ID) bool {
	d, ok := ms.degrees[p]
	return ok && d >= ms.fullDegreeLocked()
}

// fullDegreeLocked returns the announced degree from which a member is
// not dialled (fullLocked). A node alone takes anyone (a newcomer must get
// in); one with fewer than half its MaxPeers, any that would not have to
// trim a peer to take it (the high-water mark); one with more, only those
// below MaxPeers, so that nobody grows past it and trims, and the node it
// trimmed dials someone else. ms.mu held.
func (ms *members) fullDegreeLocked() int {
	most := ms.maxPeersLocked()
	switch {
	case ms.nconn == 0:
		return math.MaxInt
	case ms.nconn < max(1, most/2):
		return most + trimSlack(most)
	}
	return most
}

// trim closes the connections above MaxPeers plus trimSlack (run calls it
// after each sweep), no more: each connection closed leaves a peer short,
// which dials someone else, and trimming back to MaxPeers (three for one
// too many) kept a mesh of 50 churning a minute after it formed. It spares peers kept for good,
// connections younger than trimGrace and the nodes that keep this one for
// good (keep.go, cameBack), and closes first those to peers
// that announce more than MaxPeers peers themselves: they will not dial
// anyone to make up for the lost link, while a peer with fewer would
// redial someone, maybe this node. (libp2p's connection manager cannot do this here:
// GossipSub protects its mesh peers from it, which at a small MaxPeers is
// every peer.)
func (ms *members) trim() {
	ms.mu.Lock()
	most := ms.maxPeersLocked()
	excess := ms.nconn - most - trimSlack(most)
	v := ms.mesh
	ms.mu.Unlock()
	if excess <= 0 || v == nil || ms.ctx.Err() != nil {
		return
	}
	links := v.Links()
	now := time.Now()
	type victim struct {
		p      peer.ID
		degree int
		order  float64
	}
	var vs []victim
	ms.mu.Lock()
	for p, m := range ms.peers {
		if m.connected && !m.keep && !m.keeps && now.Sub(m.connectedAt) >= trimGrace && !cameBack(m) {
			vs = append(vs, victim{p, len(links[p]), rand.Float64()})
		}
	}
	slices.SortFunc(vs, func(a, b victim) int {
		if c := cmp.Compare(b.degree, a.degree); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	vs = vs[:min(len(vs), excess)]
	for _, x := range vs {
		ms.peers[x.p].trimmedAt = now
	}
	ms.mu.Unlock()
	for _, x := range vs {
		ms.count.trimmed.Add(1)
		ms.log.Debug("node: closing a connection above MaxPeers", "peer", x.p, "its_peers", x.degree)
		_ = ms.h.Network().ClosePeer(x.p)
	}
}

// cameBack reports whether m's connection came within trimForget of this
// node trimming it: m keeps this node for good (it redials at once,
// whatever this node's degree) without saying so (a version before
// keep.go), or it was stranded. trim spares it while that connection
// lasts: trimming it again only repeats.
func cameBack(m *member) bool {
	return !m.trimmedAt.IsZero() && m.connectedAt.After(m.trimmedAt) && m.connectedAt.Sub(m.trimmedAt) < trimForget
}

// protect keeps the connection manager from trimming p's connections (a
// bootstrap peer, a peer given to Connect).
func (ms *members) protect(p peer.ID) {
	if cm := ms.h.ConnManager(); cm != nil {
		cm.Protect(p, "reflect-keep")
	}
}

// lostPeer is a lost peer refill may redial.
type lostPeer struct {
	p       peer.ID
	unknown bool // not reachable through announced links: maybe gone
	degree  int  // the peers it announces
	order   float64
}

// pickLost returns up to n of the lost peers for refill to redial, none
// that announces full peers or more (fullDegreeLocked). The reachable
// peers with the most room come first, at random among equals, then those
// no announcement reaches.
func pickLost(lost []lostPeer, n, full int) []peer.ID {
	if n <= 0 {
		return nil
	}
	lost = slices.DeleteFunc(lost, func(l lostPeer) bool { return l.degree >= full })
	slices.SortFunc(lost, func(a, b lostPeer) int {
		if a.unknown != b.unknown {
			return cmp.Compare(boolInt(a.unknown), boolInt(b.unknown))
		}
		if c := cmp.Compare(a.degree, b.degree); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	out := make([]peer.ID, 0, min(n, len(lost)))
	for _, l := range lost[:min(n, len(lost))] {
		out = append(out, l.p)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
