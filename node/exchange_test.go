package node

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/reflectmesh/reflect/internal/netns"
)

func TestExchangeCodec(t *testing.T) {
	a, b := fakeID(t), fakeID(t)
	in := []peer.AddrInfo{
		{ID: a, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/4001"), ma.StringCast("/ip6/::1/tcp/4002")}},
		{ID: b},
	}
	out, err := decodeExchange(encodeExchange(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].ID != a || len(out[0].Addrs) != 2 || !out[0].Addrs[1].Equal(in[0].Addrs[1]) || out[1].ID != b || len(out[1].Addrs) != 0 {
		t.Fatalf("decoded %v, want %v", out, in)
	}
	if out, err := decodeExchange(encodeExchange(nil)); err != nil || len(out) != 0 {
		t.Fatalf("empty answer: %v, %v", out, err)
	}

	good := encodeExchange(in)
	bad := map[string][]byte{
		"empty":           nil,
		"truncated":       good[:len(good)-3],
		"trailing":        append(append([]byte{}, good...), 0),
		"huge count":      {0xff, 0xff, 0xff, 0xff, 0x0f},
		"count over data": {5, 1, 'x'},
		"bad peer id":     {1, 3, 'a', 'b', 'c', 0},
		"too many addrs":  tooManyAddrs(a),
	}
	for name, b := range bad {
		if _, err := decodeExchange(b); !errors.Is(err, ErrExchange) {
			t.Errorf("%s: %v, want ErrExchange", name, err)
		}
	}
}

// tooManyAddrs is an answer naming one member with one address more than
// allowed (and bytes enough for them).
func tooManyAddrs(id peer.ID) []byte {
	b := binary.AppendUvarint(nil, 1)
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	b = binary.AppendUvarint(b, maxAdvertAddrs+1)
	return append(b, make([]byte, 2*(maxAdvertAddrs+1))...)
}

func FuzzDecodeExchange(f *testing.F) {
	id, err := peer.Decode("12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(encodeExchange([]peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/1")}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ais, err := decodeExchange(b)
		if err != nil {
			if !errors.Is(err, ErrExchange) {
				t.Fatalf("error %v does not wrap ErrExchange", err)
			}
			return
		}
		if len(ais) > maxExchanged {
			t.Fatalf("%d members", len(ais))
		}
		for _, ai := range ais {
			if len(ai.Addrs) > maxAdvertAddrs {
				t.Fatalf("%d addresses", len(ai.Addrs))
			}
		}
	})
}

// One bootstrap peer is enough to join the whole mesh: a node given only
// b learns c and d from b and connects to them, and so do the nodes of a
// chain each bootstrapped to the one before.
func TestBootstrapFindsTheWholeMesh(t *testing.T) {
	netns.Require(t)
	ns := startMesh(t, 3, testKey)
	cfg := localConfig(testKey)
	cfg.BootstrapPeers = []string{ns[0].Addrs()[0].String()}
	late := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := waitNeighbours(ctx, late, 3); err != nil {
		t.Fatalf("a node bootstrapped to one member of three: %v (peers %v)", err, late.Neighbours())
	}
	for i, n := range ns {
		if err := waitNeighbours(ctx, n, 3); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	if st := late.Stats(); st.PeerExchanges == 0 || st.PeersExchanged != 2 {
		t.Fatalf("stats: %d exchanges, %d peers exchanged; want some, and the 2 members it did not know", st.PeerExchanges, st.PeersExchanged)
	}
}

func TestChainBecomesAFullMesh(t *testing.T) {
	netns.Require(t)
	const count = 5
	ns := make([]*Node, count)
	for i := range ns {
		cfg := localConfig(testKey)
		if i > 0 {
			cfg.BootstrapPeers = []string{ns[i-1].Addrs()[0].String()}
		}
		ns[i] = startNode(t, cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, n := range ns {
		if err := waitNeighbours(ctx, n, count-1); err != nil {
			t.Fatalf("node %d of a chain: %v", i, err)
		}
	}
}

// A member asking again at once is refused; the answer lists only joined
// members with addresses, never the asker.
func TestExchangeAnswer(t *testing.T) {
	netns.Require(t)
	ns := startMesh(t, 3, testKey)
	list := ns[0].members.exchangeList(ns[1].ID())
	if len(list) != 1 || list[0].ID != ns[2].ID() || len(list[0].Addrs) == 0 {
		t.Fatalf("ns[0] answers ns[1] with %v, want ns[2] with its addresses", list)
	}
	time.Sleep(exchangeMinGap) // since the questions of the joins
	before := ns[1].Stats().PeerExchanges
	ns[1].members.exchangeWith(ns[0].ID())
	ns[1].members.exchangeWith(ns[0].ID()) // within exchangeMinGap: refused
	if got := ns[1].Stats().PeerExchanges - before; got != 1 {
		t.Fatalf("%d of 2 questions in a row answered, want 1", got)
	}
}

// The answer lists the members with room (announcing fewer than MaxPeers
// peers, or not announcing yet), and the others only when none has room.
func TestExchangeAnswerListsMembersWithRoom(t *testing.T) {
	addr := ma.StringCast("/ip4/10.0.0.1/tcp/4001")
	mk := func(degrees map[peer.ID]int, joined ...peer.ID) *members {
		ms := &members{cfg: Config{MaxPeers: 8}, peers: map[peer.ID]*member{}, degrees: degrees}
		for _, p := range joined {
			ms.peers[p] = &member{joined: true, addrs: []ma.Multiaddr{addr}}
		}
		ms.peers["left"] = &member{addrs: []ma.Multiaddr{addr}} // not joined: never listed
		return ms
	}
	ids := func(ais []peer.AddrInfo) []peer.ID {
		var out []peer.ID
		for _, ai := range ais {
			out = append(out, ai.ID)
		}
		slices.Sort(out)
		return out
	}
	ms := mk(map[peer.ID]int{"full": 8, "over": 11, "room": 7}, "asker", "full", "over", "room", "quiet")
	if got, want := ids(ms.exchangeList("asker")), []peer.ID{"quiet", "room"}; !slices.Equal(got, want) {
		t.Errorf("answer %v, want %v (the members with room)", got, want)
	}
	ms = mk(map[peer.ID]int{"full": 8, "over": 11}, "asker", "full", "over")
	if got, want := ids(ms.exchangeList("asker")), []peer.ID{"full", "over"}; !slices.Equal(got, want) {
		t.Errorf("answer %v, want %v (none has room: all)", got, want)
	}
}
