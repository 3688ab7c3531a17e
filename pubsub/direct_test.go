package pubsub

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestFrameRoundTrip(t *testing.T) {
	var w batchWriter
	w.add([]byte("one"))
	w.add(nil)
	frame, off := w.encodeFrame("pfx/t", []byte("author"), 7)
	n, k := binary.Uvarint(frame)
	if k <= 0 || int(n) != len(frame)-k {
		t.Fatalf("length %d of %d bytes", n, len(frame)-k)
	}
	if frame[k] != frameBatch {
		t.Fatalf("kind %d", frame[k])
	}
	k++
	tl, k2 := binary.Uvarint(frame[k:])
	if string(frame[k+k2:k+k2+int(tl)]) != "pfx/t" || off != k+k2+int(tl) {
		t.Fatalf("topic %q, batch at %d", frame[k+k2:k+k2+int(tl)], off)
	}
	b, err := decodeBatch(frame[off:], 10)
	if err != nil || string(b.author) != "author" || b.seq != 7 || len(b.msgs) != 2 || string(b.msgs[0]) != "one" {
		t.Fatalf("%+v %v", b, err)
	}
	if want := w.encode([]byte("author"), 7); string(frame[off:]) != string(want) {
		t.Fatal("the frame's batch differs from the GossipSub encoding")
	}
	after := encodeAfter("pfx/t", 1<<40)
	n, k = binary.Uvarint(after)
	if k <= 0 || int(n) != len(after)-k || after[k] != frameAfter {
		t.Fatalf("after frame %x", after)
	}
}

// eventually waits up to 10 s for cond.
func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A batch on a direct stream must come from the stream's peer; a bad frame
// closes the stream and is counted.
func TestDirectRejectsBadFrames(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	c := newCollector()
	if _, err := ps[1].Subscribe("t", c.handle); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)
	forged := func() []byte { // claims to be from node 1 itself
		var w batchWriter
		w.add([]byte("forged"))
		f, _ := w.encodeFrame("t", []byte(ps[1].host.ID()), 1)
		return f
	}
	for i, frame := range [][]byte{
		forged(),
		{6, frameBatch, 1, 't', 1, 0, 0},  // not a batch
		{4, 7, 1, 't', 0},                 // an unknown kind
		{4, frameAfter, 1, 't', 0x80},     // a broken sequence number
		{0x80, 0x80, 0x80, 0x80, 0x7f, 0}, // a frame far too long
	} {
		s, err := ps[0].host.NewStream(context.Background(), ps[1].host.ID(), DirectProtocol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(frame); err != nil {
			t.Fatal(err)
		}
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.Read(make([]byte, 1)); err == nil {
			t.Fatalf("frame %d: the stream stayed open", i)
		}
		_ = s.Reset()
		eventually(t, func() bool { return ps[1].Stats().Invalid == uint64(i+1) })
	}
	publishGood(t, ps[0], c, ps[1], 5)
}

// A direct stream is negotiated as soon as it opens (its hello frame), not
// with its first batch: libp2p resets a stream left unnegotiated for 10 s,
// which lost the first message published after a quiet start (found by the
// fault suite).
func TestDirectStreamNegotiatedWhenOpened(t *testing.T) {
	ps := newMesh(t, 2, Config{})
	if _, err := ps[1].Subscribe("t", func(Message) {}); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ps[0], "t", 1)
	waitDirect(t, ps[0], "t", 1)
	// The receiver runs its handler only once the protocol is negotiated.
	eventually(t, func() bool {
		ps[1].dir.mu.Lock()
		defer ps[1].dir.mu.Unlock()
		return len(ps[1].dir.in) == 1
	})
	if b := ps[0].Stats().Topics["t"].Batches; b != 0 {
		t.Fatalf("%d batches sent before the check", b)
	}
}

// When a publisher's batches change way, from GossipSub to direct streams,
// subscribers still get every message once and in order.
func TestDirectSwitchKeepsOrder(t *testing.T) {
	hosts := newHosts(t, 3) // fully connected; a–c is cut and restored below
	ps := make([]*PubSub, 3)
	for i, h := range hosts {
		p, err := New(h, Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		ps[i] = p
	}
	cAddrs := hosts[2].Addrs()
	hosts[0].ConnManager().Protect(hosts[1].ID(), "test")
	hosts[0].Peerstore().ClearAddrs(hosts[2].ID())
	hosts[2].Peerstore().ClearAddrs(hosts[0].ID())
	_ = hosts[0].Network().ClosePeer(hosts[2].ID())
	cols := []*collector{newCollector(), newCollector()}
	for i, c := range cols {
		if _, err := ps[i+1].Subscribe("t", c.handle); err != nil {
			t.Fatal(err)
		}
	}
	waitTopicPeers(t, ps[0], "t", 1)
	eventually(t, func() bool { return !ps[0].topo.closed() && ps[0].topo.allConnectedTo(ps[0].host.ID()) == false })
	time.Sleep(time.Second) // heartbeats build the mesh a–b–c
	const total = 400
	ctx := context.Background()
	for i := range total {
		if i == 100 {
			// a and c connect: a's neighbourhood closes, batches go direct.
			if err := hosts[0].Connect(ctx, peer.AddrInfo{ID: hosts[2].ID(), Addrs: cAddrs}); err != nil {
				t.Fatal(err)
			}
		}
		if err := ps[0].Publish(ctx, "t", binary.AppendUvarint(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(5 * time.Millisecond) // several batches, spread over the switch
		}
	}
	for i, c := range cols {
		if !c.wait(total, 10*time.Second) {
			t.Fatalf("node %d got %d of %d", i+1, c.count(), total)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for i, c := range cols {
		c.mu.Lock()
		if len(c.msgs) != total {
			t.Errorf("node %d got %d messages, want %d", i+1, len(c.msgs), total)
		}
		for j, m := range c.msgs {
			if v, _ := binary.Uvarint(m.Data); v != uint64(j) {
				t.Errorf("node %d: message %d is %d", i+1, j, v)
				break
			}
		}
		c.mu.Unlock()
	}
	st := ps[0].Stats().Topics["t"]
	if st.DirectBatches == 0 || st.DirectBatches == st.Batches {
		t.Errorf("%d of %d batches direct: the way did not change", st.DirectBatches, st.Batches)
	}
}
