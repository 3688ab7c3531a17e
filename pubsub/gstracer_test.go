package pubsub

import (
	"testing"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

func dataRPC(topic string) *lp2pps.RPC {
	return &lp2pps.RPC{RPC: pb.RPC{Publish: []*pb.Message{{Data: []byte("x"), Topic: &topic}}}}
}

func newTestTracer(window int) (*gossipTracer, *flows, *peerTopics, *[]peer.ID) {
	f := newFlows(window)
	pt := newPeerTopics("")
	var lost []peer.ID
	g := newGossipTracer(f, newReadiness(func(peer.ID) {}, func(peer.ID) {}), pt, func(p peer.ID) { lost = append(lost, p) }, &netCounters{})
	return g, f, pt, &lost
}

// GossipSub may report an RPC written before it reports it queued; the
// flow must still come back to zero.
func TestTracerCompletionBeforeSend(t *testing.T) {
	g, f, _, lost := newTestTracer(2)
	a, b := dataRPC("t"), dataRPC("t")
	g.SendRPCCompleted(a, "p", 0)
	g.SendRPC(a, "p")
	if empty, _ := f.empty(); !empty {
		t.Fatal("queued after an early completion")
	}
	g.SendRPC(b, "p")
	g.SendRPC(b, "q") // the same RPC towards another peer
	if f.total != 2 {
		t.Fatalf("queued %d, want 2", f.total)
	}
	g.SendRPC(a, "p")
	if !f.wait("t", []peer.ID{"p"}, nil, time.Millisecond) {
		t.Fatal("p is at the window: wait should report waiting")
	}
	if f.wait("t", []peer.ID{"q"}, nil, time.Hour) {
		t.Fatal("q has room: wait should not wait")
	}
	g.SendRPCCompleted(b, "p", 0)
	g.SendRPCCompleted(a, "p", 0)
	g.SendRPCCompleted(b, "q", 0)
	if empty, _ := f.empty(); !empty {
		t.Fatalf("queued %d at the end", f.total)
	}
	g.SendRPC(a, "p")
	g.OnClosedOutboundStream("p") // its queue is gone
	if empty, _ := f.empty(); !empty || len(g.queued) != 0 {
		t.Fatalf("queued %d, %d RPCs pending after the stream closed", f.total, len(g.queued))
	}
	if len(*lost) != 1 || (*lost)[0] != "p" {
		t.Fatalf("lost streams reported: %v", *lost)
	}
}

// The window is per peer and topic: a full window for one topic does not
// hold up another topic to the same peer, nor the same topic to another
// peer; and a publisher waiting for a window wakes when it has room.
func TestFlowWindowPerPeerAndTopic(t *testing.T) {
	f := newFlows(2)
	f.add(flowKey{p: "slow", topic: "chat"}, 1)
	f.add(flowKey{p: "slow", topic: "chat", direct: true}, 1) // both ways count
	if !f.wait("chat", []peer.ID{"slow"}, nil, time.Millisecond) {
		t.Fatal("chat to slow is full")
	}
	if f.wait("store", []peer.ID{"slow"}, nil, time.Hour) {
		t.Fatal("store waited behind chat")
	}
	if f.wait("chat", []peer.ID{"fast"}, nil, time.Hour) {
		t.Fatal("chat to fast waited behind slow")
	}
	if !f.queued("chat", true) || f.queued("store", true) {
		t.Fatal("queued per topic and way")
	}
	done := make(chan bool)
	go func() { done <- f.wait("chat", []peer.ID{"fast", "slow"}, nil, time.Hour) }()
	f.add(flowKey{p: "slow", topic: "chat", direct: true}, -1) // before or while it waits
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting publisher was not woken")
	}
	f.reset("slow", false)
	if empty, _ := f.empty(); !empty {
		t.Fatalf("queued %d after the reset", f.total)
	}
}

// A peer whose window has stayed full for the wait's bound is not waited
// for again (it stopped reading: flow.go) until its window has room; then
// it is waited for as before. Both ways count together.
func TestFlowStalledPeerIsNotWaitedFor(t *testing.T) {
	f := newFlows(2)
	gk, dk := flowKey{p: "stuck", topic: "chat"}, flowKey{p: "stuck", topic: "chat", direct: true}
	f.add(gk, 1)
	f.add(dk, 1)
	d := 20 * time.Millisecond
	if !f.wait("chat", []peer.ID{"stuck"}, nil, d) {
		t.Fatal("the first wait for a full window should wait")
	}
	if f.wait("chat", []peer.ID{"stuck"}, nil, d) {
		t.Fatal("waited again for a peer full for longer than the bound")
	}
	if got := f.stalled(time.Now(), nil); len(got) != 1 || got[0] != "stuck" {
		t.Fatalf("stalled peers %v", got)
	}
	f.add(dk, -1) // it read one: room, no longer stalled
	if got := f.stalled(time.Now(), nil); len(got) != 0 {
		t.Fatalf("stalled peers after it read: %v", got)
	}
	f.add(gk, 1) // full again, just now
	if !f.wait("chat", []peer.ID{"stuck"}, nil, d) {
		t.Fatal("a peer full just now should be waited for")
	}
}

// GossipSub's drops of peer announcements count apart from the topics'
// batches: they are the membership's own, and announced again.
func TestTracerCountsAnnouncementDropsApart(t *testing.T) {
	g, _, _, _ := newTestTracer(2)
	g.announceWire = "rfl/x/" + peersTopic
	g.DropRPC(dataRPC("rfl/x/"+peersTopic), "p")
	g.DropRPC(dataRPC("rfl/x/"+peersTopic), "q")
	g.DropRPC(dataRPC("rfl/x/orders"), "p")
	g.DropRPC(&lp2pps.RPC{}, "p") // control only: no message lost
	if a, o := g.count.announcesDropped.Load(), g.count.outboundDropped.Load(); a != 2 || o != 1 {
		t.Fatalf("announcements dropped %d, outbound dropped %d; want 2, 1", a, o)
	}
}
