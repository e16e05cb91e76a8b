// Package gpttest holds what the partition tests share: an in-memory disk, a disk that stops
// (or tears a write) after the k-th write to simulate a crash, and Debian's cgpt and sgdisk
// run as independent judges of what the tests wrote. Tests that need a missing tool skip with
// the command that installs it.
//
// Only tests import it (partitions/*, cmd/updatectl).
package gpttest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Mem is an in-memory disk: ReadAt, WriteAt, Sync over a fixed-size byte slice.
type Mem struct {
	B []byte
	// SectorSz is reported by SectorSize (for slots.Device); 0 means 512.
	SectorSz int
}

// ErrOutOfRange: a write past the end of a Mem.
var ErrOutOfRange = errors.New("gpttest: write past the end of the disk")

func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.B)) {
		return 0, fmt.Errorf("gpttest: read at %d: %w", off, errEOF)
	}
	n := copy(p, m.B[off:])
	if n < len(p) {
		return n, errEOF
	}
	return n, nil
}

var errEOF = io.EOF

func (m *Mem) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.B)) {
		return 0, ErrOutOfRange
	}
	return copy(m.B[off:], p), nil
}

func (m *Mem) Sync() error     { return nil }
func (m *Mem) Size() int64     { return int64(len(m.B)) }
func (m *Mem) SectorSize() int { return cmpOr(m.SectorSz, 512) }

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// ErrCrashed is what a Crashing disk returns once it has "lost power".
var ErrCrashed = errors.New("gpttest: simulated crash")

// Crashing wraps a Mem and fails every write after the first Allow ones. When Tear is set,
// the first failing write stores the first half of its data before failing (a torn write).
// Syncs after the crash fail too.
type Crashing struct {
	*Mem
	Allow  int
	Tear   bool
	Writes int // writes attempted
}

func (c *Crashing) WriteAt(p []byte, off int64) (int, error) {
	c.Writes++
	if c.Writes <= c.Allow {
		return c.Mem.WriteAt(p, off)
	}
	if c.Tear && c.Writes == c.Allow+1 {
		n, _ := c.Mem.WriteAt(p[:len(p)/2], off)
		return n, ErrCrashed
	}
	return 0, ErrCrashed
}

func (c *Crashing) Sync() error {
	if c.Writes > c.Allow {
		return ErrCrashed
	}
	return nil
}

// Need skips the test loudly when tool is not installed.
func Need(t testing.TB, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(dir + "/" + tool); serr == nil {
				return dir + "/" + tool
			}
		}
		t.Skipf("SKIPPING: %s is not installed; this test uses it as an independent judge. Install it with: apt-get install -y %s (or make deps)", tool, pkg)
	}
	return p
}

// CgptState reads priority, tries and successful of partition n with `cgpt show -i N -P/-T/-S`.
func CgptState(t testing.TB, disk string, n int) (prio, tries, succ int) {
	t.Helper()
	cgpt := Need(t, "cgpt", "cgpt")
	get := func(flag string) int {
		out, err := exec.Command(cgpt, "show", "-i", strconv.Itoa(n), flag, disk).CombinedOutput()
		if err != nil {
			t.Fatalf("cgpt show -i %d %s %s: %v\n%s", n, flag, disk, err, out)
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("cgpt show -i %d %s: unexpected output %q", n, flag, out)
		}
		return v
	}
	return get("-P"), get("-T"), get("-S")
}

// CgptAdd sets priority, tries and successful of partition n with `cgpt add`.
func CgptAdd(t testing.TB, disk string, n, prio, tries, succ int) {
	t.Helper()
	cgpt := Need(t, "cgpt", "cgpt")
	out, err := exec.Command(cgpt, "add", "-i", strconv.Itoa(n), "-P", strconv.Itoa(prio),
		"-T", strconv.Itoa(tries), "-S", strconv.Itoa(succ), disk).CombinedOutput()
	if err != nil {
		t.Fatalf("cgpt add -i %d: %v\n%s", n, err, out)
	}
}

// SgdiskVerify runs `sgdisk -v` and fails unless it reports no problems with the GPT it
// found (not one it made up in memory).
func SgdiskVerify(t testing.TB, disk string) {
	t.Helper()
	sgdisk := Need(t, "sgdisk", "gdisk")
	out, err := exec.Command(sgdisk, "-v", disk).CombinedOutput()
	s := string(out)
	if err != nil || !strings.Contains(s, "No problems found") ||
		strings.Contains(s, "Creating new GPT") || strings.Contains(strings.ToLower(s), "warning") ||
		strings.Contains(strings.ToLower(s), "corrupt") {
		t.Fatalf("sgdisk -v %s: %v\n%s", disk, err, s)
	}
}

// Loop attaches img to a loop device with the given logical sector size, so the judges see
// 4096-byte sectors the way a 4Kn disk shows them; it detaches it when the test ends. It
// skips loudly when not root or when losetup or loop devices are missing.
func Loop(t testing.TB, img string, sectorSize int, writable bool) string {
	t.Helper()
	losetup := Need(t, "losetup", "mount")
	if os.Geteuid() != 0 {
		t.Skipf("SKIPPING: attaching a loop device with %d-byte sectors needs root", sectorSize)
	}
	args := []string{"--sector-size", strconv.Itoa(sectorSize), "--find", "--show", "--partscan"}
	if !writable {
		args = append(args, "--read-only")
	}
	out, err := exec.Command(losetup, append(args, img)...).CombinedOutput()
	if err != nil {
		t.Skipf("SKIPPING: cannot attach a loop device here (%v: %s); the 4096-byte-sector judges need one", err, bytes.TrimSpace(out))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v\n%s", dev, err, out)
		}
	})
	return dev
}

// LoopPartition makes a device node for partition n of loop device dev (attached by Loop,
// which scans partitions) in a temporary directory and returns its path: containers often
// have no udev to create /dev/loopNpM. It skips when the kernel shows no such partition.
func LoopPartition(t testing.TB, dev string, n int) string {
	t.Helper()
	name := filepath.Base(dev)
	b, err := os.ReadFile(filepath.Join("/sys/class/block", name, fmt.Sprintf("%sp%d", name, n), "dev"))
	if err != nil {
		t.Skipf("SKIPPING: the kernel shows no partition %d on %s: %v", n, dev, err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	node := filepath.Join(t.TempDir(), fmt.Sprintf("%sp%d", name, n))
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		t.Skipf("SKIPPING: cannot make a device node here: %v", err)
	}
	return node
}
