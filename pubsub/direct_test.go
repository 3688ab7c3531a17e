package pubsub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/internal/testutil"
)

func TestFrameRoundTrip(t *testing.T) {
	var w batchWriter
	w.add([]byte("one"))
	w.add(nil)
	for _, flags := range []byte{0, flagSwitched} {
		frame, off := w.encodeFrame("pfx/t", []byte("author"), 7, flags)
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
		if err != nil || string(b.author) != "author" || b.seq != 7 || len(b.msgs) != 2 || string(b.msgs[0]) != "one" || b.switched != (flags != 0) {
			t.Fatalf("%+v %v", b, err)
		}
		if want := w.encode([]byte("author"), 7, flags); string(frame[off:]) != string(want) {
			t.Fatal("the frame's batch differs from the GossipSub encoding")
		}
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
		f, _ := w.encodeFrame("t", []byte(ps[1].host.ID()), 1, 0)
		return f
	}
	for i, frame := range [][]byte{
		forged(),
		{6, frameBatch, 1, 't', 1, 0, 0},  // not a batch
		{4, 7, 1, 't', 0},                 // an unknown kind
		{4, 1, 1, 't', 5},                 // the retired "after" kind
		{0x80, 0x80, 0x80, 0x80, 0x7f, 0}, // a frame far too long
	} {
		s, err := ps[0].host.NewStream(context.Background(), ps[1].host.ID(), directProtocol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(frame); err != nil {
			t.Fatal(err)
		}
		if err := s.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		var timeout interface{ Timeout() bool }
		if _, err := s.Read(make([]byte, 1)); err == nil || errors.As(err, &timeout) && timeout.Timeout() {
			t.Fatalf("frame %d: the stream stayed open (%v)", i, err)
		}
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("frame %d counted invalid", i), func() bool { return ps[1].Stats().Invalid == uint64(i+1) })
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
	testutil.Eventually(t, 10*time.Second, "the inbound direct stream", func() bool {
		ps[1].dir.mu.Lock()
		defer ps[1].dir.mu.Unlock()
		return len(ps[1].dir.in) == 1
	})
	if b := ps[0].Stats().Topics["t"].Batches; b != 0 {
		t.Fatalf("%d batches sent before the check", b)
	}
}

// probeBase numbers the probes of waitRelay: numbered messages below it
// are the tests' own.
const probeBase = 1 << 40

// numbered returns a handler that collects numbered messages in c and
// counts probes in probes.
func numbered(c *collector, probes *counter) func(Message) {
	return func(m Message) {
		if v, _ := binary.Uvarint(m.Data); v >= probeBase {
			probes.handle(m)
			return
		}
		c.handle(m)
	}
}

// waitRelay publishes probes from p on "t" until probes counts three in a
// row, each within 200 ms: a subscriber beyond a relay gets p's messages
// at once when GossipSub's heartbeat has put it in the relay's mesh for
// the topic. (Before that, a probe can still come, up to a second late,
// through GossipSub's lazy gossip; the messages that follow it do not.
// And until the relay has announced the subscriber, at most
// announceGrowMax after it became ready there, p may still take its
// neighbourhood for closed and send the next ones to the relay alone.)
func waitRelay(t *testing.T, p *PubSub, probes *counter) {
	t.Helper()
	waitRelayOn(t, p, "t", probes)
}

// waitRelayOn is waitRelay on the given topic.
func waitRelayOn(t *testing.T, p *PubSub, topic string, probes *counter) {
	t.Helper()
	inARow := 0
	for i := range 200 {
		before := probes.count()
		if err := p.Publish(context.Background(), topic, binary.AppendUvarint(nil, probeBase+uint64(i))); err != nil {
			t.Fatal(err)
		}
		if probes.wait(before+1, 200*time.Millisecond) {
			if inARow++; inARow == 3 {
				return
			}
		} else {
			inARow = 0
		}
	}
	t.Fatal("probes did not get through the relay promptly")
}

// checkSequence checks that a subscriber got a publisher's numbered
// messages 0 … total-1 once each and in order.
func checkSequence(t *testing.T, name string, c *collector, total int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) != total {
		t.Errorf("%s got %d messages, want %d", name, len(c.msgs), total)
	}
	for j, m := range c.msgs {
		if v, _ := binary.Uvarint(m.Data); v != uint64(j) {
			t.Errorf("%s: message %d is %d", name, j, v)
			return
		}
	}
}

