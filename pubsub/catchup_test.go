package pubsub

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// connect connects a to b, protected from a's connection manager.
func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.ConnManager().Protect(b.ID(), "test")
	b.ConnManager().Protect(a.ID(), "test")
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// holds waits until p holds an announcement of each of authors, saying
// they send to want[author].
func holds(t *testing.T, p *PubSub, within time.Duration, what string, want map[peer.ID][]peer.ID) {
	t.Helper()
	var got map[peer.ID][]peer.ID
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		p.topo.mu.Lock()
		got = map[peer.ID][]peer.ID{}
		for q := range want {
			if sends, ok := p.topo.theirs[q]; ok {
				got[q] = sortedPeers(sends)
			}
		}
		p.topo.mu.Unlock()
		if maps.EqualFunc(got, want, slices.Equal) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after %v, held\n%v\nwant\n%v", what, within, got, want)
		}
	}
}

// A node that joins the end of a line learns, at once, the announcements
// of the nodes beyond its peer, which announce nothing new when it joins:
// its peer hands them over when they meet.
func TestCatchUpOnJoin(t *testing.T) {
	hs := newHostsApart(t, 4)
	ps := pubsubsOn(t, hs, Config{})
	id := func(i int) peer.ID { return hs[i].ID() }
	connect(t, hs[0], hs[1])
	connect(t, hs[1], hs[2])
	line := map[peer.ID][]peer.ID{id(0): {id(1)}, id(1): sorted(id(0), id(2))}
	holds(t, ps[2], 10*time.Second, "the line's end", line)
	// Past the repeats of the line's last change (announceAgain): what
	// nodes 0 and 1 say next is a refresh, several seconds away. And
	// linkAgeCap more: what node 2 holds is old news, which it hands over
	// (givableLocked).
	time.Sleep(announceAgain + linkAgeCap + 500*time.Millisecond)

	connect(t, hs[2], hs[3])
	holds(t, ps[3], 3*time.Second, "the newcomer", line)
	if got := ps[3].Stats().CaughtUp; got < 2 {
		t.Fatalf("the newcomer caught up on %d announcements, want at least 2 (nodes 0 and 1)", got)
	}
	if ps[2].Stats().CatchUps == 0 || ps[3].Stats().CatchUps == 0 {
		t.Fatalf("catch-ups: %d at node 2, %d at node 3", ps[2].Stats().CatchUps, ps[3].Stats().CatchUps)
	}
}

// When two lines join, the nodes behind each end learn the other line's
// announcements: the ends catch up with each other, then with the rest of
// their peers, whom they owe what they learnt.
func TestCatchUpAcrossAJoin(t *testing.T) {
	hs := newHostsApart(t, 4)
	ps := pubsubsOn(t, hs, Config{})
	id := func(i int) peer.ID { return hs[i].ID() }
	connect(t, hs[0], hs[1])
	connect(t, hs[2], hs[3])
	holds(t, ps[0], 10*time.Second, "line 0-1", map[peer.ID][]peer.ID{id(1): {id(0)}})
	holds(t, ps[3], 10*time.Second, "line 2-3", map[peer.ID][]peer.ID{id(2): {id(3)}})
	// Past the repeats of the lines' last changes, and linkAgeCap more:
	// what the lines' nodes hold is old news (caughtUp), which they owe
	// their peers once they learn it by catching up.
	time.Sleep(announceAgain + linkAgeCap + 500*time.Millisecond)

	connect(t, hs[1], hs[2])
	// Node 3 announces nothing new; node 0 learns its announcement from
	// node 1, which caught up with node 2.
	holds(t, ps[0], 5*time.Second, "node 0, behind the join", map[peer.ID][]peer.ID{id(3): {id(2)}})
	holds(t, ps[3], 5*time.Second, "node 3, behind the join", map[peer.ID][]peer.ID{id(0): {id(1)}})
}

// rawOf returns p's own latest announcement as signed, once it holds one
// (announcing at once).
func rawOf(t *testing.T, p *PubSub) []byte {
	t.Helper()
	return rawAfter(t, p, nil)
}

