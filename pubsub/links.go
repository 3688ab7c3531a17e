package pubsub

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Links returns the mesh's links as this node knows them, for a status
// page's graph: for this node and each node whose announcement it holds
// (see Topology-aware forwarding in topology.go: every node announces the
// peers its pub/sub sends to), the peers that node sends to, sorted. A link
// a→b is in the graph when a announced b; on a healthy mesh b announces a
// too.
//
// Only nodes this node can reach count: its connected peers and the nodes
// reachable through announced links, so a node that closed far away drops
// out once its neighbours announce it gone. Nodes announce whenever whom
// they send to changes (after about 20 ms, and again 1.5 s later) and
// every 15 s on average in case one was lost (15 s per 20 nodes in a
// larger mesh, at most 75 s); so a link appears or disappears within a few
// seconds, and when an announcement was lost, within about one refresh
// period (every node catches up with a random peer once a period: see
// doc.go). A node connected a moment ago, whose announcement has not
// arrived, is named only as the target of links (and has no key) until it
// does.
//
// The map and its slices are the caller's. Its size is bounded by the
// mesh: one key per reachable node, at most 4096 peers each (an
// announcement's limit).
func (p *PubSub) Links() map[peer.ID][]peer.ID {
	return p.topo.links()
}

// links implements PubSub.Links.
func (t *topology) links() map[peer.ID][]peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[peer.ID][]peer.ID, len(t.theirs)+1)
	out[t.self] = sortedPeers(t.ready)
	hops := t.hopsLocked()
	for q, sends := range t.theirs {
		_, reachable := hops[q]
		_, neighbour := t.mine[q]
		if q == t.self || (!reachable && !neighbour) {
			continue
		}
		out[q] = sortedPeers(sends)
	}
	return out
}

// sortedPeers returns the peers of set, sorted (empty, not nil, for none).
func sortedPeers[V any](set map[peer.ID]V) []peer.ID {
	out := make([]peer.ID, 0, len(set))
	for q := range set {
		out = append(out, q)
	}
	slices.Sort(out)
	return out
}

// Announced returns the nodes that the nodes this node reaches say they
// send to (their announcements, see Links), this node excepted, each named
// by a node other than itself and other than this node: on a partial mesh,
// the members beyond the neighbours, and in a full mesh every peer that
// another peer is connected to. Each comes with the time since which a
// path of announced links to it has stood, at the latest: this node's own
// links from the start, the others' from when they became ready, as
// their announcers tell (see Link ages in linkage.go; a link announced
// without an age is taken to be 1.5 s older than its announcement). A
// node's GossipSub passes messages on to a new peer about a second after
// that: package node counts a member from then on.
//
// It also returns a channel closed at the next change of what this node
// knows of the mesh (a change of its peers or of an announcement; maybe
// no change of the set). Package node builds its membership from it
// (Node.Peers). The map is the caller's.
func (p *PubSub) Announced() (map[peer.ID]time.Time, <-chan struct{}) {
	return p.topo.announcedByOthers()
}

// announcedByOthers implements PubSub.Announced.
func (t *topology) announcedByOthers() (map[peer.ID]time.Time, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[peer.ID]time.Time{}
	hops := t.hopsLocked()
	var reach map[peer.ID]time.Time
	for u, sends := range t.theirs {
		_, reachable := hops[u]
		if u == t.self || !reachable {
			continue
		}
		if reach == nil {
			reach = t.reachSinceLocked()
		}
		for q := range sends {
			if q == u || q == t.self {
				continue
			}
			s := t.since[u][q]
			if s.Before(reach[u]) {
				s = reach[u]
			}
			if o, ok := out[q]; !ok || s.Before(o) {
				out[q] = s
			}
		}
	}
	return out, t.updated
}
