package main

import (
	"net"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/sdnotify/sdnotifytest"
)

// TestServeNotifiesSystemd: under a Type=notify unit the server says READY=1 once it
// accepts, feeds the watchdog while its store answers, and says STOPPING=1 on shutdown.
func TestServeNotifiesSystemd(t *testing.T) {
	next := sdnotifytest.Listen(t, 20*time.Millisecond)
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
