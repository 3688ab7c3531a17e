package pubsub

import (
	"sync"
	"testing"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
)

func inflightMsg(topic, data, sig string) *pb.Message {
	return &pb.Message{From: []byte("author"), Seqno: []byte{1}, Topic: &topic, Data: []byte(data), Signature: []byte(sig)}
}

func inspectTopics(t *testing.T, f *inflight, msgs ...*pb.Message) []string {
	t.Helper()
	rpc := &lp2pps.RPC{RPC: pb.RPC{Publish: msgs}}
	if err := f.inspect("", rpc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range rpc.Publish {
		out = append(out, string(m.Data))
	}
	return out
}

func TestInflightDropsCopiesWhileValidating(t *testing.T) {
	var wires sync.Map
	wires.Store("ours", struct{}{})
	dups := map[string]int{}
	f := newInflight(&wires, func(w string) { dups[w]++ })
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }

	// The first copy is taken, the next ones dropped and counted, even
	// within one RPC.
	if got := inspectTopics(t, f, inflightMsg("ours", "a", "s")); len(got) != 1 {
		t.Fatalf("first copy: %v", got)
	}
	if got := inspectTopics(t, f, inflightMsg("ours", "a", "s"), inflightMsg("ours", "b", "s"), inflightMsg("ours", "b", "s")); len(got) != 1 || got[0] != "b" {
		t.Fatalf("copies: %v", got)
	}
	if dups["ours"] != 2 {
		t.Fatalf("duplicates counted: %v", dups)
	}

	// A copy that differs (a forgery: other content or signature) never
	// shadows the real one, nor the real one it.
	if got := inspectTopics(t, f, inflightMsg("ours", "a", "forged"), inflightMsg("ours", "a-forged", "s")); len(got) != 2 {
		t.Fatalf("different copies: %v", got)
	}

	// Topics we do not validate are left to GossipSub.
	if got := inspectTopics(t, f, inflightMsg("theirs", "a", "s"), inflightMsg("theirs", "a", "s")); len(got) != 2 {
		t.Fatalf("foreign topic: %v", got)
	}

	// A copy turned away before validation lets the next one in.
	f.forget(inflightMsg("ours", "a", "s"))
	if got := inspectTopics(t, f, inflightMsg("ours", "a", "s")); len(got) != 1 {
		t.Fatalf("after forget: %v", got)
	}

	// Entries expire: by then GossipSub's seen cache has the message (or
	// the copy is taken again).
	now = now.Add(inflightTTL - time.Millisecond)
	if got := inspectTopics(t, f, inflightMsg("ours", "b", "s")); len(got) != 0 {
		t.Fatalf("before the TTL: %v", got)
	}
	now = now.Add(time.Millisecond)
	if got := inspectTopics(t, f, inflightMsg("ours", "b", "s")); len(got) != 1 {
		t.Fatalf("after the TTL: %v", got)
	}
	f.mu.Lock()
	entries, order := len(f.at), len(f.order)-f.head
	f.mu.Unlock()
	// Everything taken at the start expired; "b" was taken again.
	if entries != 1 || order != 1 {
		t.Fatalf("entries %d, order %d", entries, order)
	}
}
