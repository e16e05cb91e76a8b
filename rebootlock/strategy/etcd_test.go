package strategy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/etcdtest"
)

// startEtcd runs a one-member etcd on free loopback ports and returns its endpoint.
func startEtcd(t *testing.T) string { return etcdtest.Start(t) }

func TestEtcdLockWithRealEtcd(t *testing.T) {
	endpoint := startEtcd(t)
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	quiet := slog.New(slog.DiscardHandler)
	waiting := make(chan struct{}, 1)
	sem, err := rebootlock.New(cli, "default", rebootlock.Options{Logger: quiet, Jitter: 10 * time.Millisecond,
		Waiting: func() {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	ctx := t.Context()
	// Another host holds the only slot.
	if err := sem.TryLock(ctx, rebootlock.Holder{ID: "other"}); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "rebooted")
	c, err := New(Config{
		Strategy: EtcdLock,
		Lock:     sem.Slot(rebootlock.Holder{ID: "me", Hostname: "me.example"}),
		Rebooter: Command{"sh", "-c", fmt.Sprintf("echo rebooted >> %q", record)},
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	// awaitWaiting returns once the coordinator waits in Lock, failing if Reboot returned
	// (on done) first.
	done := make(chan error, 1)
	awaitWaiting := func() {
		t.Helper()
		select {
		case <-waiting:
		case err := <-done:
			t.Fatalf("Reboot returned (%v) instead of waiting for the slot", err)
		case <-time.After(15 * time.Second):
			t.Fatal("Reboot neither waited for the slot nor returned")
		}
		if _, err := os.Stat(record); !os.IsNotExist(err) {
			t.Fatal("the reboot command ran without the lock")
		}
	}
	// Given up while waiting: no reboot.
	short, cancel := context.WithCancel(ctx)
	go func() { done <- c.Reboot(short) }()
	awaitWaiting()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("rebooted while the group was full")
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatal("the reboot command ran without the lock")
	}

	go func() { done <- c.Reboot(ctx) }()
	awaitWaiting()
	if err := sem.Unlock(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no reboot after the slot was freed")
	}
	if b, err := os.ReadFile(record); err != nil || string(b) != "rebooted\n" {
		t.Fatalf("reboot record %q, %v", b, err)
	}
	st, err := sem.Status(ctx)
	if err != nil || !st.Holding("me") {
		t.Fatalf("the slot must stay held across the reboot: %+v, %v", st, err)
	}
}

func TestEtcdLockUnreachableNeverReboots(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	quiet := slog.New(slog.DiscardHandler)
	sem, err := rebootlock.New(cli, "default", rebootlock.Options{Logger: quiet, OpTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "rebooted")
	c, err := New(Config{
		Strategy: EtcdLock, Lock: sem.Slot(rebootlock.Holder{ID: "me"}),
		Rebooter:   Command{"sh", "-c", fmt.Sprintf("echo rebooted >> %q", record)},
		Logger:     quiet,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := c.Reboot(ctx); err == nil {
		t.Fatal("Reboot succeeded with etcd unreachable")
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatal("rebooted without the lock")
	}
}
