package netconf

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Apply brings the interfaces up and installs the address and route. An address or route that
// already exists (EEXIST) counts as done, so Apply can run twice.
func Apply(ctx context.Context, c Config) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netconf: netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netconf: bind: %w", err)
	}
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netconf: receive timeout: %w", err)
	}
	var seq uint32
	do := func(what string, msg []byte, tolerateExist bool) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("netconf: %s: %w", what, err)
		}
		if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("netconf: %s: send: %w", what, err)
		}
		buf := make([]byte, 8192)
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("netconf: %s: receive: %w", what, err)
		}
		errno, err := parseAck(buf[:n], seq)
		if err != nil {
			return fmt.Errorf("netconf: %s: %w", what, err)
		}
		if errno == 0 || (tolerateExist && errno == unix.EEXIST) {
			return nil
		}
		return &ErrKernel{Request: what, Errno: errno}
	}
	if c.Loopback {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return fmt.Errorf("netconf: %w", err)
		}
		seq++
		if err := do("lo up", linkUp(seq, lo.Index), false); err != nil {
			return err
		}
	}
	ifc, err := net.InterfaceByName(c.Interface)
	if err != nil {
		return fmt.Errorf("netconf: %w", err)
	}
	seq++
	if err := do(c.Interface+" up", linkUp(seq, ifc.Index), false); err != nil {
		return err
	}
	seq++
	msg, err := addAddr(seq, ifc.Index, c.Address)
	if err != nil {
		return err
	}
	if err := do("address "+c.Address.String(), msg, true); err != nil {
		return err
	}
	if !c.Gateway.IsValid() {
		return nil
	}
	seq++
	msg, err = addDefaultRoute(seq, ifc.Index, c.Gateway)
	if err != nil {
		return err
	}
	return do("default route via "+c.Gateway.String(), msg, true)
}
