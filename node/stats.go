package node

import "sync/atomic"

// Stats is a snapshot of this node's membership, and of what strangers and
// discovery did to it: the bounds of the package documentation's
// "Strangers" section, counted. The JSON names are the fields' in
// snake_case.
type Stats struct {
	// Peers counts the members joined now (Node.Peers), Neighbours the
	// direct peers among them (Node.Neighbours).
	Peers      int `json:"peers"`
	Neighbours int `json:"neighbours"`
	// Joins and Leaves count PeerJoined and PeerLeft events (Node.OnPeer);
	// Reconnects counts the direct peers that joined again after they had
	// been connected before (a restart, a network failure).
	Joins      uint64 `json:"joins"`
	Leaves     uint64 `json:"leaves"`
	Reconnects uint64 `json:"reconnects"`
	// Members counts the peers this node remembers: connected, or lost
	// and being redialled (bootstrap peers, peers given to Connect, and
	// every peer that was connected, until Config.ForgetAfter).
	Members int `json:"members"`
	// Candidates counts the peers found by mDNS or peer exchange that have
	// never connected and are waiting for a dial (at most 256).
	Candidates int `json:"candidates"`
	// CandidatesAdded counts candidates taken into the table.
	CandidatesAdded uint64 `json:"candidates_added"`
	// CandidatesDropped counts adverts of new peers ignored because
	// the candidate table was full of candidates not yet tried.
	CandidatesDropped uint64 `json:"candidates_dropped"`
	// CandidatesEvicted counts candidates that had failed a dial and were
	// replaced by a newly advertised one when the table was full.
	CandidatesEvicted uint64 `json:"candidates_evicted"`
	// CandidatesForgotten counts candidates forgotten without ever
	// connecting: after their third failed dial, or a minute after their
	// advert (forged adverts, peers gone or with another key).
	CandidatesForgotten uint64 `json:"candidates_forgotten"`
	// CandidateDials and CandidateDialsFailed count dials of candidates
	// (at most 4 at a time, apart from the members' 16).
	CandidateDials       uint64 `json:"candidate_dials"`
	CandidateDialsFailed uint64 `json:"candidate_dials_failed"`
	// HandshakesPending counts inbound connections from the last
	// Config.HandshakeTimeout (plus a second) that have not passed the
	// handshakes (private network key and Noise), as the per-address cap
	// counts them.
	HandshakesPending int `json:"handshakes_pending"`
	// HandshakesRefused counts inbound connections closed at once because
	// their address already had 8 connections pending (see
	// HandshakesPending).
	HandshakesRefused uint64 `json:"handshakes_refused"`
	// HandshakesFailed counts connections that failed the handshakes
	// (private network key and Noise): what another secret looks like,
	// and what the "different secret?" warnings name. Inbound, a
	// connection that had not passed them within Config.HandshakeTimeout,
	// counted when its entry expires (a second or two later); outbound, a
	// dial that failed or timed out in them (a dial of several addresses
	// counts once). A peer that answers with another peer id is not
	// counted, nor an inbound connection its dialler gave up on because
	// of that (a member dialled by address only), nor this node's dials
	// of itself.
	HandshakesFailed uint64 `json:"handshakes_failed"`
	// PeerExchanges counts the answers of other members to this node's
	// peer exchange questions, and PeersExchanged the peers they told of
	// that were new to it (taken as candidates).
	PeerExchanges  uint64 `json:"peer_exchanges"`
	PeersExchanged uint64 `json:"peers_exchanged"`
	// Trimmed counts connections this node closed because it had more
	// than Config.MaxPeers (plus a quarter) direct peers.
	Trimmed uint64 `json:"trimmed"`
	// SilentClosed counts connections this node closed because the peer's
	// kernel had not answered for KeepAlive plus WriteTimeout (3 s at
	// least) while data waited: what the kernel does with an idle link,
	// which it would have done only that long after the data was sent.
	SilentClosed uint64 `json:"silent_closed"`
}

// counters are the monotonic counts behind Stats, shared by the gate and
// the membership table.
type counters struct {
	candidatesAdded, candidatesDropped, candidatesEvicted, candidatesForgotten atomic.Uint64
	candidateDials, candidateDialsFailed                                       atomic.Uint64
	handshakesRefused, handshakesFailed                                        atomic.Uint64
	joins, leaves, reconnects                                                  atomic.Uint64
	exchanges, exchanged                                                       atomic.Uint64
	trimmed, silentClosed                                                      atomic.Uint64
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	c := &n.count
	st := Stats{
		CandidatesAdded:      c.candidatesAdded.Load(),
		CandidatesDropped:    c.candidatesDropped.Load(),
		CandidatesEvicted:    c.candidatesEvicted.Load(),
		CandidatesForgotten:  c.candidatesForgotten.Load(),
		CandidateDials:       c.candidateDials.Load(),
		CandidateDialsFailed: c.candidateDialsFailed.Load(),
		HandshakesRefused:    c.handshakesRefused.Load(),
		HandshakesFailed:     c.handshakesFailed.Load(),
		HandshakesPending:    n.gate.pendingCount(),
		Joins:                c.joins.Load(),
		Leaves:               c.leaves.Load(),
		Reconnects:           c.reconnects.Load(),
		PeerExchanges:        c.exchanges.Load(),
		PeersExchanged:       c.exchanged.Load(),
		Trimmed:              c.trimmed.Load(),
		SilentClosed:         c.silentClosed.Load(),
	}
	st.Peers = len(n.Peers())
	st.Neighbours = len(n.Neighbours())
	st.Members, st.Candidates = n.members.sizes()
	return st
}
