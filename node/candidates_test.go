package node

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/goleak"

	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/pnet"
)

func fakeID(t testing.TB) peer.ID {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var someAddr = []ma.Multiaddr{ma.StringCast("/ip4/10.9.9.9/tcp/4001")}

func TestCandidateTableBoundsAndOrder(t *testing.T) {
	tb := newCandidateTable()
	now := time.Unix(1000, 0)
	ids := make([]peer.ID, maxCandidates+1)
	for i := range ids {
		ids[i] = fakeID(t)
	}
	for i, id := range ids[:maxCandidates] {
		if r := tb.add(id, someAddr, now.Add(time.Duration(i)), now); r != candAdded {
			t.Fatalf("add %d: %v", i, r)
		}
	}
	// Full of untried candidates: a newcomer is dropped, nobody evicted.
	if r := tb.add(ids[maxCandidates], someAddr, now, now); r != candDropped || len(tb.byID) != maxCandidates {
		t.Fatalf("add to a full table: %v, size %d", r, len(tb.byID))
	}
	// The newest untried candidate is dialled first.
	p, c, _ := tb.next(now)
	if p != ids[maxCandidates-1] {
		t.Fatalf("next is %s, want the newest", p)
	}
	c.dialing = true
	// A candidate that failed retries later, after the untried ones...
	if tb.failed(p, now, time.Second) {
		t.Fatal("forgotten after one failure")
	}
	if q, _, _ := tb.next(now.Add(2 * time.Second)); q == p {
		t.Fatal("a failed candidate went before untried ones")
	}
	// ... and may be replaced by a newcomer.
	if r := tb.add(ids[maxCandidates], someAddr, now, now); r != candEvicted || tb.byID[p] != nil {
		t.Fatalf("add with a failed candidate in a full table: %v", r)
	}
	// Forgotten after maxCandidateAttempts failures.
	q := ids[0]
	for i := range maxCandidateAttempts {
		forgotten := tb.failed(q, now, time.Second)
		if forgotten != (i == maxCandidateAttempts-1) {
			t.Fatalf("failure %d: forgotten %v", i+1, forgotten)
		}
	}
	if tb.byID[q] != nil {
		t.Fatal("still in the table")
	}
	// Past its time-to-live, a candidate is forgotten even untried.
	if n, _ := tb.expire(now.Add(candidateTTL - time.Second)); n != 0 {
		t.Fatalf("%d expired before their time", n)
	}
	size := len(tb.byID)
	if n, _ := tb.expire(now.Add(candidateTTL + time.Second)); n != size || len(tb.byID) != 0 {
		t.Fatalf("%d of %d expired", n, size)
	}
	// Nothing due: next says when.
	tb2 := newCandidateTable()
	tb2.add(ids[1], someAddr, now, now.Add(3*time.Second))
	if _, c, wait := tb2.next(now); c != nil || wait != 3*time.Second {
		t.Fatalf("next with nothing due: %v, wait %v", c, wait)
	}
}

// sink accepts TCP connections and never answers: a dial to it hangs until
// its timeout, the worst a forged address can do to a dial slot.
func sink(t *testing.T) ma.Multiaddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	a, err := manet.FromNetAddr(ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// plainHost is a libp2p host on the mesh's network key that never redials:
// a member whose reconnection is up to the node under test.
func plainHost(t *testing.T, key, listen string) host.Host {
	t.Helper()
	n, err := pnet.FromPassphrase(key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.PrivateNetwork(n.PSK()), libp2p.ListenAddrStrings(listen),
		libp2p.Security(noise.ID, noise.New), libp2p.DisableRelay(),
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Attack 10: a stranger forges mDNS adverts, 1,100 peers pointing at an
// address that accepts and never answers. Before the fix they filled the
// 1,024-peer table, started a goroutine each and held all 16 dial slots, so
// a member that lost its connection was not redialled for minutes. Now they
// wait in a table of 256 with 4 dial slots of their own, are forgotten
// after 3 failed dials, and the member is redialled at once. Adverts naming
// the member, with forged addresses, neither evict it nor replace its
// address.
func TestForgedAdvertsDoNotDelayMembers(t *testing.T) {
	netns.Require(t)
	cfg := localConfig(testKey)
	cfg.DialTimeout = time.Second
	a := startNode(t, cfg)
	b := plainHost(t, testKey, "/ip4/127.0.0.2/tcp/0")
	a.members.discovered(peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}, fromMDNS) // the discovery entry point
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}

	a.members.mu.Lock()
	a.members.cands.ttl = 5 * time.Second // a minute by default
	a.members.mu.Unlock()
	before := a.Stats() // the member was a candidate: one added, one dial
	g0 := runtime.NumGoroutine()
	bad := sink(t)
	const forged = 1100
	var wg sync.WaitGroup
	for i := range forged {
		id := fakeID(t)
		if i%100 == 0 {
			id = b.ID() // a forged advert of the member itself
		}
		wg.Go(func() { a.members.discovered(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{bad}}, fromMDNS) }) // concurrently, as adverts arrive
	}
	wg.Wait()
	st := a.Stats()
	grew := runtime.NumGoroutine() - g0
	t.Logf("%d forged adverts: %d candidates, %d dropped, goroutines +%d", forged, st.Candidates, st.CandidatesDropped, grew)
	if st.Candidates > maxCandidates || st.Members != 1 {
		t.Fatalf("%d candidates (≤ %d), %d members (want 1)", st.Candidates, maxCandidates, st.Members)
	}
	if st.CandidatesDropped < forged-forged/100-maxCandidates {
		t.Errorf("%d adverts dropped, want ≥ %d", st.CandidatesDropped, forged-forged/100-maxCandidates)
	}
	// The dialer and its 4 dials, with libp2p's goroutines for each.
	if grew > 60 {
		t.Errorf("goroutines grew by %d during the flood", grew)
	}

	// The member's connection dies; the member does not redial.
	if err := a.Host().Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the member to be redialled during the flood", func() bool {
		return a.Host().Network().Connectedness(b.ID()) == network.Connected
	})
	if grew := runtime.NumGoroutine() - g0; grew > 60 {
		t.Errorf("goroutines grew by %d during the flood", grew)
	}

	// Candidates that never answer are forgotten: after 3 failed dials or
	// the table's time-to-live (5 s here), whichever comes first.
	testutil.Eventually(t, 20*time.Second, "the forged candidates to be forgotten", func() bool {
		s := a.Stats()
		return s.Candidates == 0 && s.CandidatesForgotten == s.CandidatesAdded-before.CandidatesAdded
	})
	st = a.Stats()
	t.Logf("after the flood: %d forgotten, %d dials (%d failed), members %d", st.CandidatesForgotten, st.CandidateDials, st.CandidateDialsFailed, st.Members)
	if st.CandidateDials-before.CandidateDials != st.CandidateDialsFailed {
		t.Errorf("%d candidate dials, %d failed: a forged one connected?", st.CandidateDials, st.CandidateDialsFailed)
	}
	if a.Host().Network().Connectedness(b.ID()) != network.Connected || st.Members != 1 {
		t.Fatal("the member was lost")
	}
}

