// Package vmtest is the harness of the end-to-end tests: it builds (or takes from the cache)
// the kernel, initramfs and test OS images of package image, composes a fresh disk for each
// test under t.TempDir(), and boots it in QEMU (package qemu) with the console copied to the
// test log.
//
// The guest network is QEMU's user network with restrict=on: the guest is 10.0.2.15 and
// reaches the host only through Forward rules, each a guest address (by convention
// 10.0.2.100:PORT) joined to a host loopback address through testimages/cmd/fwdpipe.
//
// Kernel command line keys the test OS understands (package testos): switchyard.fetch=URL
// (repeatable), switchyard.server=URL and switchyard.group=NAME (written to
// /etc/switchyard/update.conf), switchyard.action=poweroff|reboot|wait.
//
// New skips the test, loudly, in -short mode, when QEMU or the Debian tools are missing, or
// when the machine cannot build images. VMs run under TCG software emulation unless the caller
// sets Env.KVM (only when qemu.KVMAvailable): under nested virtualisation KVM guests were seen to
// abort on MSR 0x10a with -cpu host and to hang after decompression with other CPU models,
// while TCG boots reliably in a few seconds.
package vmtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/testimages/image"
	"github.com/switchyard-os/switchyard/testimages/qemu"
)

// GuestServer is the guest-side address by which forwarded host services are reached.
var GuestServer = netip.MustParseAddr("10.0.2.100")

// Env is a ready harness: the boot artifacts and the builder for disks.
type Env struct {
	Builder *image.Builder
	Boot    *image.Boot
	KVM     bool
	Log     *slog.Logger
}

// ModuleRoot finds the directory holding go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("vmtest: no go.mod above %s", dir)
		}
		dir = parent
	}
}

// New prepares the harness or skips the test.
func New(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("VM test: skipped in -short mode (run: go test -run TestBoot ./testimages/... or make e2e)")
	}
	if err := image.CheckTools(); err != nil {
		t.Skipf("SKIPPING VM TEST: %v", err)
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b := &image.Builder{Cache: filepath.Join(root, "build", "testimages"), Module: root, Log: log}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	boot, err := b.Boot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Builder: b, Boot: boot, Log: log}
}

// Disk builds a fresh disk in t.TempDir() with usrA and usrB (nil leaves USR-B empty).
func (e *Env) Disk(t testing.TB, usrA, usrB *image.OS) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var a, b string
	var err error
	if usrA != nil {
		if a, err = e.Builder.USR(ctx, *usrA); err != nil {
			t.Fatal(err)
		}
	}
	if usrB != nil {
		if b, err = e.Builder.USR(ctx, *usrB); err != nil {
			t.Fatal(err)
		}
	}
	root, err := e.Builder.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := image.Disk(ctx, p, a, b, root); err != nil {
		t.Fatal(err)
	}
	return p
}

// Forward joins guest port GuestServer:guestPort to a host loopback address.
func (e *Env) Forward(guestPort uint16, host netip.AddrPort) qemu.GuestForward {
	return qemu.GuestForward{
		Addr:    netip.AddrPortFrom(GuestServer, guestPort),
		Command: []string{e.Boot.FwdPipe, host.String()},
	}
}

// Start boots disk with the kernel command line words cmdline; the VM is killed when the test
// ends. The console goes to the test log and to build/testimages/console/TESTNAME.log, which
// is kept after the test for a look at a failed boot.
func (e *Env) Start(t testing.TB, disk string, cmdline []string, fwd ...qemu.GuestForward) *qemu.VM {
	t.Helper()
	return e.StartNamed(t, t.Name(), disk, cmdline, fwd...)
}

// StartNamed is Start for a test that runs several VMs: each console log is named for name
// (build/testimages/console/NAME.log) instead of the test.
func (e *Env) StartNamed(t testing.TB, name, disk string, cmdline []string, fwd ...qemu.GuestForward) *qemu.VM {
	t.Helper()
	logPath := filepath.Join(e.Builder.Cache, "console", strings.NewReplacer("/", "_", " ", "_").Replace(name)+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	t.Logf("console log: %s", logPath)
	vm, err := qemu.Start(context.Background(), qemu.Config{
		Kernel:  e.Boot.Kernel.Vmlinuz,
		Initrd:  e.Boot.Initrd,
		Append:  append([]string{"panic=-1", "quiet", "loglevel=3"}, cmdline...),
		Disk:    disk,
		KVM:     e.KVM,
		Forward: fwd,
		Console: io.MultiWriter(logFile, testWriter{t}),
		Log:     e.Log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	return vm
}

// testWriter sends each write to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
