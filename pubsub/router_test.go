package pubsub

import (
	"context"
	"testing"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// routerRig is a router whose GossipSub and direct streams only record
// what they are given.
type routerRig struct {
	r      *router
	rt     *route
	topo   *topology
	b      *directPeer // b's direct stream: open, with nobody writing it
	gossip []*batch
}

func newRouterRig(t *testing.T) *routerRig {
	rig := &routerRig{topo: newTopology("me")}
	f := newFlows(DefaultWindow)
	topics := newPeerTopics("")
	sub, wire := true, "t"
	topics.learn("b", []*pb.RPC_SubOpts{{Subscribe: &sub, Topicid: &wire}})
	d := &direct{batches: true, flows: f, count: &netCounters{}, out: map[peer.ID]*directPeer{}}
	rig.b = &directPeer{d: d, id: "b", open: true, wake: make(chan struct{}, 1)}
	d.out["b"] = rig.b
	rig.r = &router{ctx: context.Background(), author: []byte("me"), topo: rig.topo, topics: topics, dir: d, flows: f}
	rig.rt = &route{wire: wire, gossip: func(_ context.Context, data []byte) error {
		b, err := decodeBatch(data, 100)
		if err != nil {
			t.Fatal(err)
		}
		rig.gossip = append(rig.gossip, b)
		return nil
	}}
	rig.topo.setConnected("b", true)
	rig.topo.setReady("b", true)
	return rig
}

// send sends batch seq and returns the way it took and its flag.
func (rig *routerRig) send(t *testing.T, seq uint64) (direct, switched bool) {
	t.Helper()
	var w batchWriter
	w.add([]byte("m"))
	res, err := rig.r.send(rig.rt, &w, seq, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b *batch
	if res.direct {
		q := rig.b.q[len(rig.b.q)-1]
		if q.topic != "t" {
			t.Fatalf("frame queued for topic %q", q.topic)
		}
		if b, err = decodeBatch(q.b[frameBatchOffset(q.b):], 100); err != nil {
			t.Fatal(err)
		}
	} else {
		b = rig.gossip[len(rig.gossip)-1]
	}
	if b.seq != seq {
		t.Fatalf("sent seq %d, want %d", b.seq, seq)
	}
	return res.direct, b.switched
}

// frameBatchOffset returns where the batch starts in a direct frame.
func frameBatchOffset(frame []byte) int {
	_, k := uvarint(frame)
	k++ // kind
	tl, k2 := uvarint(frame[k:])
	return k + k2 + int(tl)
}

// hold moves the time the neighbourhood closed closedHold back, as if
// that long had passed.
func (rig *routerRig) hold() {
	rig.topo.mu.Lock()
	rig.topo.closedFrom = rig.topo.closedFrom.Add(-closedHold)
	rig.topo.mu.Unlock()
}

// written empties b's queue as its writer would.
func (rig *routerRig) written() {
	rig.b.unqueued(rig.b.q)
	rig.b.q = nil
}

// The router takes direct streams exactly when the neighbourhood has been
// closed for closedHold, and flags the first batch after a change of way when its
// predecessor may arrive after it: always after GossipSub, after direct
// streams only while the predecessor is still queued.
func TestRouterWaysAndSwitchedFlag(t *testing.T) {
	rig := newRouterRig(t)
	steps := []struct {
		name             string
		before           func()
		direct, switched bool
	}{
		{"b has not announced: GossipSub", nil, false, false},
		{"b announced: GossipSub for closedHold", func() { rig.topo.learn("b", []peer.ID{"me"}, nil) }, false, false},
		{"closedHold later: direct, after a GossipSub batch", rig.hold, true, true},
		{"still direct", nil, true, false},
		{"c appears: GossipSub, direct batches still queued", func() { rig.topo.setConnected("c", true) }, false, true},
		{"still GossipSub", nil, false, false},
		{"c announced, not ready: GossipSub", func() { rig.topo.learn("c", []peer.ID{"me", "b"}, nil) }, false, false},
		{"c ready: closed again, GossipSub for closedHold", func() { rig.topo.setReady("c", true) }, false, false},
		{"closedHold later: direct again", rig.hold, true, true},
		{"d appears once the direct batches are written: no flag", func() { rig.written(); rig.topo.setConnected("d", true) }, false, false},
	}
	for i, s := range steps {
		if s.before != nil {
			s.before()
		}
		direct, switched := rig.send(t, uint64(100+i))
		if direct != s.direct || switched != s.switched {
			t.Fatalf("%s: direct %v switched %v, want %v %v", s.name, direct, switched, s.direct, s.switched)
		}
	}
}
