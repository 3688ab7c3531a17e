package node

import (
	"errors"
	"log/slog"
	"net"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// mDNS's multicast groups (RFC 6762 §3).
var (
	mdnsGroup4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	mdnsGroup6 = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353}
)

// mdnsAsker sends questions to mDNS's groups from sockets of its own (an
// ephemeral port, no group joined), on every multicast interface, and reads
// the unicast answers they bring.
type mdnsAsker struct {
	log   *slog.Logger
	conns []*net.UDPConn
	p4    *ipv4.PacketConn // nil without IPv4
	p6    *ipv6.PacketConn // nil without IPv6

	closeOnce sync.Once
}

// newMDNSAsker opens the IPv4 and IPv6 sockets; one of them is enough.
func newMDNSAsker(log *slog.Logger) (*mdnsAsker, error) {
	a := &mdnsAsker{log: log}
	var errs []error
	if c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero}); err == nil {
		a.p4 = ipv4.NewPacketConn(c)
		_ = a.p4.SetMulticastTTL(255) // RFC 6762 §11
		_ = a.p4.SetMulticastLoopback(true)
		a.conns = append(a.conns, c)
	} else {
		errs = append(errs, err)
	}
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified}); err == nil {
		a.p6 = ipv6.NewPacketConn(c)
		_ = a.p6.SetMulticastHopLimit(255)
		_ = a.p6.SetMulticastLoopback(true)
		a.conns = append(a.conns, c)
	} else {
		errs = append(errs, err)
	}
	if len(a.conns) == 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// send multicasts a question on every interface that is up and does
// multicast. Failures (an interface without an address of a family) are
// logged at Debug: the question goes where it can.
func (a *mdnsAsker) send(q []byte) {
	ifaces, err := net.Interfaces()
	if err != nil {
		a.log.Debug("node: mDNS: no interfaces", "err", err)
		return
	}
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		if a.p4 != nil {
			err := a.p4.SetMulticastInterface(&ifi)
			if err == nil {
				_, err = a.p4.WriteTo(q, nil, mdnsGroup4)
			}
			if err != nil {
				a.log.Debug("node: mDNS question not sent", "iface", ifi.Name, "family", 4, "err", err)
			}
		}
		if a.p6 != nil {
			err := a.p6.SetMulticastInterface(&ifi)
			if err == nil {
				_, err = a.p6.WriteTo(q, nil, mdnsGroup6)
			}
			if err != nil {
				a.log.Debug("node: mDNS question not sent", "iface", ifi.Name, "family", 6, "err", err)
			}
		}
	}
}

// read hands every packet that arrives on c to take, until c is closed.
func (a *mdnsAsker) read(c *net.UDPConn, take func([]byte)) {
	buf := make([]byte, mdnsReadBuffer)
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			a.log.Debug("node: mDNS read failed", "err", err)
			continue
		}
		take(buf[:n])
	}
}

// close closes the sockets, which ends the readers. Safe to call twice.
func (a *mdnsAsker) close() {
	a.closeOnce.Do(func() {
		for _, c := range a.conns {
			_ = c.Close()
		}
	})
}
