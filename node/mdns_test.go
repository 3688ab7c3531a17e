package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/miekg/dns"

	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/pnet"
)

const testService = "_test-mesh._udp"

// zeroconfAnswer packs an answer shaped as zeroconf's responder sends it to
// a browsing question: the PTR in the answers, SRV, TXT and A in the
// extras.
func zeroconfAnswer(t testing.TB, service, instance string, ttl uint32, txts ...string) []byte {
	t.Helper()
	name := serviceFQDN(service, mdnsDomain)
	inst := instanceFQDN(instance, service, mdnsDomain)
	m := new(dns.Msg)
	m.Response, m.Authoritative = true, true
	m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: inst}}
	m.Extra = []dns.RR{
		&dns.SRV{Hdr: dns.RR_Header{Name: inst, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl}, Port: 4001, Target: instance + "."},
		&dns.TXT{Hdr: dns.RR_Header{Name: inst, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: txts},
		&dns.A{Hdr: dns.RR_Header{Name: instance + ".", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: []byte{10, 0, 0, 1}},
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMDNSQuestion(t *testing.T) {
	known := []knownAnswer{{instanceFQDN("self", testService, mdnsDomain), mdnsTTL}, {instanceFQDN("peer1", testService, mdnsDomain), 120}}
	b, err := buildQuestion(testService, mdnsDomain, known)
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	if m.Response || len(m.Question) != 1 {
		t.Fatalf("not one question: %v", m)
	}
	q := m.Question[0]
	if q.Name != "_test-mesh._udp.local." || q.Qtype != dns.TypePTR || q.Qclass != dns.ClassINET|qClassUnicast {
		t.Fatalf("question %v: want a PTR question for the service asking for unicast answers", q)
	}
	var got []knownAnswer
	for _, rr := range m.Answer {
		ptr := rr.(*dns.PTR)
		got = append(got, knownAnswer{ptr.Ptr, ptr.Hdr.Ttl})
	}
	if !slices.Equal(got, known) {
		t.Fatalf("known answers %v, want %v", got, known)
	}

	// Too many known answers for one packet: as many as fit are sent.
	many := make([]knownAnswer, 500)
	for i := range many {
		many[i] = knownAnswer{instanceFQDN(fmt.Sprintf("%063d", i), testService, mdnsDomain), mdnsTTL}
	}
	b, err = buildQuestion(testService, mdnsDomain, many)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	if len(b) > mdnsMaxPacket || len(m.Answer) < 100 || len(m.Answer) == len(many) {
		t.Fatalf("%d bytes with %d of %d known answers: want at most %d bytes and over 100 answers", len(b), len(m.Answer), len(many), mdnsMaxPacket)
	}
}

func TestParseAdverts(t *testing.T) {
	id := fakeID(t)
	addr := "/ip4/10.0.0.1/tcp/4001/p2p/" + id.String()
	b := zeroconfAnswer(t, testService, "abc123", 120, "dnsaddr="+addr, "junk", "dnsaddr=/not-a-multiaddr")
	ads, err := parseAdverts(b, testService, mdnsDomain)
	if err != nil {
		t.Fatal(err)
	}
	if len(ads) != 1 || ads[0].instance != instanceFQDN("abc123", testService, mdnsDomain) || ads[0].ttl != 120 ||
		len(ads[0].addrs) != 1 || ads[0].addrs[0].String() != addr {
		t.Fatalf("adverts %+v, want abc123 with %s", ads, addr)
	}

	// Another mesh's advert, one without addresses: nothing.
	for _, b := range [][]byte{
		zeroconfAnswer(t, "_other._udp", "abc123", 120, "dnsaddr="+addr),
		zeroconfAnswer(t, testService, "abc123", 120, "nothing here"),
	} {
		if ads, err := parseAdverts(b, testService, mdnsDomain); err != nil || len(ads) != 0 {
			t.Fatalf("got %+v, %v: want no advert", ads, err)
		}
	}

	// A question and garbage are errors.
	q, err := buildQuestion(testService, mdnsDomain, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{q, []byte("garbage"), nil} {
		if _, err := parseAdverts(b, testService, mdnsDomain); !errors.Is(err, ErrMDNSPacket) {
			t.Fatalf("parseAdverts(%q): %v, want ErrMDNSPacket", b, err)
		}
	}
}

func FuzzParseAdverts(f *testing.F) {
	id, err := peer.Decode("12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(zeroconfAnswer(f, testService, "abc", 120, "dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/"+id.String()))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ads, err := parseAdverts(b, testService, mdnsDomain)
		if err != nil && !errors.Is(err, ErrMDNSPacket) {
			t.Fatalf("error %v does not wrap ErrMDNSPacket", err)
		}
		for _, ad := range ads {
			if len(ad.addrs) == 0 || len(ad.addrs) > maxAdvertAddrs {
				t.Fatalf("advert with %d addresses", len(ad.addrs))
			}
		}
	})
}

// answers collects the adverts a raw asker receives.
type answers struct {
	mu  sync.Mutex
	got map[string]int // instance → answers
}

func (a *answers) take(b []byte) {
	ads, err := parseAdverts(b, testService, mdnsDomain)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ad := range ads {
		a.got[ad.instance]++
	}
}

func (a *answers) count(instance string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[instance]
}

// A responder answers a question by unicast, and stays silent when the
// question lists its advert as known: what keeps a formed mesh's questions
// free of answers.
func TestMDNSKnownAnswerSilencesResponder(t *testing.T) {
	netns.Require(t)
	h := plainHost(t, testKey, "/ip4/127.0.0.1/tcp/0")
	responder := newMDNS(h, testService, func(peer.AddrInfo) {}, fixedMesh{}, slog.Default())
	responder.firstAsk = time.Hour
	if err := responder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = responder.Close() })
	inst := instanceFQDN(responder.instance, testService, mdnsDomain)

	ask, err := newMDNSAsker(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer ask.close()
	got := &answers{got: map[string]int{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ask.close()
	for _, c := range ask.conns {
		wg.Go(func() { ask.read(c, got.take) })
	}
	question := func(known ...knownAnswer) {
		q, err := buildQuestion(testService, mdnsDomain, known)
		if err != nil {
			t.Fatal(err)
		}
		ask.send(q)
	}

	question()
	testutil.Eventually(t, 5*time.Second, "the responder's unicast answer", func() bool { return got.count(inst) > 0 })
	time.Sleep(300 * time.Millisecond) // answers on the other family, if any
	before := got.count(inst)

	for range 3 {
		question(knownAnswer{inst, mdnsTTL})
	}
	time.Sleep(time.Second)
	if n := got.count(inst) - before; n != 0 {
		t.Fatalf("%d answers to questions that knew the advert, want none", n)
	}

	// Known with a TTL under half of the advert's: it answers again.
	question(knownAnswer{inst, mdnsTTL/2 - 1})
	testutil.Eventually(t, 5*time.Second, "an answer to a stale known answer", func() bool { return got.count(inst) > before })
}

// Nodes of earlier releases and other libp2p programs browse with libp2p's
// mDNS: they and a node find each other.
func TestMDNSWithLibp2pMDNS(t *testing.T) {
	netns.Require(t)
	cfg := mdnsConfig(testKey)
	a := startNode(t, cfg)
	nw, err := pnet.FromPassphrase(testKey)
	if err != nil {
		t.Fatal(err)
	}
	b := plainHost(t, testKey, "/ip4/127.0.0.1/tcp/0")
	found := make(chan peer.AddrInfo, 16)
	old := mdns.NewMdnsService(b, nw.ServiceTag(), notifeeFunc(func(ai peer.AddrInfo) {
		select {
		case found <- ai:
		default:
		}
	}))
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Close() })

	// b finds a (a's responder answers libp2p's multicast question) ...
	timeout := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case ai := <-found:
			seen = ai.ID == a.ID()
		case <-timeout:
			t.Fatal("libp2p's mDNS did not find the node")
		}
	}
	// ... and a finds b (b's responder answers a's unicast question): it
	// connects.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if ps := a.Peers(); len(ps) != 1 || ps[0] != b.ID() {
		t.Fatalf("peers %v, want %s", ps, b.ID())
	}
}

