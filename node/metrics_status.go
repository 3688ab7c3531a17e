package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// PeerStatus is what this node knows of one member peer at one moment:
// the per-peer view of a status page. JSON names are the fields' in
// snake_case.
type PeerStatus struct {
	// ID is the peer's id.
	ID peer.ID `json:"id"`
	// Addrs are the remote addresses of the connections to the peer if it
	// is connected, else the addresses the node redials it at.
	Addrs []string `json:"addrs"`
	// Connected reports a connection to the peer; ConnectedSince is when
	// its current connection began (zero if not connected).
	Connected      bool      `json:"connected"`
	ConnectedSince time.Time `json:"connected_since"`
	// Joined reports that the peer has joined (see Node.OnPeer): connected
	// and its pub/sub ready.
	Joined bool `json:"joined"`
	// Kept reports a peer redialled for good: a bootstrap peer, or one
	// given to Connect. Others are forgotten after Config.ForgetAfter.
	Kept bool `json:"kept"`
	// LostSince is when the peer was last seen disconnected, if it is not
	// connected now (zero otherwise, or if it never connected).
	LostSince time.Time `json:"lost_since"`
	// RTT is the moving average of the round-trip times measured to the
	// peer (libp2p's peerstore, fed by Ping), in nanoseconds in JSON; zero
	// if none was measured.
	RTT time.Duration `json:"rtt"`
}

// PeerStatus returns the status of every member peer (connected, or lost
// and being redialled), sorted by id. mDNS candidates that never
// connected are not members (see Stats.Candidates). It does not touch the
// network: RTT is what the last pings measured (see Ping).
func (n *Node) PeerStatus() []PeerStatus {
	ms := n.members
	ms.mu.Lock()
	out := make([]PeerStatus, 0, len(ms.peers))
	for p, m := range ms.peers {
		st := PeerStatus{ID: p, Connected: m.connected, Joined: m.joined, Kept: m.keep}
		if m.connected {
			st.ConnectedSince = m.connectedAt
		} else {
			if !m.connectedAt.IsZero() { // it was connected once
				st.LostSince = m.lostAt
			}
			for _, a := range m.dialAddrs() {
				st.Addrs = append(st.Addrs, a.String())
			}
		}
		out = append(out, st)
	}
	ms.mu.Unlock()
	ps := n.host.Peerstore()
	for i := range out {
		st := &out[i]
		if st.Connected {
			for _, c := range n.host.Network().ConnsToPeer(st.ID) {
				st.Addrs = append(st.Addrs, c.RemoteMultiaddr().String())
			}
		}
		st.RTT = ps.LatencyEWMA(st.ID)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// Ping measures one round trip to the connected peer p with libp2p's ping
// protocol and returns it; the measure also feeds PeerStatus's RTT. A
// status page calls it now and then for each peer.
func (n *Node) Ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	select {
	case res, ok := <-ping.Ping(ctx, n.host, p):
		if !ok {
			return 0, fmt.Errorf("node: ping %s: %w", p, ctx.Err())
		}
		if res.Error != nil {
			return 0, fmt.Errorf("node: ping %s: %w", p, res.Error)
		}
		return res.RTT, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("node: ping %s: %w", p, ctx.Err())
	}
}
