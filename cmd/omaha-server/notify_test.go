package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// notifySocket plays systemd's side of sd_notify: a unixgram socket in NOTIFY_SOCKET, with
// a 20 ms watchdog in WATCHDOG_USEC. The directory is short: a socket path holds 107 bytes.
func notifySocket(t *testing.T) func() string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "20000")
	return func() string {
		t.Helper()
		// A bound for a broken build only: each awaited datagram is due within 10 ms.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
		return string(buf[:n])
	}
}

// TestServeNotifiesSystemd: under a Type=notify unit the server says READY=1 once it
// accepts, feeds the watchdog while its store answers, and says STOPPING=1 on shutdown.
func TestServeNotifiesSystemd(t *testing.T) {
	next := notifySocket(t)
	addr, _, stop := serveInBackground(t, []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"})
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Errorf("after READY=1 the server does not accept: %v", err)
	} else {
		c.Close()
	}
	if got := next(); got != "WATCHDOG=1" {
		t.Fatalf("second notification %q, want WATCHDOG=1", got)
	}
	stop()
	for {
		if got := next(); got == "STOPPING=1" {
			break
		} else if got != "WATCHDOG=1" {
			t.Fatalf("notification %q while stopping, want STOPPING=1", got)
		}
	}
}