type notifeeFunc func(peer.AddrInfo)

func (f notifeeFunc) HandlePeerFound(ai peer.AddrInfo) { f(ai) }

// A formed mesh's questions bring no answers: each node knows its peers'
// adverts, and asking again costs one packet.
func TestMDNSFormedMeshIsQuiet(t *testing.T) {
	netns.Require(t)
	ns, _ := formMesh(t, 4, testKey)
	for _, n := range ns {
		n.mdns.askOnce() // a peer that dialled us first answers this once
	}
	time.Sleep(500 * time.Millisecond)
	before := make([]uint64, len(ns))
	for i, n := range ns {
		before[i] = n.mdns.answers.Load()
	}
	for range 3 {
		for _, n := range ns {
			n.mdns.askOnce()
		}
	}
	time.Sleep(time.Second)
	for i, n := range ns {
		if d := n.mdns.answers.Load() - before[i]; d != 0 {
			t.Errorf("node %d: %d adverts answered in a formed mesh, want 0", i, d)
		}
	}
}

// fixedMesh is an mdnsMesh of one node that knows no member and does not
// count as alone.
type fixedMesh struct{}

func (fixedMesh) alone() bool         { return false }
func (fixedMesh) member(peer.ID) bool { return false }
func (fixedMesh) size() int           { return 1 }

// While a node has no peer, its questions double their interval, at most
// mdnsAloneAsk apart; once it has one, they come once per mdnsAskCap of
// the mesh's size (jittered by the factor given).
func TestMDNSDue(t *testing.T) {
	at := time.Unix(1000, 0)
	for _, c := range []struct {
		interval time.Duration
		f        float64
		alone    bool
		nodes    int
		after    time.Duration
	}{
		{time.Second, 1, true, 1, time.Second},
		{8 * time.Second, 1, true, 1, mdnsAloneAsk},
		{time.Second, 1, false, 2, time.Minute},
		{time.Second, 0.75, false, 2, 45 * time.Second},
		{2 * time.Second, 1, false, 100, 5 * time.Minute},
		{2 * time.Second, 1.25, false, 1000, 6*time.Minute + 15*time.Second},
	} {
		if got := mdnsDue(at, c.interval, c.f, c.alone, c.nodes).Sub(at); got != c.after {
			t.Errorf("after a question on a %v schedule (jitter %v, alone %v, %d nodes): the next %v later, want %v",
				c.interval, c.f, c.alone, c.nodes, got, c.after)
		}
	}
}
