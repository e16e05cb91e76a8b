package qemu

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArgs(t *testing.T) {
	c := Config{
		Kernel: "/k/vmlinuz", Initrd: "/k/initrd.gz", Disk: "/d/disk.img",
		Append: []string{"panic=-1", "switchyard.action=reboot"},
		Forward: []GuestForward{
			{Addr: netip.MustParseAddrPort("10.0.2.100:80"), Command: []string{"/bin/fwdpipe", "127.0.0.1:8080"}},
			{Addr: netip.MustParseAddrPort("10.0.2.100:2379"), Command: []string{"/bin/x", "a,b"}},
		},
	}
	args, err := c.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"-no-reboot",
		"-machine q35,accel=tcg -cpu max",
		"-m 512 -smp 2",
		"-append console=ttyS0 panic=-1 switchyard.action=reboot",
		"file=/d/disk.img,format=raw,if=none,id=disk0",
		"user,id=net0,restrict=on,ipv6=off,guestfwd=tcp:10.0.2.100:80-cmd:/bin/fwdpipe 127.0.0.1:8080,guestfwd=tcp:10.0.2.100:2379-cmd:/bin/x a,,b",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q:\n%s", want, joined)
		}
	}
	c.KVM = true
	args, _ = c.Args()
	if !slices.Contains(args, "q35,accel=kvm") {
		t.Errorf("KVM args: %q", args)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{name: "no kernel", mod: func(c *Config) { c.Kernel = "" }},
		{name: "comma in disk path", mod: func(c *Config) { c.Disk = "/d/a,b.img" }},
		{name: "IPv6 forward", mod: func(c *Config) {
			c.Forward = []GuestForward{{Addr: netip.MustParseAddrPort("[fd00::1]:80"), Command: []string{"x"}}}
		}},
		{name: "forward without command", mod: func(c *Config) {
			c.Forward = []GuestForward{{Addr: netip.MustParseAddrPort("10.0.2.100:80")}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := c
			tc.mod(&bad)
			if _, err := bad.Args(); err == nil {
				t.Fatal("Args accepted a bad config")
			}
		})
	}
}

// script writes a stand-in for qemu-system-x86_64 (a shell script that ignores its arguments
// and plays a console), to test the runner's process and console handling where QEMU is not
// needed; the VM tests in testimages/vmtest run the real QEMU.
func script(t *testing.T, body string) Config {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-qemu")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{Binary: bin, Kernel: "k", Initrd: "i", Disk: "d"}
}

func TestExpectSequence(t *testing.T) {
	cfg := script(t, `echo "booting"; printf 'partition=3\r\n'; echo "partition=4"; echo "done"; exit 0`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	re := regexp.MustCompile(`^partition=(\d)$`)
	for _, want := range []string{"3", "4"} {
		m, err := vm.Expect(ctx, re)
		if err != nil {
			t.Fatal(err)
		}
		if m[1] != want {
			t.Fatalf("matched partition %s, want %s", m[1], want)
		}
	}
	if _, err := vm.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Expect(ctx, re); !errors.Is(err, ErrExited) {
		t.Fatalf("third Expect = %v, want ErrExited", err)
	}
	if err := vm.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := vm.Expect(ctx, re); err != nil || m[1] != "3" {
		t.Fatalf("after Restart: %v %v", m, err)
	}
	if _, err := vm.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	lines := vm.Lines()
	if vm.Boots() != 2 || lines[0] != "=== qemu: boot 1 ===" || !slices.Contains(lines, "=== qemu: boot 2 ===") {
		t.Fatalf("boots %d, lines %q", vm.Boots(), lines)
	}
}

func TestKillAndTimeout(t *testing.T) {
	cfg := script(t, `echo up; exec sleep 60`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Expect(ctx, regexp.MustCompile(`^up$`)); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := vm.Expect(short, regexp.MustCompile(`never`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Expect = %v, want a deadline error", err)
	}
	if err := vm.Restart(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("Restart while running = %v, want ErrRunning", err)
	}
	start := time.Now()
	vm.Kill()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Kill took %v", d)
	}
	if _, err := vm.Wait(ctx); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Wait after Kill = %v, want a killed process", err)
	}
}

func TestExitStatus(t *testing.T) {
	cfg := script(t, `echo "qemu-system-x86_64: could not open disk" >&2; exit 1`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = vm.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "could not open disk") {
		t.Fatalf("Wait = %v, want the exit status with the console tail", err)
	}
}
