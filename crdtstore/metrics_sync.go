package crdtstore

import (
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerSyncStatus is the store's sync state with one peer at one moment.
// JSON names are the fields' in snake_case.
type PeerSyncStatus struct {
	// Peer is the peer's id: on a node, the text form of its libp2p peer
	// id (peer.ID's String); over another transport, the transport's id.
	Peer string `json:"peer"`
	// Joined reports that the transport has the peer up (on a node: the
	// peer joined).
	Joined bool `json:"joined"`
	// Synced reports that a sync with the peer completed since it
	// connected (or that it has no such store); Syncing that one runs now,
	// in either direction.
	Synced  bool `json:"synced"`
	Syncing bool `json:"syncing"`
}

// PeerSyncStatus returns the store's sync state with each peer it knows,
// sorted by peer: joined ones, and ones it is syncing with.
func (s *Store) PeerSyncStatus() []PeerSyncStatus {
	s.mu.Lock()
	out := make([]PeerSyncStatus, 0, len(s.peers))
	for p, ps := range s.peers {
		if s.node != nil {
			p = peer.ID(p).String()
		}
		out = append(out, PeerSyncStatus{Peer: p, Joined: ps.up, Synced: ps.synced, Syncing: ps.syncing})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerSyncStatus) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}
