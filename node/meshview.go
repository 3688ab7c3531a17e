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
// announcements, pubsub.PubSub.Announced), once the links that reach it
// have stood for farJoinAfter. So a member far away joins a little over a
// second after its neighbours connect to it (at once if they did long
// before), and leaves once they announce it gone (20 ms after they lose
// it); and a peer whose direct
// connection to this node broke, but that is still connected to others,
// stays a member: no PeerLeft, no PeerJoined again. Node.Neighbours and
// OnNeighbour report the direct peers (the store syncs with those).

// meshView is what pub/sub knows of the mesh beyond this node's peers
// (*pubsub.PubSub).
type meshView interface {
	Announced() (map[peer.ID]time.Time, <-chan struct{})
	Links() map[peer.ID][]peer.ID
}

// meshViewEvery bounds how often the members beyond the neighbours are
// recomputed: a forming mesh changes many times a second.
const meshViewEvery = 50 * time.Millisecond

// farJoinAfter: a member beyond the neighbours joins once the links that
// reach it have stood this long, a GossipSub heartbeat and a little more
// (as pub/sub's relayGraft for WaitSubscribers). A node announces a new
// peer within a quarter of a second, but relays the others' messages to
// it only once its heartbeat has grafted it into its GossipSub meshes: a
// broadcast made as soon as WaitPeers counted it reached the relay and
// not the member (a node that connected to one of two others, and
// counted the second through it, 1 run in 8 under -race). Announcements
// tell how long their young links have stood (pub/sub's link ages), so a
// member whose links are older counts as soon as it is announced.
const farJoinAfter = 1200 * time.Millisecond

// followMesh keeps ms.far up to date from v until the node closes (an
// owned goroutine).
func (ms *members) followMesh(v meshView) {
	ms.mu.Lock()
	ms.mesh = v
	ms.mu.Unlock()
	limit := time.NewTimer(0)
	defer limit.Stop()
	later := time.NewTimer(time.Hour)
	later.Stop()
	defer later.Stop()
	for {
		far, changed := v.Announced()
		if wait := ms.setFar(far, time.Now()); wait > 0 {
			later.Reset(wait)
		}
		ms.setDegrees(v.Links())
		select {
		case <-ms.ctx.Done():
			return
		case <-changed:
		case <-later.C: // a member reached for farJoinAfter joins
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

// setFar replaces the set of peers other nodes announce (each with the
// time since which a path to it has stood: pubsub.PubSub.Announced),
// reports the members that joined or left with it, and returns how long
// until the next of those reached for less than farJoinAfter joins (0:
// none).
func (ms *members) setFar(far map[peer.ID]time.Time, now time.Time) time.Duration {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.ctx.Err() != nil {
		return 0
	}
	old := ms.far
	ms.far = make(map[peer.ID]time.Time, len(far))
	for p, since := range far {
		if was, ok := old[p]; ok && was.Before(since) {
			since = was // reached all along, by another path now
		}
		ms.far[p] = since
	}
	if len(old) != len(far) {
		ms.kickSweep() // the mesh's size sets the degree (degree.go)
	}
	var wait time.Duration
	for _, p := range sortedSet(far) {
		ms.showLocked(p, now)
		if _, shown := ms.shown[p]; !shown {
			if left := ms.far[p].Add(farJoinAfter).Sub(now); left > 0 && (wait == 0 || left < wait) {
				wait = left
			}
		}
	}
	for _, p := range sortedSet(old) {
		if _, is := far[p]; !is {
			ms.showLocked(p, now)
		}
	}
	return wait
}

// showLocked reports p joined or left (OnPeer) if its membership changed:
// it is a member while it is a joined direct peer or in ms.far (reached
// for farJoinAfter, unless it is a member already); ms.mu held.
func (ms *members) showLocked(p peer.ID, now time.Time) {
	_, shown := ms.shown[p]
	since, member := ms.far[p]
	member = member && (shown || now.Sub(since) >= farJoinAfter)
	if m := ms.peers[p]; m != nil && m.joined {
		member = true
	}
	if p == ms.self {
		member = false
	}
	if shown == member {
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
func sortedSet[V any](set map[peer.ID]V) []peer.ID {
	var out []peer.ID
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
