package blockdev_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"github.com/switchyard-os/switchyard/partitions/gpttest"
)

func TestOpenFile(t *testing.T) {
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    blockdev.Options
		wantSS  int
		wantErr string
	}{
		{"read", blockdev.Options{}, 512, ""},
		{"write", blockdev.Options{Write: true}, 512, ""},
		{"4096 by request", blockdev.Options{SectorSize: 4096}, 4096, ""},
		{"bad sector size", blockdev.Options{SectorSize: 1000}, 0, "sector size 1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := blockdev.Open(ctx, img, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Size() != 3<<20 || d.SectorSize() != tc.wantSS || d.IsBlockDevice() || d.Path() != img {
				t.Fatalf("size %d, sector %d, block %v", d.Size(), d.SectorSize(), d.IsBlockDevice())
			}
		})
	}
	if _, err := blockdev.Open(ctx, t.TempDir(), blockdev.Options{}); err == nil || !strings.Contains(err.Error(), "neither a block device nor a regular file") {
		t.Errorf("Open(dir) = %v", err)
	}
	if _, err := blockdev.Open(ctx, "/dev/null", blockdev.Options{}); !errors.Is(err, blockdev.ErrNotDisk) || !strings.Contains(err.Error(), "character device") {
		t.Errorf("Open(/dev/null) = %v", err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []blockdev.Options{{}, {Write: true}} {
		// Refused before open(2), which on a FIFO without a writer would block: a blocked
		// Open hangs the test instead of failing it, and the test binary's timeout reports it.
		if _, err := blockdev.Open(ctx, fifo, opts); !errors.Is(err, blockdev.ErrNotDisk) || !strings.Contains(err.Error(), "is a FIFO") {
			t.Errorf("Open(FIFO, %+v) = %v", opts, err)
		}
	}
	if _, err := blockdev.Open(ctx, filepath.Join(t.TempDir(), "missing"), blockdev.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
}

func TestSecondWriterIsRefused(t *testing.T) {
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	first, err := blockdev.Open(ctx, img, blockdev.Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = blockdev.Open(ctx, img, blockdev.Options{Write: true})
	if !errors.Is(err, blockdev.ErrHeld) || !strings.Contains(err.Error(), "held by another writer") {
		t.Fatalf("second writer: %v, want ErrHeld", err)
	}
	// Another process holding the lock is refused the same way: flock(1) holds it while
	// this test opens the file.
	if flock, lerr := exec.LookPath("flock"); lerr == nil {
		first.Close()
		cmd := exec.Command(flock, "--exclusive", img, "sleep", "5")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		for i := 0; ; i++ {
			d, err := blockdev.Open(ctx, img, blockdev.Options{Write: true})
			if errors.Is(err, blockdev.ErrHeld) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
			if i > 200 {
				t.Fatal("the lock held by flock(1) was never seen")
			}
			time.Sleep(10 * time.Millisecond)
		}
	} else {
		defer first.Close()
	}
	// Readers take no lock.
	r, err := blockdev.Open(ctx, img, blockdev.Options{})
	if err != nil {
		t.Fatalf("reader while a writer holds the lock: %v", err)
	}
	r.Close()
}

// TestBlockDevice opens a loop device with 4096-byte sectors: the size and sector size come
// from the BLKGETSIZE64 and BLKSSZGET ioctls.
func TestBlockDevice(t *testing.T) {
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, bytes.Repeat([]byte{7}, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := gpttest.Loop(t, img, 4096, true)
	d, err := blockdev.Open(ctx, dev, blockdev.Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.IsBlockDevice() || d.Size() != 2<<20 || d.SectorSize() != 4096 {
		t.Fatalf("block %v, size %d, sector %d", d.IsBlockDevice(), d.Size(), d.SectorSize())
	}
	if _, err := blockdev.Open(ctx, dev, blockdev.Options{SectorSize: 512}); err == nil {
		t.Fatal("a 512-byte override on a 4096-byte device was accepted")
	}
	if _, err := blockdev.Open(ctx, dev, blockdev.Options{Write: true}); !errors.Is(err, blockdev.ErrHeld) {
		t.Fatalf("second writer on the device: %v", err)
	}
	if _, err := d.WriteAt([]byte("switchyard"), 4096); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 10)
	if _, err := d.ReadAt(got, 4096); err != nil || string(got) != "switchyard" {
		t.Fatalf("read back %q, %v", got, err)
	}
}

// TestLockWait: a writer that waits gets the lock once the holder lets go.
func TestLockWait(t *testing.T) {
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	holder, err := blockdev.Open(ctx, img, blockdev.Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(100 * time.Millisecond); holder.Close() }()
	d, err := blockdev.Open(ctx, img, blockdev.Options{Write: true, LockWait: 5 * time.Second})
	if err != nil {
		t.Fatalf("waiting writer: %v", err)
	}
	d.Close()
}
