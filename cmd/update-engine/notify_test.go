package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/update-engine/control"
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

// TestDaemonNotifiesSystemd: under a Type=notify unit the daemon says READY=1 once its
// control socket answers, feeds the watchdog while the engine answers, and says STOPPING=1
// when it stops.
func TestDaemonNotifiesSystemd(t *testing.T) {
	next := notifySocket(t)
	w := newWorld(t, worldOptions{})
	conf := w.conf(fromVersion, "USR-A", "FIRST_CHECK_DELAY=1h", "FIRST_CHECK_FUZZ=0s")
	ctx, cancel := context.WithCancel(t.Context())
	var runErr error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		_, runErr = w.engine(ctx, conf)
	}()
	t.Cleanup(func() { cancel(); <-finished }) // also when a check below ends the test
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if _, err := control.NewClient(filepath.Join(w.dir, "ue.sock")).Status(ctx); err != nil {
		t.Errorf("after READY=1 the control socket does not answer: %v", err)
	}
	if got := next(); got != "WATCHDOG=1" {
		t.Errorf("second notification %q, want WATCHDOG=1", got)
	}
	cancel()
	<-finished
	if runErr != nil {
		t.Errorf("update-engine: %v", runErr)
	}
	for {
		if got := next(); got == "STOPPING=1" {
			break
		} else if got != "WATCHDOG=1" {
			t.Fatalf("notification %q while stopping, want STOPPING=1", got)
		}
	}
}
