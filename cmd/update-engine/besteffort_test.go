package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBestEffortWithEtcd: best-effort with an etcd endpoint is etcd-lock (a real etcd).
func TestBestEffortWithEtcd(t *testing.T) {
	lockAcrossReboot(t, "best-effort")
}

// TestBestEffortWithoutEtcd: best-effort without an etcd endpoint starts and reboots plainly,
// as locksmithd did; the pre-reboot hook runs before the reboot and the post-reboot hook
// once the new partition is confirmed.
func TestBestEffortWithoutEtcd(t *testing.T) {
	w := newWorld(t, worldOptions{})
	rebooted := filepath.Join(w.dir, "rebooted")
	drained := filepath.Join(w.dir, "drained")
	uncordoned := filepath.Join(w.dir, "uncordoned")
	conf := []string{"REBOOT_STRATEGY=best-effort", "REBOOT_COMMAND=touch " + rebooted,
		"PRE_REBOOT_HOOK=touch " + drained, "POST_REBOOT_HOOK=touch " + uncordoned, "REBOOT_HOOK_TIMEOUT=1m",
		"FIRST_CHECK_DELAY=0s", "FIRST_CHECK_FUZZ=0s"}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := w.engine(ctx, w.conf(fromVersion, "USR-A", conf...))
		done <- err
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(rebooted); err == nil {
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("the daemon stopped before rebooting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the daemon did not reboot (daemon: %v)", <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(drained); err != nil {
		t.Fatal("rebooted without running the pre-reboot hook")
	}
	if _, err := os.Stat(uncordoned); err == nil {
		t.Fatal("the post-reboot hook ran before the reboot")
	}
	if got := w.bootLoader(); got != "USR-B" {
		t.Fatalf("booted %s", got)
	}
	if _, err := w.engine(t.Context(), w.conf(toVersion, "USR-B", conf...), "-post-boot"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(uncordoned); err != nil {
		t.Fatal("the post-reboot hook did not run after the confirmation")
	}
}
