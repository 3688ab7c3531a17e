package statuspage

import (
	"slices"
	"strings"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// Status is what /status serves and the page draws: JSON names are the
// fields' in snake_case.
type Status struct {
	Self Self      `json:"self"`
	Time time.Time `json:"time"`
	// Peers are the member peers (node.PeerStatus) with the store's sync
	// state with each.
	Peers []Peer `json:"peers"`
	// Links are the mesh's links as far as this node knows them: for this
	// node and every node whose announcement it holds, the peers that node
	// sends to (pubsub.PubSub.Links).
	Links map[string][]string `json:"links"`
	// Topics are the joined topics and wildcard patterns, sorted by name.
	Topics []Topic `json:"topics"`
	// Node and PubSub are the node's counters (PubSub without its Topics,
	// which are in Topics).
	Node   node.Stats   `json:"node"`
	PubSub pubsub.Stats `json:"pubsub"`
	// Store is the store's, absent without a store.
	Store *Store `json:"store,omitempty"`
	// Events are the recent events, oldest first.
	Events []Event `json:"events"`
}

// Self describes the node serving the page.
type Self struct {
	ID      string    `json:"id"`
	Addrs   []string  `json:"addrs"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// Peer is one member peer.
type Peer struct {
	node.PeerStatus
	// Store is the store's sync state with the peer, absent without a
	// store or before the store knows the peer.
	Store *crdtstore.PeerSyncStatus `json:"store,omitempty"`
}

// Topic is one topic's counters and rates.
type Topic struct {
	Name  string            `json:"name"`
	Stats pubsub.TopicStats `json:"stats"`
	Rate  Rate              `json:"rate"`
}

// Store is the store's part of the status.
type Store struct {
	Name  string                     `json:"name"`
	Stats crdtstore.Stats            `json:"stats"`
	Peers []crdtstore.PeerSyncStatus `json:"peers"`
}

// Status returns the page's data now: peers and links read at once,
// counters and rates from the last sample (at most a second old).
func (p *Page) Status() Status {
	n := p.cfg.Node
	st := Status{
		Self: Self{
			ID:      n.ID().String(),
			Addrs:   []string{},
			Version: p.cfg.Version,
			Started: p.started,
		},
		Time:  time.Now(),
		Links: p.links(),
	}
	for _, a := range n.Addrs() {
		st.Self.Addrs = append(st.Self.Addrs, a.String())
	}
	p.mu.Lock()
	last := p.last
	st.Events = slices.Clone(p.events)
	p.mu.Unlock()
	if st.Events == nil {
		st.Events = []Event{}
	}

	sync := make(map[string]*crdtstore.PeerSyncStatus, len(last.storePeers))
	for i := range last.storePeers {
		sync[last.storePeers[i].Peer] = &last.storePeers[i]
	}
	st.Peers = []Peer{}
	for _, ps := range n.PeerStatus() {
		st.Peers = append(st.Peers, Peer{PeerStatus: ps, Store: sync[ps.ID.String()]})
	}

	st.Node = last.node
	st.PubSub = last.pubsub
	st.PubSub.Topics = nil
	st.Topics = []Topic{}
	for name, ts := range last.pubsub.Topics {
		st.Topics = append(st.Topics, Topic{Name: name, Stats: ts, Rate: last.rates[name]})
	}
	slices.SortFunc(st.Topics, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })
	if p.cfg.Store != nil {
		st.Store = &Store{Name: p.cfg.StoreName, Stats: last.store, Peers: last.storePeers}
		if st.Store.Peers == nil {
			st.Store.Peers = []crdtstore.PeerSyncStatus{}
		}
	}
	return st
}

// links reads the mesh's links (pubsub.PubSub.Links), as text ids.
func (p *Page) links() map[string][]string {
	out := map[string][]string{}
	for from, tos := range p.cfg.Node.PubSub().Links() {
		l := make([]string, len(tos))
		for i, to := range tos {
			l[i] = to.String()
		}
		out[from.String()] = l
	}
	return out
}
