package node

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/zeroconf/v2"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/reflectmesh/reflect/internal/coarse"
)

// LAN discovery by mDNS (RFC 6762), made to stay cheap in a mesh of many
// nodes.
//
// libp2p's p2p/discovery/mdns asks through zeroconf's browser: every node
// multicasts a question at start and again 4 s to 60 s apart, and every
// node answers every question by multicast, so that each question brings N
// answers that all N nodes receive and parse: N³ packets per round. With
// 35 nodes on 2 cores that was about a third of the whole mesh's CPU while
// idle (issue 16's profile), and more while the mesh formed.
//
// So a node keeps zeroconf's responder, with libp2p's advert (the same
// service name, instance and TXT records: nodes of older releases and
// other libp2p programs still find it, and it finds them), and asks its own
// way:
//
//   - its question asks for unicast answers (the QU bit), sent from a
//     socket of its own: only the asker receives and parses them;
//   - it asks in both families on every interface. Every responder listens
//     on both, so it parses each question twice; asking in one family was
//     tried and saved no measured formation time at 100 nodes (BENCHMARKS.md,
//     "Links watched by the kernel");
//   - it lists as known answers its own advert and those of the members of
//     its mesh (connected, or announced by a node it reaches: OnPeer's
//     members): their responders stay silent (known-answer suppression,
//     which zeroconf's responder implements), so in a formed mesh, full
//     or partial, a question costs one packet and no answer, and a peer
//     that was lost answers again;
//   - it asks at start, then 1 s, 2 s, 4 s … apart while it has no peer
//     (never more than 5 s apart), and once it has one, once per
//     mdnsAskCap (a minute, in a mesh of more than 20 nodes a minute per
//     20 nodes, at most five, so that every node receives about 20
//     questions a minute up to 100 nodes), jittered by half either way
//     (nodes started together ask apart): peer exchange
//     (exchange.go) brings it the other members, and every question in a
//     mesh of 100 is parsed by 100 responders, each reading some 90 known
//     answers, and leaves them garbage to collect. (Doubling from 1 s up
//     to the cap once peered too, and 15 s at least, the questions came
//     in waves after a mesh of 100 formed: 11 of 26 windows of 10 s over
//     its first four and a half idle minutes took 11-32 % of a core, with
//     783 garbage collections against 214; asking once per cap, 2
//     windows, 10 and 12 %.)
//
// Every peer that answers is handed to the membership as a candidate
// (candidates.go): mDNS is an unauthenticated hint, like before.
const (
	mdnsDomain     = "local"
	mdnsTXTPrefix  = "dnsaddr="
	mdnsTTL        = 3200 // seconds: zeroconf's default, set explicitly so known answers match it
	mdnsFirstAsk   = time.Second
	mdnsMaxAsk     = time.Minute
	mdnsAskNodes   = 20 // mdnsMaxAsk per this many nodes of the mesh
	mdnsAskMaxMul  = 5  // at most this many times mdnsMaxAsk
	mdnsAloneAsk   = 5 * time.Second
	mdnsMaxPacket  = 9000 - 48 // RFC 6762 §17, less the IPv6 and UDP headers
	mdnsReadBuffer = 65536
)

// mdnsService advertises this node and asks for the others under the
// mesh's service tag.
type mdnsService struct {
	host     host.Host
	service  string // "<tag>._udp": the service name (pnet's ServiceTag)
	instance string // our advert's instance label, random like libp2p's
	found    func(peer.AddrInfo)
	mesh     mdnsMesh
	log      *slog.Logger

	server *zeroconf.Server
	ask    *mdnsAsker
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	known map[string]knownAdvert // instance FQDN → what its last answer said

	answers atomic.Uint64 // adverts of peers received

	// firstAsk is the interval after the first question (tests change it).
	firstAsk time.Duration
}

// knownAdvert is a peer's advert as last answered.
type knownAdvert struct {
	peer peer.ID
	ttl  uint32
	at   time.Time
}

