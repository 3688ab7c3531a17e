package pubsub

import (
	"context"
	"encoding/binary"
	"fmt"
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

// TestPeerThatNeverReads is attack 6 of issue 11: a member subscribes to a
// topic and then reads nothing. Before, every batch of the topic's
// publisher waited WindowWait for it, so the other subscribers got a
// trickle (21 messages/s, latency climbing to 13 s). Now the publisher
// waits for it once, the others get the topic at full speed, and after
// StallTimeout the member is disconnected and counted.
func TestPeerThatNeverReads(t *testing.T) {
	cfg := Config{WindowWait: time.Second, StallTimeout: 3 * time.Second}
	ps := newMesh(t, 2, cfg)
	a, b := ps[0], ps[1]
	c := newCollector()
	if _, err := b.Subscribe("t", c.handle); err != nil {
		t.Fatal(err)
	}

	// The stuck member: it takes a's GossipSub stream and never reads it,
	// and tells a it subscribes to "t".
	stuck, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release); stuck.Close() })
	stuck.SetStreamHandler(lp2pps.GossipSubID_v11, func(s network.Stream) {
		<-release
		_ = s.Reset()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stuck.Connect(ctx, peer.AddrInfo{ID: a.host.ID(), Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := stuck.NewStream(ctx, a.host.ID(), lp2pps.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	yes, topic := true, "t"
	hello, err := proto.Marshal(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: &yes, Topicid: &topic}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(hello))), hello...)); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, a, "t", 2)

	// 100 messages of 32 KiB, one at a time: far more than the stuck
	// member's connection and window hold.
	const n = 100
	msg := make([]byte, 32<<10)
	start := time.Now()
	for i := range n {
		copy(msg, fmt.Sprintf("%03d", i))
		if err := a.Publish(ctx, "t", msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if !c.wait(n, 10*time.Second) {
		t.Fatalf("b got %d of %d messages in 10 s while a member reads nothing", c.count(), n)
	}
	t.Logf("b got %d messages of 32 KiB in %v", n, time.Since(start).Round(time.Millisecond))
	c.mu.Lock()
	for i, m := range c.msgs {
		if string(m.Data[:3]) != fmt.Sprintf("%03d", i) {
			t.Fatalf("message %d is %q", i, m.Data[:3])
		}
	}
	c.mu.Unlock()

	testutil.Eventually(t, 10*time.Second, "a to disconnect the member that reads nothing", func() bool {
		return a.host.Network().Connectedness(stuck.ID()) != network.Connected
	})
	if st := a.Stats(); st.StalledPeers != 1 {
		t.Errorf("StalledPeers = %d, want 1", st.StalledPeers)
	}
	if b.host.Network().Connectedness(a.host.ID()) != network.Connected {
		t.Error("a disconnected b too")
	}
}
