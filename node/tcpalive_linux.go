package node

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// kernelKeepalive reports whether tcpAlive replaces yamux's keepalive on
// this system: Linux has TCP_USER_TIMEOUT.
const kernelKeepalive = true

// apply sets a's keepalive and user timeout on c, a TCP connection.
func (a tcpAlive) apply(c net.Conn) error {
	tc, ok := c.(tcpConn)
	if !ok {
		return fmt.Errorf("%T is not a TCP connection", c)
	}
	if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: a.idle, Interval: a.interval, Count: a.count}); err != nil {
		return err
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(a.userTimeout.Milliseconds()))
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("TCP_USER_TIMEOUT: %w", serr)
	}
	return nil
}

var _ tcpConn = (*net.TCPConn)(nil)

// lastHeard returns how long ago c's kernel last heard from the peer: an
// acknowledgement (of data, or of a keepalive probe) or data (TCP_INFO's
// last_ack_recv and last_data_recv; the kernel's keepalive counts both);
// an error once c is closed.
func lastHeard(c tcpConn) (time.Duration, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, ierr
	}
	return time.Duration(min(info.Last_ack_recv, info.Last_data_recv)) * time.Millisecond, nil
}
