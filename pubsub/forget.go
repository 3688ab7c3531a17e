package pubsub

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Forgetting nodes gone.
//
// A node keeps, of every node whose announcement it learnt, what that node
// said (whom it sends to, since when, its registry entries), the signed
// copy it hands over in catch-ups, and what relaying it took
// (knownRefresh). Only the nodes it reaches count (Links, Announced,
// routes), but nothing else ever dropped the others: a node that restarts
// comes back with a new peer id unless it keeps its identity
// (node.Config.IdentityFile), so in a long-lived mesh whose members
// restart, every node held every node it ever saw, and sent all of them
// in every catch-up's digest.
//
// So when it announces (announceLoop: a refresh, when nothing changes; at
// most once per forgetSweep) a node notes which of the nodes it knows it
// no longer reaches, and forgets those out of reach for forgetAfter. A
// node out of reach for less (a partition healed) is not forgotten; one
// forgotten that comes back is learnt again as a newcomer is: from its
// own announcements, and from catch-ups with the peers that reach it.
// Each topic's reorderer forgets it as a publisher too (order.go). And
// what a node reaches is not forgotten however long it has said nothing
// new: an unchanged refresh reaches only its author's neighbours
// (knownRefresh).

// forgetGone forgets, at now, every node this node has found out of reach
// at each call for forgetAfter: what it announced, the copy held for
// catch-ups, and what knownRefresh remembers of it. Our connected peers
// and the nodes reachable through announced links are in reach. It
// returns the nodes it forgot.
func (t *topology) forgetGone(now time.Time) []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	hops := t.hopsLocked()
	known := make(map[peer.ID]struct{}, len(t.theirs)+len(t.held))
	for q := range t.theirs {
		known[q] = struct{}{}
	}
	for q := range t.held {
		known[q] = struct{}{}
	}
	for q := range t.seen {
		known[q] = struct{}{}
	}
	for q := range t.regs {
		known[q] = struct{}{}
	}
	var forgot []peer.ID
	for q := range known {
		_, reached := hops[q]
		_, connected := t.mine[q]
		if q == t.self || reached || connected {
			delete(t.gone, q)
			continue
		}
		since, ok := t.gone[q]
		if !ok {
			t.gone[q] = now
			continue
		}
		if now.Sub(since) < forgetAfter {
			continue
		}
		delete(t.theirs, q)
		delete(t.since, q)
		delete(t.regs, q)
		delete(t.covered, q)
		delete(t.seen, q)
		delete(t.given, q)
		delete(t.relayed, q)
		delete(t.held, q)
		delete(t.gone, q)
		forgot = append(forgot, q)
	}
	if len(forgot) > 0 {
		t.invalidateLocked()
	}
	return forgot
}

// forgetGone forgets the nodes out of reach for forgetAfter
// (topology.forgetGone), and what every topic's reorderer keeps of them
// as publishers.
func (p *PubSub) forgetGone(now time.Time) {
	gone := p.topo.forgetGone(now)
	if len(gone) == 0 {
		return
	}
	ids := make([]string, len(gone))
	for i, q := range gone {
		ids[i] = string(q)
	}
	p.mu.Lock()
	topics := make([]*topic, 0, len(p.joined))
	for _, t := range p.joined {
		topics = append(topics, t)
	}
	p.mu.Unlock()
	for _, t := range topics {
		t.order.forget(ids)
	}
	p.log.Debug("pubsub: forgot nodes out of reach", "nodes", len(gone), "after", forgetAfter)
}