// A candidate that answers becomes a member, and is redialled like one.
func TestCandidateBecomesMember(t *testing.T) {
	netns.Require(t)
	a := startNode(t, localConfig(testKey))
	b := plainHost(t, testKey, "/ip4/127.0.0.3/tcp/0")
	a.members.discovered(peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}, fromMDNS)
	testutil.Eventually(t, 10*time.Second, "the candidate to connect", func() bool {
		st := a.Stats()
		return st.Members == 1 && st.Candidates == 0
	})
	for range 2 {
		if err := a.Host().Network().ClosePeer(b.ID()); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "the member to be redialled", func() bool {
			return a.Host().Network().Connectedness(b.ID()) == network.Connected
		})
	}
	if st := a.Stats(); st.CandidateDials != 1 || st.CandidatesAdded != 1 {
		t.Fatalf("stats %+v: want one candidate dial", st)
	}
}

// Close waits for the candidate dialer and its dials in flight, and leaves
// no goroutine behind.
func TestCloseWithCandidateDialsInFlight(t *testing.T) {
	netns.Require(t)
	bad := sink(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := localConfig(testKey)
	cfg.DialTimeout = 500 * time.Millisecond
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		n.members.discovered(peer.AddrInfo{ID: fakeID(t), Addrs: []ma.Multiaddr{bad}}, fromMDNS)
	}
	testutil.Eventually(t, 5*time.Second, "candidate dials to start", func() bool {
		return n.Stats().CandidateDials >= maxCandidateDials
	})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}