// wayGate holds back the batches a receiver gets one way, from the moment
// the test closes it until the first batch arrives the other way: that
// batch, sent after them, overtakes them for certain.
type wayGate struct {
	held bool // the way held back: direct streams, or GossipSub

	mu     sync.Mutex
	closed bool
	open   chan struct{}
	once   sync.Once
}

func newWayGate(held bool) *wayGate { return &wayGate{held: held, open: make(chan struct{})} }

// close starts holding batches back.
func (g *wayGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// hook is the receiver's testHookReceive: it acts on topic "t" only.
func (g *wayGate) hook() *func(string, bool) {
	f := func(topic string, direct bool) {
		if topic != "t" {
			return
		}
		g.mu.Lock()
		closed, open := g.closed, g.open
		g.mu.Unlock()
		if !closed {
			return
		}
		if direct == g.held {
			<-open
			return
		}
		// The first batch the other way goes to the reorderer as soon as
		// this returns; the held ones follow a moment later (well within
		// the reorderer's wait), so they arrive after it for certain.
		g.once.Do(func() { time.AfterFunc(20*time.Millisecond, func() { close(open) }) })
	}
	return &f
}

// held returns how many batches p's topic "t" held back for a predecessor.
func heldBatches(p *PubSub) uint64 {
	t := p.joinedWire(p.cfg.TopicPrefix + "t")
	t.order.mu.Lock()
	defer t.order.mu.Unlock()
	return t.order.stats.held
}

// publishNumbered publishes total numbered messages from p on "t", in
// several batches, calling at(i) before message i.
func publishNumbered(t *testing.T, p *PubSub, total int, at func(i int)) {
	t.Helper()
	ctx := context.Background()
	for i := range total {
		at(i)
		if err := p.Publish(ctx, "t", binary.AppendUvarint(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(5 * time.Millisecond) // several batches, spread over the switch
		}
	}
}

// When a publisher's batches change way, from GossipSub to direct streams,
// subscribers still get every message once and in order.
func TestSwitchGossipToDirectKeepsOrder(t *testing.T) {
	hosts := newHosts(t, 3) // fully connected; a–c is cut and restored below
	ps := pubsubsOn(t, hosts, Config{})
	cAddrs := hosts[2].Addrs()
	hosts[0].ConnManager().Protect(hosts[1].ID(), "test")
	cutLink(t, hosts[0], hosts[2])
	cols := []*collector{newCollector(), newCollector()}
	probes := []*counter{newCounter(), newCounter()}
	for i, c := range cols {
		if _, err := ps[i+1].Subscribe("t", numbered(c, probes[i])); err != nil {
			t.Fatal(err)
		}
	}
	// c is the receiver that changes way: through b's relay, then
	// straight from a. (Holding b back as well would hold the relay, and
	// with it c's GossipSub batches, for longer than c waits for them.)
	gate := newWayGate(false)
	ps[2].dir.testHookReceive.Store(gate.hook())
	waitTopicPeers(t, ps[0], "t", 1)
	testutil.Eventually(t, 10*time.Second, "a sees that c is beyond b", func() bool { return !ps[0].topo.closed() })
	waitRelay(t, ps[0], probes[1]) // b relays to c
	const total = 400
	publishNumbered(t, ps[0], total, func(i int) {
		switch i {
		case 90:
			// The GossipSub batches from now until the switch reach c
			// after the first direct one.
			gate.close()
		case 100:
			// a and c connect: a's neighbourhood closes, batches go
			// direct from now on.
			mendLink(hosts[0], hosts[2])
			if err := hosts[0].Connect(context.Background(), peer.AddrInfo{ID: hosts[2].ID(), Addrs: cAddrs}); err != nil {
				t.Fatal(err)
			}
			waitDirect(t, ps[0], "t", 2)
		}
	})
	barrier(t, ps[0], cols, total)
	for i, c := range cols {
		checkSequence(t, fmt.Sprintf("node %d", i+1), c, total+1)
	}
	if heldBatches(ps[2]) == 0 {
		t.Error("no batch overtook another at c; the test did not test the switch")
	}
	st := ps[0].Stats().Topics["t"]
	if st.DirectBatches == 0 || st.DirectBatches == st.Batches {
		t.Errorf("%d of %d batches direct: the way did not change", st.DirectBatches, st.Batches)
	}
}

// When a publisher's batches change way, from direct streams to GossipSub
// (a peer of a peer appears: the neighbourhood is no longer closed),
// subscribers still get every message once and in order.
func TestSwitchDirectToGossipKeepsOrder(t *testing.T) {
	ps := newMesh(t, 3, Config{})
	cols := []*collector{newCollector(), newCollector()}
	for i, c := range cols {
		if _, err := ps[i+1].Subscribe("t", c.handle); err != nil {
			t.Fatal(err)
		}
	}
	waitTopicPeers(t, ps[0], "t", 2)
	waitDirect(t, ps[0], "t", 2)
	gates := []*wayGate{newWayGate(true), newWayGate(true)}
	for i, p := range ps[1:] {
		p.dir.testHookReceive.Store(gates[i].hook())
	}
	// d will connect to b only, so a can no longer reach everyone directly.
	dh := newHosts(t, 1)[0]
	d, err := New(dh, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closePubSub(t, d) })
	const total = 400
	publishNumbered(t, ps[0], total, func(i int) {
		switch i {
		case 90:
			// The direct batches from now until the switch reach b and c
			// after the first GossipSub one.
			for _, g := range gates {
				g.close()
			}
		case 100:
			// d connects to b: a's neighbourhood opens, batches go
			// through GossipSub from now on.
			if err := dh.Connect(context.Background(), peer.AddrInfo{ID: ps[1].host.ID(), Addrs: ps[1].host.Addrs()}); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 10*time.Second, "a to see d beyond b", func() bool { return !ps[0].topo.closed() })
		}
	})
	barrier(t, ps[0], cols, total)
	for i, c := range cols {
		checkSequence(t, fmt.Sprintf("node %d", i+1), c, total+1)
		if heldBatches(ps[i+1]) == 0 {
			t.Errorf("node %d: no batch overtook another; the test did not test the switch", i+1)
		}
	}
	st := ps[0].Stats().Topics["t"]
	if st.DirectBatches == 0 || st.DirectBatches == st.Batches {
		t.Errorf("%d of %d batches direct: the way did not change", st.DirectBatches, st.Batches)
	}
}

