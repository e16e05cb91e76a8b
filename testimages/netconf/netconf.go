// Package netconf configures a network interface over rtnetlink: link up, one IPv4 address,
// one default route. It is what the test OS init needs to bring up QEMU's user network
// (10.0.2.15/24 via 10.0.2.2) without carrying iproute2 or busybox into the image.
//
// Wire format (netlink(7), rtnetlink(7)): each request is an nlmsghdr (length, type, flags,
// sequence, port id) followed by a fixed family header (ifinfomsg, ifaddrmsg or rtmsg) and
// rtattr TLVs (16-bit length including the 4-byte header, 16-bit type, data padded to 4 bytes).
// Every request carries NLM_F_ACK; the kernel answers with an NLMSG_ERROR whose errno is 0 on
// success. Integers are in host byte order.
//
// The encoders are pure and tested anywhere; Apply needs Linux and CAP_NET_ADMIN.
package netconf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Linux rtnetlink constants (include/uapi/linux/rtnetlink.h, netlink.h, if_addr.h, if.h),
// spelled out so the encoders build on every platform.
const (
	nlmsgError   = 0x2
	rtmNewLink   = 16
	rtmNewAddr   = 20
	rtmNewRoute  = 24
	nlmFRequest  = 0x1
	nlmFAck      = 0x4
	nlmFExcl     = 0x200
	nlmFCreate   = 0x400
	afUnspec     = 0
	afInet       = 2
	iffUp        = 0x1
	ifaLocal     = 2
	ifaAddress   = 1
	rtaGateway   = 5
	rtaOif       = 4
	rtTableMain  = 254
	rtprotBoot   = 3
	rtScopeUniv  = 0
	rtScopeHost  = 254
	rtnUnicast   = 1
	nlmsgHdrLen  = 16
	nlmsgErrLen  = 4 + nlmsgHdrLen
	rtattrHdrLen = 4
)

// Config is what Apply sets up.
type Config struct {
	Interface string       // e.g. "eth0"
	Address   netip.Prefix // e.g. 10.0.2.15/24
	Gateway   netip.Addr   // e.g. 10.0.2.2; the zero Addr means no default route
	Loopback  bool         // also bring "lo" up
	_         struct{}     // keep the literal keyed
}

// ErrKernel is the kernel's refusal of a request; errors.As gives the errno.
type ErrKernel struct {
	Request string
	Errno   syscall.Errno
}

func (e *ErrKernel) Error() string { return fmt.Sprintf("netconf: %s: %v", e.Request, e.Errno) }

// Unwrap returns the errno, so errors.Is(err, syscall.EEXIST) works.
func (e *ErrKernel) Unwrap() error { return e.Errno }

func align4(n int) int { return (n + 3) &^ 3 }

func attr(typ uint16, data []byte) []byte {
	b := make([]byte, align4(rtattrHdrLen+len(data)))
	binary.NativeEndian.PutUint16(b[0:], uint16(rtattrHdrLen+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[rtattrHdrLen:], data)
	return b
}

func message(typ, flags uint16, seq uint32, body ...[]byte) []byte {
	n := nlmsgHdrLen
	for _, b := range body {
		n += len(b)
	}
	m := make([]byte, nlmsgHdrLen, n)
	binary.NativeEndian.PutUint32(m[0:], uint32(n))
	binary.NativeEndian.PutUint16(m[4:], typ)
	binary.NativeEndian.PutUint16(m[6:], flags|nlmFRequest|nlmFAck)
	binary.NativeEndian.PutUint32(m[8:], seq)
	for _, b := range body {
		m = append(m, b...)
	}
	return m
}

// linkUp encodes RTM_NEWLINK setting IFF_UP on interface index.
func linkUp(seq uint32, index int) []byte {
	ifi := make([]byte, 16)
	ifi[0] = afUnspec
	binary.NativeEndian.PutUint32(ifi[4:], uint32(index))
	binary.NativeEndian.PutUint32(ifi[8:], iffUp)
	binary.NativeEndian.PutUint32(ifi[12:], iffUp)
	return message(rtmNewLink, 0, seq, ifi)
}

// addAddr encodes RTM_NEWADDR for an IPv4 prefix on interface index.
func addAddr(seq uint32, index int, p netip.Prefix) ([]byte, error) {
	if !p.Addr().Is4() {
		return nil, fmt.Errorf("netconf: address %v is not IPv4", p)
	}
	ifa := make([]byte, 8)
	ifa[0] = afInet
	ifa[1] = byte(p.Bits())
	ifa[3] = rtScopeUniv
	binary.NativeEndian.PutUint32(ifa[4:], uint32(index))
	a := p.Addr().As4()
	return message(rtmNewAddr, nlmFCreate|nlmFExcl, seq, ifa, attr(ifaLocal, a[:]), attr(ifaAddress, a[:])), nil
}

// addDefaultRoute encodes RTM_NEWROUTE for 0.0.0.0/0 via gw out of interface index.
func addDefaultRoute(seq uint32, index int, gw netip.Addr) ([]byte, error) {
	if !gw.Is4() {
		return nil, fmt.Errorf("netconf: gateway %v is not IPv4", gw)
	}
	rt := make([]byte, 12)
	rt[0] = afInet
	rt[4] = rtTableMain
	rt[5] = rtprotBoot
	rt[6] = rtScopeUniv
	rt[7] = rtnUnicast
	g := gw.As4()
	oif := make([]byte, 4)
	binary.NativeEndian.PutUint32(oif, uint32(index))
	return message(rtmNewRoute, nlmFCreate|nlmFExcl, seq, rt, attr(rtaGateway, g[:]), attr(rtaOif, oif)), nil
}

// errNoAck reports a reply stream that ended without the acknowledgement.
var errNoAck = errors.New("netconf: no acknowledgement in reply")

// parseAck scans a netlink reply for the NLMSG_ERROR answering seq and returns its errno
// (0 for success).
func parseAck(b []byte, seq uint32) (syscall.Errno, error) {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return 0, fmt.Errorf("netconf: reply message length %d out of range (%d bytes left)", l, len(b))
		}
		typ := binary.NativeEndian.Uint16(b[4:])
		s := binary.NativeEndian.Uint32(b[8:])
		if typ == nlmsgError && s == seq {
			if l < nlmsgErrLen {
				return 0, fmt.Errorf("netconf: short error message of %d bytes", l)
			}
			code := int32(binary.NativeEndian.Uint32(b[nlmsgHdrLen:]))
			if code > 0 || code < -4095 {
				return 0, fmt.Errorf("netconf: error code %d out of range", code)
			}
			return syscall.Errno(-code), nil
		}
		next := align4(l)
		if next > len(b) {
			break
		}
		b = b[next:]
	}
	return 0, errNoAck
}