// rawAfter has p announce and returns the signed announcement it holds of
// its own once that is not prev (nil: any).
func rawAfter(t *testing.T, p *PubSub, prev []byte) []byte {
	t.Helper()
	p.topo.refresh <- struct{}{}
	var raw []byte
	testutil.Eventually(t, 5*time.Second, "an announcement of its own", func() bool {
		p.topo.mu.Lock()
		m := p.topo.held[p.host.ID()].msg
		p.topo.mu.Unlock()
		if m == nil {
			return false
		}
		var err error
		if raw, err = proto.Marshal(m); err != nil {
			t.Fatal(err)
		}
		return !bytes.Equal(raw, prev)
	})
	return raw
}

// offeredTo starts an author and a node with pub/subs, and a relay
// without one, connected to the node: it only offers (offer).
func offeredTo(t *testing.T) (author, node *PubSub, relay host.Host) {
	t.Helper()
	hs := newHostsApart(t, 3)
	author, node = pubsubsOn(t, hs[:1], Config{})[0], pubsubsOn(t, hs[1:2], Config{})[0]
	relay = hs[2]
	connect(t, relay, hs[1])
	return author, node, relay
}

// offer opens a catch-up from h to p as a peer would, with an empty
// digest, and hands over raws; it returns whether p closed the exchange
// cleanly (rather than resetting it).
func offer(t *testing.T, h host.Host, p *PubSub, raws ...[]byte) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, p.host.ID(), catchupProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Write(catchupFrame(append([]byte{0}, encodeDigest(nil)...))); err != nil {
		t.Fatal(err)
	}
	if _, err := readCatchupFrame(bufio.NewReader(s)); err != nil {
		t.Fatal(err)
	}
	given := make([]givenAnnouncement, len(raws))
	for i, r := range raws {
		given[i] = givenAnnouncement{raw: r}
	}
	if _, err := s.Write(catchupFrame(appendGiven(nil, given))); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	_, err = s.Read(make([]byte, 1)) // EOF once p closes; a reset otherwise
	return err != nil && err.Error() == "EOF"
}

// A peer's catch-up is checked like a relayed copy: a tampered
// announcement, one whose batch claims another author than its signer,
// or one of another topic ends the exchange, is counted, and is not
// learnt; a genuine one, relayed by a peer that is not its author, is.
func TestCatchUpRefusesForgeries(t *testing.T) {
	author, victim, relay := offeredTo(t)
	raw := rawOf(t, author)

	tampered := bytes.Clone(raw)
	var m pb.Message
	if err := proto.Unmarshal(tampered, &m); err != nil {
		t.Fatal(err)
	}
	m.Data = append(bytes.Clone(m.Data[:len(m.Data)-1]), m.Data[len(m.Data)-1]^1)
	tampered, _ = proto.Marshal(&m)

	var other pb.Message // signed by author, claimed by relay
	_ = proto.Unmarshal(raw, &other)
	other.From = []byte(relay.ID())
	claimed, _ := proto.Marshal(&other)

	var topic pb.Message
	_ = proto.Unmarshal(raw, &topic)
	wrong := "another"
	topic.Topic = &wrong
	elsewhere, _ := proto.Marshal(&topic)

	for i, c := range []struct {
		what   string
		raw    []byte
		forged uint64
	}{
		{"a tampered announcement", tampered, 1},
		{"an announcement whose signer is not its batch's author", claimed, 2},
		{"a message of another topic", elsewhere, 2},
		{"bytes that are no message", []byte{0xff, 0xff, 0xff}, 2},
	} {
		if offer(t, relay, victim, c.raw) {
			t.Fatalf("%s: the exchange ended cleanly", c.what)
		}
		st := victim.Stats()
		if st.Invalid != uint64(i+1) || st.Forged != c.forged || st.CaughtUp != 0 {
			t.Fatalf("%s: Invalid %d, Forged %d, CaughtUp %d; want %d, %d, 0", c.what, st.Invalid, st.Forged, st.CaughtUp, i+1, c.forged)
		}
	}

	if !offer(t, relay, victim, raw) {
		t.Fatal("a genuine announcement: the exchange was reset")
	}
	if got := victim.Stats().CaughtUp; got != 1 {
		t.Fatalf("CaughtUp = %d after a genuine announcement, want 1", got)
	}
	holds(t, victim, 5*time.Second, "the victim", map[peer.ID][]peer.ID{author.host.ID(): {}})
	if !offer(t, relay, victim, raw) || victim.Stats().CaughtUp != 1 {
		t.Fatalf("the same announcement again: CaughtUp = %d, want 1 (not newer)", victim.Stats().CaughtUp)
	}
}

