package strategy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/fleetlock"
)

// TestFleetLockStrategy runs the fleetlock strategy against a FleetLock server on a real
// etcd, shared with a host that locks through etcd directly.
func TestFleetLockStrategy(t *testing.T) {
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{startEtcd(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	quiet := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(fleetlock.NewHandler(cli, rebootlock.Options{Logger: quiet}))
	defer srv.Close()
	sem, err := rebootlock.New(cli, "workers", rebootlock.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	ctx := t.Context()
	if err := sem.TryLock(ctx, rebootlock.Holder{ID: "etcd-host"}); err != nil {
		t.Fatal(err)
	}

	fl, err := fleetlock.NewClient(srv.URL, "workers", "fl-host", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "rebooted")
	// The FleetLock client does not wait: a full group is an error, and the coordinator
	// waits for its retry on the clock, which the test holds.
	clock := &heldClock{waits: make(chan chan time.Time)}
	c, err := New(Config{
		Strategy: FleetLock, Lock: fl,
		Rebooter: Command{"sh", "-c", fmt.Sprintf("echo rebooted >> %q", record)},
		Logger:   quiet,
		Clock:    clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Reboot(ctx) }()
	var retry chan time.Time
	select {
	case retry = <-clock.waits:
	case err := <-done:
		t.Fatalf("Reboot returned (%v) while the etcd host held the only slot", err)
	case <-time.After(15 * time.Second):
		t.Fatal("the coordinator neither retried nor returned")
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatal("rebooted while the etcd host held the only slot")
	}
	if err := sem.Unlock(ctx, "etcd-host"); err != nil {
		t.Fatal(err)
	}
	retry <- clock.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no reboot after the slot was freed")
	}
	st, err := sem.Status(ctx)
	if err != nil || !st.Holding("fl-host") || st.Holders[0].Via != "fleetlock" {
		t.Fatalf("the FleetLock host must hold the slot across its reboot: %+v, %v", st, err)
	}
	// After the reboot, steady-state releases it.
	uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := fl.Unlock(uctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := sem.Status(ctx); len(st.Holders) != 0 {
		t.Fatalf("after steady-state: %+v", st.Holders)
	}
}

// heldClock hands every wait to the test, which fires it by sending on the channel.
type heldClock struct{ waits chan chan time.Time }

func (c *heldClock) Now() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

func (c *heldClock) NewTimer(time.Duration) Timer {
	t := firedTimer(make(chan time.Time, 1))
	c.waits <- t
	return t
}
