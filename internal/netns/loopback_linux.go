//go:build linux

package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// setupLoopback does, over rtnetlink, what
//
//	ip link set lo up multicast on
//	ip route add 224.0.0.0/4 dev lo
//
// does, so that the child needs no iproute2.
func setupLoopback() error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo: %w", err)
	}
	s, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening rtnetlink: %w", err)
	}
	defer syscall.Close(s)
	if err := syscall.Bind(s, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return fmt.Errorf("binding rtnetlink: %w", err)
	}

	const flags = syscall.IFF_UP | syscall.IFF_MULTICAST
	link := make([]byte, syscall.SizeofIfInfomsg) // ifinfomsg
	link[0] = syscall.AF_UNSPEC
	binary.NativeEndian.PutUint32(link[4:], uint32(lo.Index))
	binary.NativeEndian.PutUint32(link[8:], flags)  // ifi_flags
	binary.NativeEndian.PutUint32(link[12:], flags) // ifi_change
	if err := request(s, syscall.RTM_NEWLINK, 0, link, 1); err != nil {
		return fmt.Errorf("setting lo up with multicast: %w", err)
	}

	route := make([]byte, syscall.SizeofRtMsg) // rtmsg
	route[0] = syscall.AF_INET
	route[1] = 4 // rtm_dst_len: 224.0.0.0/4
	route[4] = syscall.RT_TABLE_MAIN
	route[5] = syscall.RTPROT_BOOT
	route[6] = syscall.RT_SCOPE_LINK
	route[7] = syscall.RTN_UNICAST
	route = appendAttr(route, syscall.RTA_DST, []byte{224, 0, 0, 0})
	route = appendAttr(route, syscall.RTA_OIF, binary.NativeEndian.AppendUint32(nil, uint32(lo.Index)))
	err = request(s, syscall.RTM_NEWROUTE, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, route, 2)
	if err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("routing 224.0.0.0/4 to lo: %w", err)
	}
	return nil
}

// appendAttr appends one rtattr, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	n := syscall.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for n%4 != 0 {
		b = append(b, 0)
		n++
	}
	return b
}

// request sends one rtnetlink request and waits for its acknowledgement.
func request(s int, typ, flags uint16, payload []byte, seq uint32) error {
	msg := make([]byte, syscall.NLMSG_HDRLEN, syscall.NLMSG_HDRLEN+len(payload))
	binary.NativeEndian.PutUint32(msg[0:], uint32(syscall.NLMSG_HDRLEN+len(payload)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_ACK|flags)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	msg = append(msg, payload...)
	if err := syscall.Sendto(s, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := syscall.Recvfrom(s, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != syscall.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("short netlink error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return syscall.Errno(-code)
			}
			return nil
		}
	}
}
