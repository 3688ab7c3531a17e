package node

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsNotifee hands peers found on the LAN to the membership table. mDNS is
// an unauthenticated hint: a peer it reports is a candidate, kept apart from
// the members in a bounded table and dialled with slots of its own, until
// the private network key lets it connect (candidates.go). libp2p calls
// HandlePeerFound on a new goroutine for every peer of every advert, so it
// must not block: it only takes the table's lock.
type mdnsNotifee struct{ ms *members }

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) { n.ms.discovered(ai, fromMDNS) }

// startMDNS advertises this node and browses for others under the mesh's
// own service tag. Failure (no multicast interface) is logged, not fatal:
// bootstrap peers and explicit Connect still work.
func (n *Node) startMDNS() {
	svc := mdns.NewMdnsService(n.host, n.net.ServiceTag(), mdnsNotifee{n.members})
	if err := svc.Start(); err != nil {
		n.log.Warn("node: mDNS discovery unavailable", "err", err)
		_ = svc.Close()
		return
	}
	n.mdns = svc
}
