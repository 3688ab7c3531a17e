package node

import (
	"github.com/libp2p/go-libp2p/core/peer"
)

// startMDNS advertises this node and asks for others under the mesh's own
// service tag (mdns.go). A peer found on the LAN goes to the membership
// table: mDNS is an unauthenticated hint, so it is a candidate, kept apart
// from the members in a bounded table and dialled with slots of its own,
// until the private network key lets it connect (candidates.go). Failure
// (no multicast interface) is logged, not fatal: bootstrap peers and
// explicit Connect still work.
func (n *Node) startMDNS() {
	svc := newMDNS(n.host, n.net.ServiceTag(),
		func(ai peer.AddrInfo) { n.members.discovered(ai, fromMDNS) },
		mdnsMembers{n.members}, n.log)
	if err := svc.Start(); err != nil {
		n.log.Warn("node: mDNS discovery unavailable", "err", err)
		_ = svc.Close()
		return
	}
	n.mdns = svc
}

// mdnsMembers answers the mDNS service's questions about the mesh.
type mdnsMembers struct{ ms *members }

func (m mdnsMembers) alone() bool { return len(m.ms.h.Network().Peers()) == 0 }

// member reports whether p is a member OnPeer reports.
func (m mdnsMembers) member(p peer.ID) bool {
	m.ms.mu.Lock()
	defer m.ms.mu.Unlock()
	_, ok := m.ms.shown[p]
	return ok
}

func (m mdnsMembers) size() int {
	m.ms.mu.Lock()
	defer m.ms.mu.Unlock()
	return m.ms.meshSizeLocked()
}
