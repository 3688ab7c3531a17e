package pubsub

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// TestSubscriptionFloodIsBounded is attack 8 of issue 11: a peer sends
// subscriptions to 100,000 topics, 500 per RPC (the attack used 1,000,000:
// 45 → 876 MB kept afterwards). The node keeps at most maxTopicsPerPeer of
// them, in its mirror and in GossipSub's table, counts the rest, and
// honest traffic keeps flowing.
func TestSubscriptionFloodIsBounded(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	a, b := ps[0], ps[1]
	// The attacker speaks GossipSub only as far as it must: b opens its
	// stream to it, so b counts it as a pub/sub peer.
	attacker, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { attacker.Close() })
	attacker.SetStreamHandler(lp2pps.GossipSubID_v11, func(s network.Stream) { _, _ = io.Copy(io.Discard, s) })
	c := newCollector()
	if _, err := b.Subscribe("t", c.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, a, "t", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := attacker.Connect(ctx, peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "b to take the attacker as a pub/sub peer", func() bool {
		return len(b.gs.ListPeers("")) == 2
	})
	s, err := attacker.NewStream(ctx, b.host.ID(), lp2pps.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const total, perRPC = 100_000, 500
	yes := true
	for i := 0; i < total; i += perRPC {
		rpc := &pb.RPC{}
		for j := i; j < i+perRPC; j++ {
			name := fmt.Sprintf("flood/%06d", j)
			rpc.Subscriptions = append(rpc.Subscriptions, &pb.RPC_SubOpts{Subscribe: &yes, Topicid: &name})
		}
		data, err := proto.Marshal(rpc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(data))), data...)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 20*time.Second, "b to handle the flood", func() bool {
		return b.Stats().SubscriptionsRefused == total-maxTopicsPerPeer
	})
	if n := len(b.topics.wireTopics(nil)); n > maxTopicsPerPeer+10 {
		t.Errorf("b's mirror holds %d topics", n)
	}
	if peers := b.gs.ListPeers(fmt.Sprintf("flood/%06d", total-1)); len(peers) != 0 {
		t.Errorf("GossipSub keeps a refused subscription: %v", peers)
	}
	if peers := b.gs.ListPeers(fmt.Sprintf("flood/%06d", 0)); len(peers) != 1 {
		t.Errorf("GossipSub dropped an accepted subscription: %v", peers)
	}
	// Honest traffic still flows.
	for i := range 10 {
		if err := a.Publish(ctx, "t", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(10, 10*time.Second) {
		t.Fatalf("b got %d of 10 messages during the flood", c.count())
	}
}
