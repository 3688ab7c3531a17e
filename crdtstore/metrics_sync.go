package crdtstore

import (
	"slices"
	"strings"
	"time"
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
	// Lag is how far behind this store is with the peer's writes, in
	// time (the replica lag). When a write of the peer's store arrives and
	// is applied here, by a delta or in a sync reply (from any peer), its
	// lag is the local time then minus its write time (the writer's
	// hybrid-logical-clock time, as in Entry.Time), at least 0; Lag is
	// that of the newest write of the peer applied. While this store
	// holds deltas of the peer waiting for writes they need, or knows it
	// missed some of the peer's writes (a gap), Lag is instead the time
	// since the oldest such held or gap-revealing write was written: it
	// grows while the store is behind and drops once it has caught up.
	// Clock skew between the two hosts adds to it (a writer whose clock
	// runs behind looks late); a store that joins the mesh sees, once,
	// the age of the newest write of each peer its first sync brought.
	// Zero until a write of the peer has arrived.
	Lag time.Duration `json:"lag"`
	// LastWrite is when (local time) the newest write of the peer was
	// applied here; zero if none was.
	LastWrite time.Time `json:"last_write"`
	// LastSync is when the last sync exchange with the peer ended, in
	// either role, successful or not; zero if none has. LastSyncError is
	// its error ("" if it succeeded; a sync refused with "busy" says so),
	// LastSyncBytes the bytes it moved, both directions.
	LastSync      time.Time `json:"last_sync"`
	LastSyncError string    `json:"last_sync_error"`
	LastSyncBytes int       `json:"last_sync_bytes"`
	// SyncStarted is when the sync exchange with the peer running now
	// started (the latest, if one runs each way), SyncBytes the bytes it
	// has moved so far and SyncKeys the keys whose entries it has moved
	// (a key counts once per piece of the reply that carries it), both
	// directions; all zero when none runs.
	SyncStarted time.Time `json:"sync_started"`
	SyncBytes   int64     `json:"sync_bytes"`
	SyncKeys    int64     `json:"sync_keys"`
}

// PeerSyncStatus returns the store's sync state with each peer it knows,
// sorted by peer: joined ones, and ones it is syncing with (a peer that
// left is forgotten, its lag and last sync with it). See "Observing" in
// the package documentation.
func (s *Store) PeerSyncStatus() []PeerSyncStatus {
	s.mu.Lock()
	now := s.now()
	out := make([]PeerSyncStatus, 0, len(s.peers))
	for p, ps := range s.peers {
		st := PeerSyncStatus{
			Peer: s.peerText(p), Joined: ps.up, Synced: ps.synced, Syncing: ps.syncing,
			Lag: ps.lag.at(now), LastWrite: ps.lag.lastWrite,
			LastSync: ps.lastSync, LastSyncError: ps.lastSyncErr, LastSyncBytes: ps.lastSyncBytes,
		}
		if ps.run != nil {
			st.SyncStarted, st.SyncBytes, st.SyncKeys = ps.runStarted, ps.run.bytes(), ps.run.keys.Load()
		}
		out = append(out, st)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerSyncStatus) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}