// A frame longer than catchupMaxFrame is refused before it is read.
func TestCatchUpFrameBound(t *testing.T) {
	big := []byte{0x80, 0x80, 0x80, 0x10} // 32 MiB
	if _, err := readCatchupFrame(bufio.NewReader(bytes.NewReader(big))); err == nil {
		t.Fatal("a 32 MiB frame was read")
	}
	if _, err := readCatchupFrame(bufio.NewReader(bytes.NewReader([]byte{0}))); err == nil {
		t.Fatal("an empty frame was read")
	}
}

// The digest, announcement and want lists decode what they encode, and
// refuse what they could not have encoded.
func TestCatchUpCodecs(t *testing.T) {
	d := map[peer.ID]digested{"a": {1, 2}, "bb": {1 << 40, 1 << 63}, "c": {}}
	got, err := decodeDigest(encodeDigest(d))
	if err != nil || !maps.Equal(got, d) {
		t.Fatalf("digest: %v, %v", got, err)
	}
	given := []givenAnnouncement{{[]byte("x"), 0}, {[]byte("yz"), linkAgeCap}}
	ids := []peer.ID{"p", "q"}
	gotGiven, rest, err := decodeGiven(appendIDs(appendGiven(nil, given), ids))
	if err != nil || !slices.EqualFunc(gotGiven, given, func(a, b givenAnnouncement) bool { return bytes.Equal(a.raw, b.raw) && a.held == b.held }) {
		t.Fatalf("announcements: %v, %v", gotGiven, err)
	}
	gotIDs, err := decodeIDs(rest)
	if err != nil || !slices.Equal(gotIDs, ids) {
		t.Fatalf("wants: %v, %v", gotIDs, err)
	}
	for _, bad := range []struct {
		what string
		b    []byte
		dec  func([]byte) error
	}{
		{"a digest with trailing bytes", append(encodeDigest(d), 0), func(b []byte) error { _, err := decodeDigest(b); return err }},
		{"a digest naming a node twice", []byte{2, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 2, 0, 0, 0, 0, 0, 0, 0, 0}, func(b []byte) error { _, err := decodeDigest(b); return err }},
		{"a digest with an empty id", []byte{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, func(b []byte) error { _, err := decodeDigest(b); return err }},
		{"a digest without its sum", []byte{1, 1, 'a', 1, 0, 0, 0}, func(b []byte) error { _, err := decodeDigest(b); return err }},
		{"a digest longer than its bytes", []byte{5, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 0, 0}, func(b []byte) error { _, err := decodeDigest(b); return err }},
		{"an empty announcement", []byte{1, 0, 0}, func(b []byte) error { _, _, err := decodeGiven(b); return err }},
		{"an announcement past the end", []byte{1, 9, 'x', 0}, func(b []byte) error { _, _, err := decodeGiven(b); return err }},
		{"an announcement without its time held", []byte{1, 1, 'x'}, func(b []byte) error { _, _, err := decodeGiven(b); return err }},
		{"an announcement held too long", []byte{1, 1, 'x', 0xdd, 0x0b}, func(b []byte) error { _, _, err := decodeGiven(b); return err }},
		{"wants with trailing bytes", append(appendIDs(nil, ids), 7), func(b []byte) error { _, err := decodeIDs(b); return err }},
		{"an id longer than any", append([]byte{1, 0x81, 0x01}, bytes.Repeat([]byte{'a'}, 129)...), func(b []byte) error { _, err := decodeIDs(b); return err }},
	} {
		if err := bad.dec(bad.b); err == nil {
			t.Errorf("%s: decoded", bad.what)
		}
	}
}

// A caught-up announcement's young links age by the time its giver held
// it; those that reach linkAgeCap are old.
func TestAgedBy(t *testing.T) {
	vals := []any{announcement{peers: []peer.ID{"a", "b", "c"}, ages: []linkAge{{0, 100 * time.Millisecond}, {2, linkAgeCap - 300*time.Millisecond}}}}
	agedBy(vals, 200*time.Millisecond)
	want := []linkAge{{0, 300 * time.Millisecond}, {2, linkAgeCap - 100*time.Millisecond}}
	if got := vals[0].(announcement).ages; !slices.Equal(got, want) {
		t.Fatalf("aged by 200 ms: %v, want %v", got, want)
	}
	agedBy(vals, 100*time.Millisecond)
	if got := vals[0].(announcement).ages; !slices.Equal(got, []linkAge{{0, 400 * time.Millisecond}}) {
		t.Fatalf("aged by 100 ms more: %v, want the first link only, 400 ms", got)
	}
}

func FuzzCatchUpFrames(f *testing.F) {
	f.Add(encodeDigest(map[peer.ID]digested{"a": {1, 7}, "b": {2, 9}}))
	f.Add(appendIDs(appendGiven(nil, []givenAnnouncement{{[]byte("x"), time.Second}}), []peer.ID{"p"}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := decodeDigest(b); err == nil {
			again, err := decodeDigest(encodeDigest(d))
			if err != nil || !maps.Equal(again, d) {
				t.Fatalf("digest %v: re-decoded %v, %v", d, again, err)
			}
		}
		if given, rest, err := decodeGiven(b); err == nil {
			for _, g := range given {
				if len(g.raw) == 0 || g.held > linkAgeCap {
					t.Fatalf("decoded %v", g)
				}
			}
			if ids, err := decodeIDs(rest); err == nil {
				if enc := appendIDs(appendGiven(nil, given), ids); !bytes.Equal(enc, b) {
					t.Fatalf("%x re-encoded as %x", b, enc)
				}
			}
		}
	})
}

// Close ends catch-ups being served: a peer that opens one and sends
// nothing does not hold Close up.
func TestCloseEndsCatchUps(t *testing.T) {
	hs := newHostsApart(t, 2)
	p := pubsubsOn(t, hs[:1], Config{})[0]
	connect(t, hs[1], hs[0])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := hs[1].NewStream(ctx, hs[0].ID(), catchupProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	_, _ = s.Write([]byte{5}) // a frame begun
	testutil.Eventually(t, 5*time.Second, "the stream being served", func() bool {
		p.catch.mu.Lock()
		defer p.catch.mu.Unlock()
		return len(p.catch.streams) == 1
	})
	start := time.Now()
	closePubSub(t, p)
	if d := time.Since(start); d > catchupTimeout/2 {
		t.Fatalf("Close took %v with a catch-up open", d)
	}
	if _, err := s.Read(make([]byte, 1)); err == nil {
		t.Fatal("the stream is still open after Close")
	}
}

// A digest is answered with the old news it lacks or has older, of nodes
// the giver reaches, and the nodes whose announcement it has newer, or
// that the giver lacks: never the giver's own.
func TestCatchUpFor(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("n", true)
	topo.setReady("n", true)
	topo.learn("n", []peer.ID{"me", "r"}, nil)
	topo.learn("r", []peer.ID{"n"}, nil)
	now := time.Now()
	old, young := now.Add(-linkAgeCap), now.Add(-linkAgeCap+time.Millisecond)
	msg := func(s string) *pb.Message { return &pb.Message{Data: []byte(s)} }
	says := func(ps ...peer.ID) []any { return []any{announcement{peers: ps}} }
	topo.hold("me", 10, msg("me"), old, says("n"))
	topo.hold("n", 10, msg("n"), old, says("me", "r"))
	topo.hold("r", 10, msg("r"), old, says("n"))
	topo.hold("q", 10, msg("q"), old, says("n"))
	topo.learn("q", []peer.ID{"n"}, nil)
	topo.hold("gone", 10, msg("gone"), old, nil) // reached by no link
	topo.hold("y", 10, msg("y"), young, says())
	topo.learn("y", nil, nil)
	sum := func(ps ...peer.ID) uint64 { return sumOf(announcement{peers: ps}) }
	digest := map[peer.ID]digested{
		"n":    {10, sum("me", "r")},
		"r":    {9, sum("x")},  // older, saying something else: given
		"q":    {9, sum("n")},  // older, saying the same: not given
		"me":   {5, sum()},     // given
		"w":    {3, 0},         // wanted: not held here
		"y":    {11, sum("v")}, // wanted: newer, saying something else
		"gone": {11, 1},        // wanted (whether given on is the other's say)
	}
	give, want := topo.catchupFor(digest, now)
	var got []string
	for _, g := range give {
		var m pb.Message
		if err := proto.Unmarshal(g.raw, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m.Data))
		if g.held != linkAgeCap {
			t.Errorf("%s: held %v, want %v", m.Data, g.held, linkAgeCap)
		}
	}
	if !slices.Equal(got, []string{"me", "r"}) || !slices.Equal(want, []peer.ID{"gone", "w", "y"}) {
		t.Fatalf("gives %v and wants %v; want [me r] and [gone w y]", got, want)
	}
	if held := topo.heldFor([]peer.ID{"y", "gone", "n"}, now); len(held) != 1 {
		t.Fatalf("hands over %d of y (young), gone (unreached), n (a neighbour's); want n's only", len(held))
	}
}

// A peer is a bridge when no announced path from our other peers leads
// to it.
func TestBridge(t *testing.T) {
	topo := newTopology("me")
	for _, q := range []peer.ID{"a", "b", "d"} {
		topo.setConnected(q, true)
		topo.setReady(q, true)
	}
	topo.learn("a", []peer.ID{"me", "c"}, nil)
	topo.learn("c", []peer.ID{"a", "b"}, nil)
	topo.learn("b", []peer.ID{"me", "c"}, nil)
	topo.learn("d", []peer.ID{"me", "e"}, nil)
	for q, want := range map[peer.ID]bool{"a": false, "b": false, "d": true} {
		if got := topo.bridge(q); got != want {
			t.Errorf("bridge(%s) = %v, want %v", q, got, want)
		}
	}
}

// The GossipSub copy of an announcement a node caught up on is delivered
// once (by the catch-up), and relayed: the node's GossipSub mesh peers
// may wait for it from the node. Other late copies stay dropped.
func TestRelaysTheGossipCopyOfACatchUp(t *testing.T) {
	author, node, relay := offeredTo(t)
	older := rawOf(t, author)
	raw := rawAfter(t, author, older)
	if !offer(t, relay, node, raw) || node.Stats().CaughtUp != 1 {
		t.Fatalf("the catch-up: CaughtUp = %d, want 1", node.Stats().CaughtUp)
	}
	holds(t, node, 5*time.Second, "the node", map[peer.ID][]peer.ID{author.host.ID(): {}})
	node.topo.mu.Lock()
	node.topo.gainedAt = time.Time{} // settled: not forming
	node.topo.mu.Unlock()

	copyOf := func(b []byte) *lp2pps.Message {
		var m pb.Message
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return &lp2pps.Message{Message: &m, ReceivedFrom: relay.ID()}
	}
	tp := node.announcements
	if got := tp.validate(context.Background(), relay.ID(), copyOf(raw)); got != lp2pps.ValidationAccept {
		t.Fatalf("the GossipSub copy of the announcement caught up on: %v, want it relayed (accepted)", got)
	}
	if got := tp.validate(context.Background(), relay.ID(), copyOf(raw)); got != lp2pps.ValidationIgnore {
		t.Fatalf("a second copy: %v, want it dropped (ignored)", got)
	}
	if got := tp.validate(context.Background(), relay.ID(), copyOf(older)); got != lp2pps.ValidationIgnore {
		t.Fatalf("an older announcement: %v, want it dropped (ignored)", got)
	}
}

// A node that caught up owes its peers (a round) only what the mesh's own
// announcements do not bring them: news of a node it did not reach, or
// of a link gone; not a forming mesh's gains.
func TestOwedNews(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("p", true)
	topo.setReady("p", true)
	topo.learn("p", []peer.ID{"me", "a"}, nil)
	topo.learn("a", []peer.ID{"p", "b"}, nil)
	reached := topo.reachableNodes()
	vals := func(ps ...peer.ID) []any { return []any{announcement{peers: ps}} }
	for _, c := range []struct {
		what   string
		author peer.ID
		says   []any
		owed   bool
	}{
		{"a reached node's gain", "a", vals("p", "b", "c"), false},
		{"the same", "a", vals("p", "b"), false},
		{"a reached node's loss", "a", vals("p"), true},
		{"a node not reached", "x", vals("y"), true},
	} {
		if got := topo.owedNews(c.author, c.says, reached); got != c.owed {
			t.Errorf("%s: owed %v, want %v", c.what, got, c.owed)
		}
	}
}
