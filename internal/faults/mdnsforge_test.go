package faults

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func signalNotify(c chan os.Signal) { signal.Notify(c, os.Interrupt) }

// mdnsGroup is where mDNS answers go (IPv4).
var mdnsGroup = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}

// DNS record types and classes used by an mDNS service advert.
const (
	typeA   = 1
	typePTR = 12
	typeTXT = 16
	typeSRV = 33
	classIN = 1
	flush   = 0x8000 // cache-flush bit: a unique record
	ttl     = 120
)

// dnsName appends name (dot-separated, without the final dot) in DNS label
// form.
func dnsName(b []byte, name string) []byte {
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// rr appends one resource record.
func rr(b []byte, name string, typ, class uint16, rdata []byte) []byte {
	b = dnsName(b, name)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, class)
	b = binary.BigEndian.AppendUint32(b, ttl)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

// forgedAdvert is one fake peer's records: PTR service → instance, SRV and
// TXT of the instance (the TXT carries the dnsaddr libp2p reads), and an A
// record for its host name (zeroconf wants one). It returns the records and
// their count.
func forgedAdvert(service, ip string, port int, id peer.ID) ([]byte, uint16) {
	var label [8]byte
	_, _ = rand.Read(label[:])
	inst := hex.EncodeToString(label[:])
	svc := service + ".local"
	full := inst + "." + svc
	hostName := inst + ".local"

	var b []byte
	b = rr(b, svc, typePTR, classIN, dnsName(nil, full))
	srv := binary.BigEndian.AppendUint16(nil, 0)
	srv = binary.BigEndian.AppendUint16(srv, 0)
	srv = binary.BigEndian.AppendUint16(srv, uint16(port))
	b = rr(b, full, typeSRV, classIN|flush, dnsName(srv, hostName))
	txt := fmt.Sprintf("dnsaddr=/ip4/%s/tcp/%d/p2p/%s", ip, port, id)
	b = rr(b, full, typeTXT, classIN|flush, append([]byte{byte(len(txt))}, txt...))
	b = rr(b, hostName, typeA, classIN|flush, net.ParseIP(ip).To4())
	return b, 4
}

// forgedPackets builds mDNS responses advertising count fresh fake peers,
// four to a packet (about 1.3 KB, under the MTU).
func forgedPackets(service, ip string, port, count int) ([][]byte, error) {
	var pkts [][]byte
	for i := 0; i < count; i += 4 {
		var body []byte
		var n uint16
		for j := i; j < min(i+4, count); j++ {
			k, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				return nil, err
			}
			id, err := peer.IDFromPrivateKey(k)
			if err != nil {
				return nil, err
			}
			recs, c := forgedAdvert(service, ip, port, id)
			body = append(body, recs...)
			n += c
		}
		// Header: id 0, response + authoritative, no questions, n answers.
		hdr := []byte{0, 0, 0x84, 0, 0, 0}
		hdr = binary.BigEndian.AppendUint16(hdr, n)
		hdr = append(hdr, 0, 0, 0, 0)
		pkts = append(pkts, append(hdr, body...))
	}
	return pkts, nil
}

// TestHelperForgeMDNS is not a test: TestForgedMDNS runs the test binary as
// the forger. Every 2 s it advertises REFLECT_FORGE_PEERS fresh fake peers
// under the service REFLECT_FORGE_SERVICE, each at REFLECT_FORGE_IP and a
// TCP port of its own that accepts connections and never answers, and
// answers every mDNS question with as many, until SIGINT or
// REFLECT_HELPER_FOR.
func TestHelperForgeMDNS(t *testing.T) {
	service := os.Getenv("REFLECT_FORGE_SERVICE")
	if service == "" {
		t.Skip("helper process only")
	}
	ip := os.Getenv("REFLECT_FORGE_IP")
	count, err := strconv.Atoi(os.Getenv("REFLECT_FORGE_PEERS"))
	if err != nil || count <= 0 || count > 5000 || net.ParseIP(ip).To4() == nil {
		t.Fatalf("REFLECT_FORGE_PEERS %q, REFLECT_FORGE_IP %q", os.Getenv("REFLECT_FORGE_PEERS"), ip)
	}
	ctx, cancel := helperUntil("REFLECT_HELPER_FOR")
	defer cancel()

	// The tar pit: accept, hold (at most 4,096), never answer.
	ln, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	var mu sync.Mutex
	var held []net.Conn
	accepted := 0
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			if len(held) < 4096 {
				held = append(held, c)
			} else {
				c.Close()
			}
			mu.Unlock()
		}
	})
	defer func() {
		ln.Close()
		wg.Wait()
		for _, c := range held {
			c.Close()
		}
	}()

	conn, err := net.DialUDP("udp4", nil, mdnsGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Nodes ask for unicast answers and read nothing else: the forger
	// answers every question too, with fresh forged adverts.
	group, err := net.ListenMulticastUDP("udp4", nil, mdnsGroup)
	if err != nil {
		t.Fatal(err)
	}
	var answered atomic.Int64
	wg.Go(func() {
		buf := make([]byte, 9000)
		for {
			n, from, err := group.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n < 12 || buf[2]&0x80 != 0 { // an answer, not a question
				continue
			}
			pkts, err := forgedPackets(service, ip, port, count)
			if err != nil {
				return
			}
			for _, p := range pkts {
				_, _ = group.WriteToUDP(p, from)
				time.Sleep(200 * time.Microsecond)
			}
			answered.Add(1)
		}
	})
	defer group.Close()
	fmt.Println("helper started")
	rounds, sent, packets := 0, 0, 0
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		pkts, err := forgedPackets(service, ip, port, count)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			if _, err := conn.Write(p); err != nil {
				t.Fatalf("sending an advert: %v", err)
			}
			time.Sleep(200 * time.Microsecond) // ~275 packets in ~60 ms: no socket buffer overflows here
		}
		rounds++
		sent += count
		packets += len(pkts)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	group.Close()
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("helper: %d rounds, %d forged adverts in %d packets, %d questions answered with as many; the tar pit accepted %d dials\n",
		rounds, sent, packets, answered.Load(), accepted)
}
