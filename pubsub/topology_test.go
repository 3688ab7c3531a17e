package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// In a fully connected mesh, once the announcements are in and the direct
// streams are open, every batch goes straight to each subscriber: nothing
// goes through GossipSub, nothing is relayed, nothing arrives twice.
func TestFullMeshSendsDirect(t *testing.T) {
	ps := newMesh(t, 4, Config{})
	cols := make([]*collector, 4)
	for i := 1; i < 4; i++ {
		cols[i] = newCollector()
		if _, err := ps[i].Subscribe("t", cols[i].handle); err != nil {
			t.Fatal(err)
		}
	}
	waitTopicPeers(t, ps[0], "t", 3)
	waitDirect(t, ps[0], "t", 3)
	before := make([]Stats, 4)
	for i, p := range ps {
		before[i] = p.Stats()
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
		for j, m := range cols[i].msgs {
			if m.Data[0] != byte(j) || m.From != ps[0].host.ID() {
				t.Fatalf("node %d message %d: %v from %s", i, j, m.Data, m.From)
			}
		}
	}
	pub, pub0 := ps[0].Stats().Topics["t"], before[0].Topics["t"]
	if b, d := pub.Batches-pub0.Batches, pub.DirectBatches-pub0.DirectBatches; b == 0 || d != b {
		t.Errorf("%d batches, %d of them direct", b, d)
	}
	time.Sleep(100 * time.Millisecond)
	for i := 1; i < 4; i++ {
		st := ps[i].Stats()
		if dup := st.InboundDuplicates - before[i].InboundDuplicates; dup != 0 {
			t.Errorf("node %d received %d duplicate batches", i, dup)
		}
		if c := cols[i].count(); c != 200 {
			t.Errorf("node %d got %d messages, want 200", i, c)
		}
	}
}

// waitDirect waits until p would send a batch on topic directly to n
// subscribed peers.
func waitDirect(t testing.TB, p *PubSub, topic string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if targets, ok := p.dir.route(p.cfg.TopicPrefix+topic, nil); ok && len(targets) == n {
			return
		}
		if time.Now().After(deadline) {
			targets, ok := p.dir.route(p.cfg.TopicPrefix+topic, nil)
			p.dir.mu.Lock()
			var states []string
			for q := range p.dir.subs[p.cfg.TopicPrefix+topic] {
				w := p.dir.out[q]
				states = append(states, fmt.Sprintf("%s:%v/%v", q.ShortString(), w != nil, w != nil && w.open))
			}
			p.dir.mu.Unlock()
			t.Fatalf("no direct streams to %d subscribers of %q (neighbourhood closed: %v; %d targets ok=%v; %v; resets %d; conns %d)", n, topic, p.topo.closed(), len(targets), ok, states, p.Stats().ConnectionResets, len(p.host.Network().Conns()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTopologyClosed(t *testing.T) {
	topo := newTopology("me")
	if !topo.closed() {
		t.Fatal("alone: nobody is further away")
	}
	topo.setConnected("a", true)
	topo.setConnected("b", true)
	if topo.closed() {
		t.Fatal("a and b have not announced")
	}
	topo.learn("a", []peer.ID{"me", "b"})
	topo.learn("b", []peer.ID{"me"})
	if !topo.closed() {
		t.Fatal("a, b and me are all we can reach")
	}
	topo.learn("b", []peer.ID{"me", "a", "c"})
	if topo.closed() {
		t.Fatal("c is reachable through b only")
	}
	topo.setConnected("c", true)
	if topo.closed() {
		t.Fatal("c has not announced")
	}
	topo.learn("c", []peer.ID{"b", "me"})
	if !topo.closed() {
		t.Fatal("connected to c as well")
	}
	topo.setConnected("c", false)
	topo.forget("c")
	if topo.closed() {
		t.Fatal("c left but b still reaches it")
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
	if d := hs[0].Stats().Topics["t"].DirectBatches; d != 0 {
		t.Fatalf("a sent %d batches directly although c needs b to relay them", d)
	}
}
