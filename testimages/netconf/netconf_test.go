package netconf

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestEncoders(t *testing.T) {
	addr, err := addAddr(7, 2, netip.MustParsePrefix("10.0.2.15/24"))
	if err != nil {
		t.Fatal(err)
	}
	route, err := addDefaultRoute(8, 2, netip.MustParseAddr("10.0.2.2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		msg    []byte
		typ    uint16
		seq    uint32
		length int
	}{
		{name: "link up", msg: linkUp(6, 2), typ: rtmNewLink, seq: 6, length: 16 + 16},
		{name: "address", msg: addr, typ: rtmNewAddr, seq: 7, length: 16 + 8 + 8 + 8},
		{name: "route", msg: route, typ: rtmNewRoute, seq: 8, length: 16 + 12 + 8 + 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.msg) != tc.length {
				t.Fatalf("length %d, want %d", len(tc.msg), tc.length)
			}
			if got := binary.NativeEndian.Uint32(tc.msg[0:]); int(got) != tc.length {
				t.Fatalf("header length %d, want %d", got, tc.length)
			}
			if got := binary.NativeEndian.Uint16(tc.msg[4:]); got != tc.typ {
				t.Fatalf("type %d, want %d", got, tc.typ)
			}
			if got := binary.NativeEndian.Uint16(tc.msg[6:]); got&(nlmFRequest|nlmFAck) != nlmFRequest|nlmFAck {
				t.Fatalf("flags %#x lack REQUEST|ACK", got)
			}
			if got := binary.NativeEndian.Uint32(tc.msg[8:]); got != tc.seq {
				t.Fatalf("seq %d, want %d", got, tc.seq)
			}
		})
	}
	// The address attribute carries 10.0.2.15 right after the ifaddrmsg.
	if got := addr[16+8+4 : 16+8+8]; string(got) != "\x0a\x00\x02\x0f" {
		t.Fatalf("IFA_LOCAL = % x", got)
	}
	if addr[16+1] != 24 {
		t.Fatalf("prefix length %d", addr[16+1])
	}
	if _, err := addAddr(1, 2, netip.MustParsePrefix("fd00::1/64")); err == nil {
		t.Fatal("IPv6 address accepted")
	}
	if _, err := addDefaultRoute(1, 2, netip.MustParseAddr("fd00::1")); err == nil {
		t.Fatal("IPv6 gateway accepted")
	}
}

func ack(seq uint32, code int32, typ uint16, length uint32) []byte {
	b := make([]byte, 36)
	binary.NativeEndian.PutUint32(b[0:], length)
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[16:], uint32(code))
	return b
}

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		seq     uint32
		errno   syscall.Errno
		wantErr error
	}{
		{name: "ok", in: ack(3, 0, nlmsgError, 36), seq: 3},
		{name: "exists", in: ack(3, -int32(syscall.EEXIST), nlmsgError, 36), seq: 3, errno: syscall.EEXIST},
		{name: "other seq then ours", in: append(ack(2, -1, nlmsgError, 36), ack(3, 0, nlmsgError, 36)...), seq: 3},
		{name: "wrong seq", in: ack(2, 0, nlmsgError, 36), seq: 3, wantErr: errNoAck},
		{name: "empty", in: nil, seq: 1, wantErr: errNoAck},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errno, err := parseAck(tc.in, tc.seq)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if errno != tc.errno {
				t.Fatalf("errno = %v, want %v", errno, tc.errno)
			}
		})
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{name: "length past end", in: ack(1, 0, nlmsgError, 4096)},
		{name: "length below header", in: ack(1, 0, nlmsgError, 8)},
		{name: "positive code", in: ack(1, 5, nlmsgError, 36)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseAck(tc.in, 1); err == nil || errors.Is(err, errNoAck) {
				t.Fatalf("err = %v, want a format error", err)
			}
		})
	}
}

func TestErrKernel(t *testing.T) {
	var err error = &ErrKernel{Request: "eth0 up", Errno: syscall.ENODEV}
	if !errors.Is(err, syscall.ENODEV) {
		t.Fatal("errors.Is does not see the errno")
	}
}

func FuzzParseAck(f *testing.F) {
	f.Add(ack(1, 0, nlmsgError, 36), uint32(1))
	f.Add(ack(1, -17, nlmsgError, 36), uint32(1))
	seeds, _ := filepath.Glob("testdata/*.bin")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint32(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, seq uint32) {
		errno, err := parseAck(data, seq)
		if err != nil && errno != 0 {
			t.Fatalf("errno %v with error %v", errno, err)
		}
	})
}