// mdnsMesh is what the service asks the membership.
type mdnsMesh interface {
	alone() bool           // no peer connected
	member(p peer.ID) bool // p is a member of our mesh (known answers)
	size() int             // the nodes of the mesh we know of, ourselves included
}

func newMDNS(h host.Host, service string, found func(peer.AddrInfo), mesh mdnsMesh, log *slog.Logger) *mdnsService {
	return &mdnsService{
		host:     h,
		service:  service,
		instance: randomLabel(32 + rand.IntN(32)),
		found:    found,
		mesh:     mesh,
		log:      log,
		known:    map[string]knownAdvert{},
		firstAsk: mdnsFirstAsk,
	}
}

// Start registers the advert, opens the asking sockets and starts asking.
func (s *mdnsService) Start() error {
	txts, ips := s.advert()
	if len(ips) == 0 {
		return errors.New("no IP address to advertise")
	}
	server, err := zeroconf.RegisterProxy(s.instance, s.service, mdnsDomain, 4001, // libp2p reads only the TXT records
		s.instance, ips, txts, nil, zeroconf.TTL(mdnsTTL))
	if err != nil {
		return err
	}
	ask, err := newMDNSAsker(s.log)
	if err != nil {
		server.Shutdown()
		return err
	}
	s.server, s.ask = server, ask
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.askLoop(ctx) })
	for _, c := range ask.conns {
		s.wg.Go(func() { ask.read(c, s.answered) })
	}
	return nil
}

// Close stops asking and answering, and waits for its goroutines. Safe to
// call twice.
func (s *mdnsService) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	if s.server != nil {
		s.server.Shutdown()
		s.server = nil
	}
	if s.ask != nil {
		s.ask.close()
	}
	s.wg.Wait()
	return nil
}

// advert returns the TXT records (dnsaddr=<addr>/p2p/<id>, one per address
// mDNS can carry) and the IP addresses (one IPv4, one IPv6) of our advert,
// as libp2p's mDNS builds them.
func (s *mdnsService) advert() (txts, ips []string) {
	addrs, err := s.host.Network().InterfaceListenAddresses()
	if err != nil {
		return nil, nil
	}
	var ip4, ip6 string
	for _, a := range addrs {
		if !mdnsAdvertisable(a) {
			continue
		}
		txts = append(txts, mdnsTXTPrefix+a.Encapsulate(ma.StringCast("/p2p/"+s.host.ID().String())).String())
		first, _ := ma.SplitFirst(a)
		switch {
		case ip4 == "" && first.Protocol().Code == ma.P_IP4:
			ip4 = first.Value()
		case ip6 == "" && first.Protocol().Code == ma.P_IP6:
			ip6 = first.Value()
		}
	}
	for _, ip := range []string{ip4, ip6} {
		if ip != "" {
			ips = append(ips, ip)
		}
	}
	return txts, ips
}

// askLoop asks at once, then further and further apart (see the top).
func (s *mdnsService) askLoop(ctx context.Context) {
	interval := s.firstAsk
	t := time.NewTimer(0)
	defer t.Stop()
	var last time.Time // the last question
	f := 1.0           // this interval's jitter
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if !last.IsZero() {
			alone := s.mesh.alone()
			if due := mdnsDue(last, interval, f, alone, s.mesh.size()); now.Before(due) {
				t.Reset(askWait(due.Sub(now), alone)) // the mesh grew meanwhile: its cap with it
				continue
			}
		}
		s.askOnce()
		last = now
		f = 0.5 + rand.Float64() // half either way: nodes started together ask apart
		alone, nodes := s.mesh.alone(), s.mesh.size()
		t.Reset(askWait(mdnsDue(last, interval, f, alone, nodes).Sub(now), alone))
		interval = min(2*interval, mdnsAskCap(nodes))
	}
}

