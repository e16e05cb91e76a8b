package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/gpttest"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

func newDisk(t *testing.T, ss int) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := layout.WriteFile(context.Background(), img, layout.Options{SectorSize: ss}, nil); err != nil {
		t.Fatal(err)
	}
	return img
}

func gptCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"gpt"}, args...), &out, &errOut)
	return out.String(), err
}

func mustGPT(t *testing.T, args ...string) string {
	t.Helper()
	out, err := gptCmd(t, args...)
	if err != nil {
		t.Fatalf("updatectl gpt %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// bits reads priority/tries/successful of partition n with our reader and, on 512-byte
// images, checks that Debian's cgpt reads the same.
func bits(t *testing.T, img string, ss, n int) [3]int {
	t.Helper()
	out := mustGPT(t, "show", img, "--json")
	var s gptShow
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Partitions {
		if p.Number == n {
			succ := 0
			if *p.Successful {
				succ = 1
			}
			got := [3]int{*p.Priority, *p.Tries, succ}
			if ss == 512 {
				if pr, tr, su := gpttest.CgptState(t, img, n); [3]int{pr, tr, su} != got {
					t.Fatalf("partition %d: we read %v, cgpt reads %d/%d/%d", n, got, pr, tr, su)
				}
				gpttest.SgdiskVerify(t, img)
			}
			return got
		}
	}
	t.Fatalf("partition %d not shown", n)
	return [3]int{}
}

func TestGPTCycle(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(map[int]string{512: "512", 4096: "4096"}[ss], func(t *testing.T) {
			img := newDisk(t, ss)
			out := mustGPT(t, "show", img)
			for _, want := range []string{"USR-A", "USR-B", "7130c94a-213a-4e5a-8e26-6cce9662f132", "next boot: partition 3 (USR-A)", "ROOT", "byte sectors"} {
				if !strings.Contains(out, want) {
					t.Errorf("show lacks %q:\n%s", want, out)
				}
			}
			steps := []struct {
				args   []string
				out    string
				a, b   [3]int
				booted string
			}{
				{[]string{"prepare", img, "-i", "4"}, "partition 4 (USR-B): priority 0, tries 0, successful 0", [3]int{1, 0, 1}, [3]int{0, 0, 0}, "3"},
				{[]string{"flip", img, "-i", "4"}, "priority 2, tries 1, successful 0", [3]int{1, 0, 1}, [3]int{2, 1, 0}, "4"},
				{[]string{"next", img}, "4 USR-B e03dd35c-7c2d-4a47-b3fe-27f15780a57c", [3]int{1, 0, 1}, [3]int{2, 0, 0}, "3"},
				{[]string{"mark-good", "-i", "4", img}, "priority 2, tries 0, successful 1", [3]int{1, 0, 1}, [3]int{2, 0, 1}, "4"},
				{[]string{"set", img, "-i", "3", "--tries", "3", "--successful", "0"}, "priority 1, tries 3, successful 0", [3]int{1, 3, 0}, [3]int{2, 0, 1}, "4"},
				{[]string{"prioritize", img, "-i", "3"}, "priority 2, tries 3", [3]int{2, 3, 0}, [3]int{1, 0, 1}, "3"},
				{[]string{"rollback", img, "-i", "3"}, "partition 4 (USR-B) boots next", [3]int{1, 3, 0}, [3]int{2, 0, 1}, "4"},
			}
			for _, s := range steps {
				out := mustGPT(t, s.args...)
				if !strings.Contains(out, s.out) {
					t.Fatalf("%v: output %q lacks %q", s.args, out, s.out)
				}
				if a, b := bits(t, img, ss, 3), bits(t, img, ss, 4); a != s.a || b != s.b {
					t.Fatalf("%v: A %v, B %v; want %v, %v", s.args, a, b, s.a, s.b)
				}
				var sh gptShow
				_ = json.Unmarshal([]byte(mustGPT(t, "show", "--json", img)), &sh)
				if sh.NextBoot == nil || strings.TrimSpace(s.booted) != itoa(*sh.NextBoot) {
					t.Fatalf("%v: next boot %v, want %s", s.args, sh.NextBoot, s.booted)
				}
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestGPTRepair(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(map[int]string{512: "512", 4096: "4096"}[ss], func(t *testing.T) {
			img := newDisk(t, ss)
			orig, _ := os.ReadFile(img)
			if out := mustGPT(t, "repair", img); !strings.Contains(out, "nothing to repair") {
				t.Fatalf("repair of a clean disk: %q", out)
			}
			b := bytes.Clone(orig)
			b[ss+24] ^= 0xff // a torn primary header
			if err := os.WriteFile(img, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if out := mustGPT(t, "show", img); !strings.Contains(out, "WARNING: gpt: primary header at LBA 1") {
				t.Fatalf("show does not warn about the primary:\n%s", out)
			}
			if out := mustGPT(t, "repair", img); !strings.Contains(out, "repaired the primary copy from the backup") {
				t.Fatalf("repair: %q", out)
			}
			if got, _ := os.ReadFile(img); !bytes.Equal(got, orig) {
				t.Fatal("the repaired disk differs from the original")
			}
		})
	}
}

// TestGPTBadInput checks that each kind of bad input gets an error naming the problem and
// that the image is byte-for-byte unchanged.
func TestGPTBadInput(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, img string)
		args    []string // DISK is appended
		want    error
		msg     string
	}{
		{"no GPT", func(t *testing.T, img string) { fi, _ := os.Stat(img); blank(t, img, 0, fi.Size()) }, []string{"flip", "-i", "4"}, gpt.ErrNoGPT, "no GPT"},
		{"no protective MBR", func(t *testing.T, img string) { blank(t, img, 0, 512) }, []string{"flip", "-i", "4"}, gpt.ErrNoProtectiveMBR, "0x55AA"},
		{"truncated", func(t *testing.T, img string) { _ = os.Truncate(img, 4<<20) }, []string{"next"}, gpt.ErrTruncated, "truncated"},
		{"corrupt headers", func(t *testing.T, img string) {
			flip(t, img, 512+60)
			fi, _ := os.Stat(img)
			flip(t, img, fi.Size()-512+60)
		}, []string{"mark-good", "-i", "3"}, gpt.ErrBadHeader, "header CRC"},
		{"entry CRC in both copies", func(t *testing.T, img string) {
			flip(t, img, 2*512+2*128+60)
			fi, _ := os.Stat(img)
			flip(t, img, fi.Size()-33*512+2*128+60)
		}, []string{"set", "-i", "3", "--tries", "1"}, gpt.ErrEntriesCRC, "entry array CRC mismatch"},
		{"not USR", nil, []string{"set", "-i", "9", "--priority", "1"}, slots.ErrNotUSR, "not a USR partition"},
		{"unused entry", nil, []string{"mark-good", "-i", "5"}, gpt.ErrNoPartition, "no such partition"},
		{"only good slot", nil, []string{"prepare", "-i", "3"}, slots.ErrNoFallback, "no other known-good"},
		{"missing -i", nil, []string{"flip"}, errUsage, "-i N"},
		{"bad priority", nil, []string{"set", "-i", "4", "--priority", "16"}, errUsage, "0–15"},
		{"nothing to set", nil, []string{"set", "-i", "4"}, errUsage, "nothing to set"},
		{"unknown flag", nil, []string{"show", "--bogus"}, errUsage, "bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := newDisk(t, 512)
			if tc.prepare != nil {
				tc.prepare(t, img)
			}
			before, _ := os.ReadFile(img)
			_, err := gptCmd(t, append(tc.args, img)...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
			if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
				t.Fatal("the image changed")
			}
		})
	}
	t.Run("held by another writer", func(t *testing.T) {
		img := newDisk(t, 512)
		holder, err := blockdev.Open(context.Background(), img, blockdev.Options{Write: true})
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		before, _ := os.ReadFile(img)
		_, err = gptCmd(t, "flip", img, "-i", "4")
		if !errors.Is(err, blockdev.ErrHeld) || !strings.Contains(err.Error(), "held by another writer") {
			t.Fatalf("err = %v, want ErrHeld", err)
		}
		if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
			t.Fatal("the image changed")
		}
		// Showing needs no lock.
		if _, err := gptCmd(t, "show", img); err != nil {
			t.Fatalf("show while held: %v", err)
		}
	})
}

func blank(t *testing.T, img string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, img string, off int64) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGPTOnBlockDevice runs the update cycle on a loop device (512- and 4096-byte logical
// sectors): the size and sector size come from the kernel, the lock is taken on the device
// node, and cgpt and sgdisk judge the device.
func TestGPTOnBlockDevice(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(map[int]string{512: "512", 4096: "4096"}[ss], func(t *testing.T) {
			img := newDisk(t, ss)
			dev := gpttest.Loop(t, img, ss, true)
			mustGPT(t, "prepare", dev, "-i", "4")
			mustGPT(t, "flip", dev, "-i", "4")
			if out := mustGPT(t, "next", dev); !strings.HasPrefix(out, "4 USR-B ") {
				t.Fatalf("next: %q", out)
			}
			mustGPT(t, "mark-good", dev, "-i", "4")
			out := mustGPT(t, "show", dev, "--json")
			var s gptShow
			if err := json.Unmarshal([]byte(out), &s); err != nil {
				t.Fatal(err)
			}
			if s.SectorSize != ss || s.NextBoot == nil || *s.NextBoot != 4 {
				t.Fatalf("show: sector size %d, next boot %v", s.SectorSize, s.NextBoot)
			}
			gpttest.SgdiskVerify(t, dev)
			if p, tr, su := gpttest.CgptState(t, dev, 4); [3]int{p, tr, su} != [3]int{2, 0, 1} {
				t.Fatalf("cgpt reads USR-B as %d/%d/%d", p, tr, su)
			}
			if _, err := gptCmd(t, "show", dev, "--sector-size", "1024"); err == nil {
				t.Fatal("a sector size the device does not have was accepted")
			}
		})
	}
}

// TestGPTPartitionDevice: like cgpt, a partition's device names its disk and number.
func TestGPTPartitionDevice(t *testing.T) {
	img := newDisk(t, 512)
	dev := gpttest.Loop(t, img, 512, true)
	part := gpttest.LoopPartition(t, dev, 4)
	mustGPT(t, "prepare", part)
	if out := mustGPT(t, "flip", part); !strings.Contains(out, "partition 4 (USR-B): priority 2, tries 1, successful 0") {
		t.Fatalf("flip via %s: %q", part, out)
	}
	if _, err := gptCmd(t, "mark-good", part, "-i", "3"); !errors.Is(err, errUsage) {
		t.Fatalf("-i 3 on partition 4's device: %v", err)
	}
	if p, tr, su := gpttest.CgptState(t, dev, 4); [3]int{p, tr, su} != [3]int{2, 1, 0} {
		t.Fatalf("cgpt reads USR-B as %d/%d/%d", p, tr, su)
	}
}

// TestGPTRefusesFIFO: a FIFO is refused with a clear error at once, for reading and for
// writing; opening it would block until a writer appears, beyond any signal's reach.
func TestGPTRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "disk.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"show", []string{"show", fifo}},
		{"show json", []string{"show", fifo, "--json"}},
		{"flip", []string{"flip", fifo, "-i", "4"}},
	} {
		args := tc.args
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := gptCmd(t, args...)
				done <- err
			}()
			guard := time.NewTimer(10 * time.Second) // a failure deadline, not a wait for progress
			defer guard.Stop()
			select {
			case err := <-done:
				if !errors.Is(err, blockdev.ErrNotDisk) || !strings.Contains(err.Error(), "is a FIFO") {
					t.Fatalf("err = %v, want ErrNotDisk naming the FIFO", err)
				}
			case <-guard.C:
				// Be the writer the blocked open waits for, so the command can end.
				if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
					<-done
					f.Close()
				}
				t.Fatal("updatectl gpt blocked on a FIFO")
			}
		})
	}
}
