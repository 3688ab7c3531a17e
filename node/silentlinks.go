package node

import (
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Links silent past the user timeout.
//
// The kernel declares a silent connection dead TCP_USER_TIMEOUT after it
// last heard from the peer, but only while the connection is idle: once
// data waits for an acknowledgement, keepalive probes stop and the user
// timeout counts from that data's first transmission. A node that loses
// one link announces the loss on all its others, so when a partition cut
// many links at once, the first noticed (about 8 s after the cut, with
// the defaults) sent an announcement down every other cut link, and each
// of those was declared dead 8 s after that: the small side of a
// partition of 10 in 50 still saw the other side 16 s after the cut.
//
// So the membership's sweep (run after every lost peer, and every
// sweepIdle) asks the kernel when each connection last heard from the
// peer (TCP_INFO's last_ack_recv and last_data_recv: an acknowledgement,
// a probe's answer or data), and closes a connection silent for the user
// timeout, as the kernel does with an idle one (Stats.SilentClosed). A
// live peer's kernel answers the probes and acknowledges data even when
// its process is starved of CPU, so this declares dead no link the kernel
// would keep idle.

// tcpConns holds the node's TCP connections (set up by tcpAlive), by
// their addresses, for silent.
type tcpConns struct {
	limit time.Duration // the user timeout

	mu sync.Mutex
	by map[string]tcpConn
}

func newTCPConns(limit time.Duration) *tcpConns {
	return &tcpConns{limit: limit, by: map[string]tcpConn{}}
}

// connKey names a connection by its two ends.
func connKey(local, remote ma.Multiaddr) string {
	return local.String() + " " + remote.String()
}

// add records c (a connection tcpAlive set up).
func (r *tcpConns) add(c manet.Conn) {
	tc, ok := c.(tcpConn)
	if r == nil || !ok {
		return
	}
	k := connKey(c.LocalMultiaddr(), c.RemoteMultiaddr())
	r.mu.Lock()
	r.by[k] = tc
	r.mu.Unlock()
}

// addressed is what silent needs of a connection: its two ends.
type addressed interface {
	LocalMultiaddr() ma.Multiaddr
	RemoteMultiaddr() ma.Multiaddr
}

// silent returns the connections of conns whose peer has not been heard
// from for the user timeout, and forgets the recorded connections that
// are closed.
func silent[C addressed](r *tcpConns, conns []C) []C {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	quiet := map[string]bool{}
	for k, tc := range r.by {
		since, err := lastHeard(tc)
		if err != nil { // closed
			delete(r.by, k)
			continue
		}
		if since >= r.limit {
			quiet[k] = true
		}
	}
	var out []C
	if len(quiet) == 0 {
		return out
	}
	for _, c := range conns {
		if quiet[connKey(c.LocalMultiaddr(), c.RemoteMultiaddr())] {
			out = append(out, c)
		}
	}
	return out
}
