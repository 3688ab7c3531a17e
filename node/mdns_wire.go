package node

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrMDNSPacket is wrapped by the errors of parseAdverts: an mDNS packet
// that is not a well-formed answer.
var ErrMDNSPacket = errors.New("node: malformed mDNS packet")

// qClassUnicast is the top bit of a question's class: "answer me by
// unicast" (RFC 6762 §5.4).
const qClassUnicast = 1 << 15

// knownAnswer is an advert the asker has already: its instance's full name
// and the TTL it was given.
type knownAnswer struct {
	instance string
	ttl      uint32
}

// advert is one peer's answer: its instance's full name, the TTL of its
// PTR record (0: it is going away), and the multiaddrs of its TXT records.
type advert struct {
	instance string
	ttl      uint32
	addrs    []ma.Multiaddr
}

// serviceFQDN returns "<service>.<domain>.", the name asked for.
func serviceFQDN(service, domain string) string {
	return strings.Trim(service, ".") + "." + strings.Trim(domain, ".") + "."
}

// instanceFQDN returns "<instance>.<service>.<domain>.", as zeroconf names
// an advert.
func instanceFQDN(instance, service, domain string) string {
	return strings.Trim(instance, ".") + "." + serviceFQDN(service, domain)
}

// buildQuestion packs a question for the service's instances that asks for
// unicast answers and lists known as known answers, as many as fit in one
// mDNS packet (those left out only answer again).
func buildQuestion(service, domain string, known []knownAnswer) ([]byte, error) {
	name := serviceFQDN(service, domain)
	m := new(dns.Msg)
	m.Id = 0 // RFC 6762 §18.1
	m.RecursionDesired = false
	m.Compress = true
	m.Question = []dns.Question{{Name: name, Qtype: dns.TypePTR, Qclass: dns.ClassINET | qClassUnicast}}
	for _, k := range known {
		m.Answer = append(m.Answer, &dns.PTR{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: k.ttl},
			Ptr: k.instance,
		})
	}
	for {
		b, err := m.Pack()
		if err != nil {
			return nil, fmt.Errorf("node: pack mDNS question: %w", err)
		}
		if len(b) <= mdnsMaxPacket || len(m.Answer) == 0 {
			return b, nil
		}
		// Drop about the excess, at least one answer, and pack again.
		per := max(1, len(b)/len(m.Answer))
		m.Answer = m.Answer[:len(m.Answer)-min(len(m.Answer), 1+(len(b)-mdnsMaxPacket)/per)]
	}
}

// parseAdverts returns the adverts of the service in an mDNS answer: each
// PTR record of the service names an instance, whose TXT records
// ("dnsaddr=<multiaddr>", libp2p's format) give its addresses. Records of
// other names, TXT strings that are not multiaddrs and instances without
// any address are left out; a packet that does not parse, or is not an
// answer, is an error wrapping ErrMDNSPacket.
func parseAdverts(packet []byte, service, domain string) ([]advert, error) {
	var m dns.Msg
	if err := m.Unpack(packet); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMDNSPacket, err)
	}
	if !m.Response {
		return nil, fmt.Errorf("%w: not an answer", ErrMDNSPacket)
	}
	name := serviceFQDN(service, domain)
	var out []advert
	index := map[string]int{} // lower-cased instance name → out's index
	for _, rr := range append(m.Answer, m.Extra...) {
		ptr, ok := rr.(*dns.PTR)
		if !ok || !strings.EqualFold(ptr.Hdr.Name, name) {
			continue
		}
		key := strings.ToLower(ptr.Ptr)
		if _, dup := index[key]; dup || !strings.HasSuffix(key, "."+strings.ToLower(name)) {
			continue
		}
		index[key] = len(out)
		out = append(out, advert{instance: ptr.Ptr, ttl: ptr.Hdr.Ttl})
	}
	for _, rr := range append(m.Answer, m.Extra...) {
		txt, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		i, ok := index[strings.ToLower(txt.Hdr.Name)]
		if !ok {
			continue
		}
		for _, s := range txt.Txt {
			if len(out[i].addrs) == maxAdvertAddrs /* candidates.go */ || !strings.HasPrefix(s, mdnsTXTPrefix) {
				continue
			}
			if a, err := ma.NewMultiaddr(s[len(mdnsTXTPrefix):]); err == nil {
				out[i].addrs = append(out[i].addrs, a)
			}
		}
	}
	kept := out[:0]
	for _, ad := range out {
		if len(ad.addrs) > 0 {
			kept = append(kept, ad)
		}
	}
	return kept, nil
}
