package pubsub

import (
	"testing"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
)

func dataRPC() *lp2pps.RPC {
	return &lp2pps.RPC{RPC: pb.RPC{Publish: []*pb.Message{{Data: []byte("x")}}}}
}

// GossipSub may report an RPC written before it reports it queued; the
// flow must still come back to zero.
func TestTracerCompletionBeforeSend(t *testing.T) {
	tr := newTracer(2, nil)
	a, b := dataRPC(), dataRPC()
	tr.SendRPCCompleted(a, "p", 0)
	tr.SendRPC(a, "p")
	if n := tr.totalInflight(); n != 0 {
		t.Fatalf("inflight %d after an early completion", n)
	}
	tr.SendRPC(b, "p")
	tr.SendRPC(b, "q") // the same RPC towards another peer
	if n := tr.totalInflight(); n != 2 {
		t.Fatalf("inflight %d, want 2", n)
	}
	tr.SendRPC(a, "p")
	if !tr.wait(nil, 0) {
		t.Fatal("p is at the window: wait should report waiting")
	}
	tr.SendRPCCompleted(b, "p", 0)
	tr.SendRPCCompleted(a, "p", 0)
	tr.SendRPCCompleted(b, "q", 0)
	if n := tr.totalInflight(); n != 0 {
		t.Fatalf("inflight %d at the end", n)
	}
	tr.SendRPC(a, "p")
	tr.OnClosedOutboundStream("p") // its queue is gone
	if n := tr.totalInflight(); n != 0 || len(tr.queued) != 0 {
		t.Fatalf("inflight %d, %d queued after the stream closed", n, len(tr.queued))
	}
}
