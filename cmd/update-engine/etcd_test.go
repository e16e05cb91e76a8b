package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/etcdtest"
	"github.com/switchyard-os/switchyard/rebootlock/fleetlock"
)

// startEtcd runs a one-member etcd on free loopback ports and returns its endpoint.
func startEtcd(t *testing.T) string { return etcdtest.Start(t) }

// TestEtcdLockAcrossReboot: under etcd-lock the daemon takes a slot of its group's
// semaphore before it reboots, holds it across the reboot, and gives it back only once the
// new partition passed its health checks and is marked good.
func TestEtcdLockAcrossReboot(t *testing.T) {
	lockAcrossReboot(t, "etcd-lock")
}

// TestFleetLockAcrossReboot: the same through omaha-server's FleetLock endpoint, for hosts
// without etcd credentials.
func TestFleetLockAcrossReboot(t *testing.T) {
	lockAcrossReboot(t, "fleetlock")
}

func lockAcrossReboot(t *testing.T, strategy string) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	endpoint := startEtcd(t)
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var o worldOptions
	if strategy == "fleetlock" {
		o.fleetLock = fleetlock.NewHandler(cli, rebootlock.Options{Logger: slog.New(slog.DiscardHandler)})
	}
	w := newWorld(t, o)
	rebooted := filepath.Join(w.dir, "rebooted")
	lockConf := []string{"REBOOT_STRATEGY=" + strategy, "LOCKSMITHD_GROUP=workers",
		"REBOOT_COMMAND=touch " + rebooted, "FIRST_CHECK_DELAY=0s", "FIRST_CHECK_FUZZ=0s"}
	if strategy == "fleetlock" {
		lockConf = append(lockConf, "FLEETLOCK_URL="+w.srv.URL)
	} else {
		lockConf = append(lockConf, "LOCKSMITHD_ENDPOINT="+endpoint)
	}
	sem, err := rebootlock.New(cli, "workers", rebootlock.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	holding := func() bool {
		st, err := sem.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st.Holding(machineID)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := w.engine(ctx, w.conf(fromVersion, "USR-A", lockConf...))
		done <- err
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(rebooted); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the daemon did not reboot (daemon: %v)", <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !holding() {
		t.Fatal("rebooted without holding a slot")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The reboot: the slot stays held until the new partition is confirmed.
	if got := w.bootLoader(); got != "USR-B" {
		t.Fatalf("booted %s", got)
	}
	if !holding() {
		t.Fatal("the slot was given back before the new partition was confirmed")
	}
	// Failing health checks leave the partition unmarked and the slot held.
	failing := append(lockConf, "HEALTH_COMMANDS=false")
	if _, err := w.engine(t.Context(), w.conf(toVersion, "USR-B", failing...), "-post-boot"); err == nil {
		t.Fatal("-post-boot succeeded with a failing health check")
	}
	if !holding() || w.slot(4).Successful {
		t.Fatal("a failed health check released the slot or marked the partition good")
	}
	if _, err := w.engine(t.Context(), w.conf(toVersion, "USR-B", lockConf...), "-post-boot"); err != nil {
		t.Fatal(err)
	}
	if holding() {
		t.Error("the slot is still held after the update was confirmed")
	}
	if !w.slot(4).Successful {
		t.Error("USR-B not marked good")
	}
}
