//go:build !linux

package node

import (
	"errors"
	"net"
	"time"
)

// kernelKeepalive reports whether tcpAlive replaces yamux's keepalive on
// this system: only Linux has TCP_USER_TIMEOUT, so elsewhere yamux pings.
const kernelKeepalive = false

func (a tcpAlive) apply(net.Conn) error { return errors.ErrUnsupported }

func lastHeard(tcpConn) (time.Duration, error) { return 0, errors.ErrUnsupported }
