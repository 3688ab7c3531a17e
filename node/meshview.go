package node

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Members beyond the neighbours.
//
// A node is connected to every peer it finds while the mesh is small; on a
// partial mesh (bootstrap peers, a firewall, Config.MaxPeers) some members
// are reached only through others. Node.Peers, WaitPeers and OnPeer report
// members, not only connections: a peer is a member while it is a joined
// direct peer (connected and ready, members.go), or while a node this node
// reaches announces that it sends to the peer (pub/sub's peer
// announcements, pubsub.PubSub.Announced). So a member far away joins
// about a second after its neighbours connect to it, and leaves once they
// announce it gone (20 ms after they lose it); and a peer whose direct
// connection to this node broke, but that is still connected to others,
// stays a member: no PeerLeft, no PeerJoined again. Node.Neighbours and
// OnNeighbour report the direct peers (the store syncs with those).

// meshView is what pub/sub knows of the mesh beyond this node's peers
// (*pubsub.PubSub).
type meshView interface {
	Announced() (map[peer.ID]struct{}, <-chan struct{})
	Links() map[peer.ID][]peer.ID
}

// meshViewEvery bounds how often the members beyond the neighbours are
// recomputed: a forming mesh changes many times a second.
const meshViewEvery = 50 * time.Millisecond

// followMesh keeps ms.far up to date from v until the node closes (an
// owned goroutine).
func (ms *members) followMesh(v meshView) {
	ms.mu.Lock()
	ms.mesh = v
	ms.mu.Unlock()
	limit := time.NewTimer(0)
	defer limit.Stop()
	for {
		far, changed := v.Announced()
		ms.setFar(far)
		ms.setDegrees(v.Links())
		select {
		case <-ms.ctx.Done():
			return
		case <-changed:
		}
		limit.Reset(meshViewEvery)
		select {
		case <-ms.ctx.Done():
			return
		case <-limit.C:
		}
	}
}

// setDegrees records how many peers each node of links announces: refill
// and the candidate dials leave out the nodes that would have to trim a
// peer to take one more (degree.go).
func (ms *members) setDegrees(links map[peer.ID][]peer.ID) {
	d := make(map[peer.ID]int, len(links))
	for p, ps := range links {
		d[p] = len(ps)
	}
	ms.mu.Lock()
	ms.degrees = d
	ms.mu.Unlock()
}

// setFar replaces the set of peers other nodes announce, and reports the
// members that joined or left with it.
func (ms *members) setFar(far map[peer.ID]struct{}) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.ctx.Err() != nil {
		return
	}
	old := ms.far
	ms.far = far
	if len(old) != len(far) {
		ms.kickSweep() // the mesh's size sets the degree (degree.go)
	}
	for _, p := range sortedSet(far) {
		if _, was := old[p]; !was {
			ms.showLocked(p)
		}
	}
	for _, p := range sortedSet(old) {
		if _, is := far[p]; !is {
			ms.showLocked(p)
		}
	}
}

// showLocked reports p joined or left (OnPeer) if its membership changed:
// it is a member while it is a joined direct peer or in ms.far; ms.mu held.
func (ms *members) showLocked(p peer.ID) {
	_, member := ms.far[p]
	if m := ms.peers[p]; m != nil && m.joined {
		member = true
	}
	if p == ms.self {
		member = false
	}
	if _, shown := ms.shown[p]; shown == member {
		return
	}
	e := PeerEvent{ID: p, State: PeerJoined}
	if member {
		ms.shown[p] = struct{}{}
		ms.count.joins.Add(1)
		ms.log.Debug("node: peer joined", "peer", p)
	} else {
		delete(ms.shown, p)
		e.State = PeerLeft
		ms.count.leaves.Add(1)
		ms.log.Debug("node: peer left", "peer", p)
	}
	close(ms.changed)
	ms.changed = make(chan struct{})
	for w := range ms.watchers {
		w.push(e)
	}
}

// sortedSet returns the peers of set, sorted (nil for none).
func sortedSet(set map[peer.ID]struct{}) []peer.ID {
	var out []peer.ID
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