// A member opening many direct streams, each with a frame that claims
// nearly the largest size and then stalls, pins neither memory at the
// claimed size nor the readers: each stream is reset once the frame has
// not finished in time, and counted.
func TestHalfSentFramesAreBounded(t *testing.T) {
	hosts := newHosts(t, 2)
	ps := pubsubsOn(t, hosts[1:], Config{})
	d := ps[0].dir
	d.mu.Lock()
	d.frameTimeout = 500 * time.Millisecond
	d.mu.Unlock()
	const streams = 40
	runtime.GC()
	var before, during runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ss []network.Stream
	for range streams {
		s, err := hosts[0].NewStream(ctx, hosts[1].ID(), directProtocol)
		if err != nil {
			t.Fatal(err)
		}
		head := binary.AppendUvarint(append([]byte(nil), helloFrame...), d.maxFrame-1)
		if _, err := s.Write(append(head, make([]byte, 1000)...)); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	testutil.Eventually(t, 5*time.Second, "every stream being read", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.in) == streams
	})
	runtime.ReadMemStats(&during)
	if grew := int64(during.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Fatalf("heap grew by %d MB for %d half-sent frames of %d MB each", grew>>20, streams, d.maxFrame>>20)
	}
	testutil.Eventually(t, 10*time.Second, "the stalled streams reset", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.in) == 0
	})
	if inv := ps[0].Stats().Invalid; inv != streams {
		t.Fatalf("Invalid = %d, want %d", inv, streams)
	}
	for _, s := range ss {
		_ = s.Reset()
	}
}

func TestReadFrameGrowsWithTheBytes(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 300_000)
	got, err := readFrame(bytes.NewReader(data), uint64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if _, err := readFrame(bytes.NewReader(data[:1000]), 1<<30); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short input: %v", err)
	}
	// A lying length costs what arrived, not what it claims.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_, _ = readFrame(bytes.NewReader(data[:10]), 1<<30)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 2*frameFirst {
		t.Fatalf("%d bytes allocated for a 10-byte frame claiming 1 GiB", per)
	}
	// The frame of a 64 KiB message, and a full batch of the default
	// size, are read into one buffer of their size.
	for _, n := range []int{64<<10 + 100, DefaultMaxBatchBytes + 500} {
		frame := data[:n]
		allocs := testing.AllocsPerRun(10, func() {
			got, err := readFrame(bytes.NewReader(frame), uint64(len(frame)))
			if err != nil || len(got) != len(frame) || cap(got) != len(frame) {
				t.Fatalf("read %d bytes (cap %d), %v", len(got), cap(got), err)
			}
		})
		if allocs > 2 { // the buffer, and the reader's
			t.Fatalf("%v allocations to read a frame of %d bytes, want the buffer alone", allocs, n)
		}
	}
}
