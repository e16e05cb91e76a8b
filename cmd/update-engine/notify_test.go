package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/sdnotify/sdnotifytest"
	"github.com/switchyard-os/switchyard/update-engine/control"
)

// TestDaemonNotifiesSystemd: under a Type=notify unit the daemon says READY=1 once its
// control socket answers, feeds the watchdog while the engine answers, and says STOPPING=1
// when it stops.
func TestDaemonNotifiesSystemd(t *testing.T) {
	next := sdnotifytest.Listen(t, 20*time.Millisecond)
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
