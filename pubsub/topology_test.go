package pubsub

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestPeersCodec(t *testing.T) {
	ps := []peer.ID{"12D3KooWaaaa", "12D3KooWbbbb", "x"}
	got, err := decodePeers(encodePeers(ps))
	if err != nil || len(got) != 3 || got[0] != ps[0] || got[2] != "x" {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if got, err := decodePeers(encodePeers(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range [][]byte{nil, {5, 1, 'a'}, {1, 0}, {1, 2, 'a'}, {1, 1, 'a', 'b'}, {0x80, 0x80, 0x80, 0x80, 0x08}} {
		if _, err := decodePeers(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: got %v", bad, err)
		}
	}
}

func FuzzDecodePeers(f *testing.F) {
	f.Add(encodePeers([]peer.ID{"12D3KooWaaaa", "b"}))
	f.Add([]byte{0})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x08})
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := decodePeers(data)
		if err != nil {
			return
		}
		if again := encodePeers(ps); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs: %x vs %x", data, again)
		}
	})
}

func TestAllConnectedTo(t *testing.T) {
	topo := newTopology("me")
	if !topo.allConnectedTo("a") {
		t.Fatal("with no peers, nobody needs a relay")
	}
	topo.setConnected("a", true)
	topo.setConnected("b", true)
	if topo.allConnectedTo("a") {
		t.Fatal("b has not announced a connection to a")
	}
	topo.learn("b", []peer.ID{"a", "me"})
	if !topo.allConnectedTo("a") {
		t.Fatal("b announced a connection to a")
	}
	topo.setConnected("c", true)
	if topo.allConnectedTo("a") {
		t.Fatal("c joined and has not announced")
	}
	topo.learn("c", []peer.ID{"me"})
	if topo.allConnectedTo("a") {
		t.Fatal("c is not connected to a")
	}
	topo.setConnected("c", false)
	topo.forget("c")
	if !topo.allConnectedTo("a") {
		t.Fatal("c left")
	}
}

// In a fully connected mesh, once the announcements are in, receivers do
// not relay: every message arrives once per subscriber.
func TestFullMeshDoesNotRelay(t *testing.T) {
	ps := newMesh(t, 4, Config{})
	cols := make([]*collector, 4)
	for i := 1; i < 4; i++ {
		cols[i] = newCollector()
		if _, err := ps[i].Subscribe("t", cols[i].handle); err != nil {
			t.Fatal(err)
		}
	}
	waitTopicPeers(t, ps[0], "t", 3)
	// Wait for every node to know that every other node is connected to all.
	deadline := time.Now().Add(10 * time.Second)
	for {
		done := true
		for _, p := range ps {
			if !p.topo.allConnectedTo(ps[0].host.ID()) {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("announcements did not arrive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := make([]uint64, 4)
	for i, p := range ps {
		before[i] = p.Stats().InboundDuplicates
	}
	for i := range 200 {
		if err := ps[0].Publish(context.Background(), "t", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // many batches, not one
	}
	for i := 1; i < 4; i++ {
		if !cols[i].wait(200, 10*time.Second) {
			t.Fatalf("node %d got %d of 200", i, cols[i].count())
		}
	}
	time.Sleep(100 * time.Millisecond)
	for i := 1; i < 4; i++ {
		st := ps[i].Stats()
		if dup := st.InboundDuplicates - before[i]; dup != 0 {
			t.Errorf("node %d received %d duplicate batches", i, dup)
		}
		if st.Topics["t"].NotForwarded == 0 {
			t.Errorf("node %d relayed everything", i)
		}
	}
}

// In a line a–b–c, b relays a's messages to c.
func TestPartialMeshRelays(t *testing.T) {
	hs := make([]*PubSub, 3)
	hosts := newHosts(t, 3) // fully connected: cut a–c below
	for i, h := range hosts {
		p, err := New(h, Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		hs[i] = p
	}
	hosts[0].ConnManager().Protect(hosts[1].ID(), "test")
	// Keep a and c apart: close their connection and refuse redials by
	// dropping their addresses.
	hosts[0].Peerstore().ClearAddrs(hosts[2].ID())
	hosts[2].Peerstore().ClearAddrs(hosts[0].ID())
	_ = hosts[0].Network().ClosePeer(hosts[2].ID())
	c := newCollector()
	if _, err := hs[2].Subscribe("t", c.handle); err != nil {
		t.Fatal(err)
	}
	if _, err := hs[1].Subscribe("t", func(Message) {}); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, hs[0], "t", 1)
	waitTopicPeers(t, hs[1], "t", 1)
	time.Sleep(2 * time.Second) // heartbeats build the mesh; announcements settle
	for i := range 20 {
		if err := hs[0].Publish(context.Background(), "t", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wait(20, 10*time.Second) {
		t.Fatalf("c got %d of 20 messages through b", c.count())
	}
}
