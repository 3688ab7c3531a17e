package pubsub

import (
	"fmt"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

var dbgMu sync.Mutex
var dbgReasons = map[string]int{}

func init() {
	dbgHook = func(t *topic, p *PubSub, author peer.ID, forward bool, via peer.ID) {
		if t.name != peersTopic {
			return
		}
		r := "closed"
		if forward {
			r = "open:" + whyOpen(p.topo)
		} else if !p.topo.allConnectedTo(author) {
			r = "uncovered"
		}
		if via != author {
			r += " (relayed copy)"
		}
		dbgMu.Lock()
		dbgReasons[r]++
		dbgMu.Unlock()
	}
}

func whyOpen(t *topology) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.mine {
		theirs, ok := t.theirs[p]
		if _, ready := t.ready[p]; !ready {
			return "peer not ready"
		}
		if !ok {
			return "no announcement"
		}
		for q := range theirs {
			if _, mine := t.mine[q]; !mine && q != t.self {
				return "lists a non-peer"
			}
		}
	}
	return "?"
}

func dbgDump(t *testing.T, label string) {
	dbgMu.Lock()
	defer dbgMu.Unlock()
	t.Logf("%s: %v", label, fmt.Sprint(dbgReasons))
	clear(dbgReasons)
}

func lateSum(t *testing.T, ps []*PubSub) {
	var late, skipped uint64
	for _, p := range ps {
		p.mu.Lock()
		tp := p.joined[peersTopic]
		p.mu.Unlock()
		tp.order.mu.Lock()
		late += tp.order.stats.late
		skipped += tp.order.stats.skipped
		tp.order.mu.Unlock()
	}
	t.Logf("late %d skipped %d", late, skipped)
}