// askWait is how long askLoop sleeps until the question due in d: d while
// the node is alone (it is looking for a peer), else d to the next whole
// second with the node's other slow timers (internal/coarse).
func askWait(d time.Duration, alone bool) time.Duration {
	if alone {
		return d
	}
	return coarse.Delay(d)
}

// mdnsDue returns when the question after one asked at last is due, on a
// schedule at interval, jittered by the factor f: interval later, at most
// mdnsAloneAsk while the node has no peer, and mdnsAskCap for a mesh of
// nodes once it has one (see the top).
func mdnsDue(last time.Time, interval time.Duration, f float64, alone bool, nodes int) time.Time {
	wait := mdnsAskCap(nodes)
	if alone {
		wait = min(interval, mdnsAloneAsk)
	}
	return last.Add(time.Duration(f * float64(wait)))
}

// mdnsAskCap is the longest interval between questions in a mesh of n
// nodes: mdnsMaxAsk per mdnsAskNodes nodes, at most mdnsAskMaxMul times.
func mdnsAskCap(n int) time.Duration {
	return mdnsMaxAsk * time.Duration(min(mdnsAskMaxMul, max(1, (n+mdnsAskNodes-1)/mdnsAskNodes)))
}

// askOnce sends one question, with our known answers.
func (s *mdnsService) askOnce() {
	q, err := buildQuestion(s.service, mdnsDomain, s.knownAnswers())
	if err != nil {
		s.log.Debug("node: mDNS question not built", "err", err)
		return
	}
	s.ask.send(q)
}

// knownAnswers returns the instances whose answers we need not hear: ours,
// and those of the members of our mesh, while their last answer is less
// than half its TTL old (the responder checks that too). A question holds
// as many as fit in a packet (buildQuestion drops the last): about a
// hundred, ours and the connected peers' first, then the others in a
// different order each time, so that in a larger mesh a far member
// answers one question in a few, not every one.
func (s *mdnsService) knownAnswers() []knownAnswer {
	own := knownAnswer{instance: instanceFQDN(s.instance, s.service, mdnsDomain), ttl: mdnsTTL}
	out := []knownAnswer{own}
	var far []knownAnswer
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for inst, k := range s.known {
		if now.Sub(k.at) > time.Duration(k.ttl)*time.Second/2 {
			delete(s.known, inst)
			continue
		}
		switch {
		case s.host.Network().Connectedness(k.peer) == network.Connected:
			out = append(out, knownAnswer{instance: inst, ttl: k.ttl})
		case s.mesh.member(k.peer):
			far = append(far, knownAnswer{instance: inst, ttl: k.ttl})
		}
	}
	rand.Shuffle(len(far), func(i, j int) { far[i], far[j] = far[j], far[i] })
	return append(out, far...)
}

// answered takes one received packet: every advert of our service in it
// (but ours) is a candidate.
func (s *mdnsService) answered(packet []byte) {
	ads, err := parseAdverts(packet, s.service, mdnsDomain)
	if err != nil {
		s.log.Debug("node: mDNS answer ignored", "err", err)
		return
	}
	now := time.Now()
	for _, ad := range ads {
		infos, err := peer.AddrInfosFromP2pAddrs(ad.addrs...)
		if err != nil || len(infos) != 1 || infos[0].ID == s.host.ID() {
			continue // several peers in one advert: not libp2p's; or our own
		}
		s.mu.Lock()
		if ad.ttl == 0 {
			delete(s.known, ad.instance)
		} else {
			s.known[ad.instance] = knownAdvert{peer: infos[0].ID, ttl: ad.ttl, at: now}
		}
		s.mu.Unlock()
		if ad.ttl != 0 {
			s.answers.Add(1)
			s.found(infos[0])
		}
	}
}

// randomLabel returns n random lowercase letters and digits, the shape of
// libp2p's instance names.
func randomLabel(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[rand.IntN(len(alphabet))])
	}
	return b.String()
}
