package blockdev

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotMounted: no mountinfo line has the mount point.
var ErrNotMounted = errors.New("blockdev: mount point not found")

// ErrNotPartition: the device behind the mount point is not a partition of a disk.
var ErrNotPartition = errors.New("blockdev: device is not a disk partition")

// maxMountinfo bounds how much of a mountinfo file is read.
const maxMountinfo = 4 << 20

// DevNum is a device number.
type DevNum struct{ Major, Minor uint32 }

func (n DevNum) String() string { return fmt.Sprintf("%d:%d", n.Major, n.Minor) }

// ParseMountinfo returns the device number of the last mount of mountPoint in a
// /proc/PID/mountinfo stream (proc(5): "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - FS
// SOURCE SUPEROPTS"). The last one wins because later mounts shadow earlier ones.
func ParseMountinfo(r io.Reader, mountPoint string) (DevNum, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxMountinfo))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var found DevNum
	ok := false
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			return DevNum{}, fmt.Errorf("blockdev: mountinfo line %d: %d fields, want at least 5", line, len(fields))
		}
		if unescapeMount(fields[4]) != mountPoint {
			continue
		}
		n, err := parseDevNum(fields[2])
		if err != nil {
			return DevNum{}, fmt.Errorf("blockdev: mountinfo line %d: %w", line, err)
		}
		found, ok = n, true
	}
	if err := sc.Err(); err != nil {
		return DevNum{}, fmt.Errorf("blockdev: reading mountinfo: %w", err)
	}
	if !ok {
		return DevNum{}, fmt.Errorf("%w: %s", ErrNotMounted, mountPoint)
	}
	return found, nil
}

func parseDevNum(s string) (DevNum, error) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ":")
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return DevNum{}, fmt.Errorf("malformed device number %q", s)
	}
	return DevNum{uint32(a), uint32(b)}, nil
}

// unescapeMount undoes the octal escapes (\040 for space, …) mountinfo uses.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Partition is a partition of a whole disk.
type Partition struct {
	Number int    // the partition number, as in the GPT
	Dev    DevNum // the partition's device number
	Disk   string // the whole disk's node, e.g. /dev/sda
	DiskNo DevNum // the whole disk's device number
}

// Finder locates devices through procfs and sysfs. The zero value uses the real roots.
type Finder struct {
	Proc string // default /proc
	Sys  string // default /sys
	Dev  string // default /dev
}

func (f Finder) root(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// BackingPartition returns the partition (and its disk) that backs mountPoint in this
// process's mount namespace, following a device-mapper device to the partition below it.
func (f Finder) BackingPartition(ctx context.Context, mountPoint string) (Partition, error) {
	if err := ctx.Err(); err != nil {
		return Partition{}, err
	}
	mi, err := os.Open(filepath.Join(f.root(f.Proc, "/proc"), "self", "mountinfo"))
	if err != nil {
		return Partition{}, fmt.Errorf("blockdev: %w", err)
	}
	defer mi.Close()
	n, err := ParseMountinfo(mi, mountPoint)
	if err != nil {
		return Partition{}, err
	}
	return f.PartitionOf(n)
}

// PartitionOf resolves a device number to a partition and its disk through sysfs.
func (f Finder) PartitionOf(n DevNum) (Partition, error) {
	sys := f.root(f.Sys, "/sys")
	dir, err := filepath.EvalSymlinks(filepath.Join(sys, "dev", "block", n.String()))
	if err != nil {
		return Partition{}, fmt.Errorf("blockdev: device %s: %w", n, err)
	}
	// A device-mapper device (dm-verity /usr) sits on exactly one partition.
	for hops := 0; hops < 4; hops++ {
		slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
		if err != nil || len(slaves) == 0 {
			break
		}
		if len(slaves) != 1 {
			return Partition{}, fmt.Errorf("%w: %s sits on %d devices", ErrNotPartition, dir, len(slaves))
		}
		if dir, err = filepath.EvalSymlinks(filepath.Join(dir, "slaves", slaves[0].Name())); err != nil {
			return Partition{}, fmt.Errorf("blockdev: %w", err)
		}
	}
	num, err := readSysInt(filepath.Join(dir, "partition"))
	if err != nil {
		return Partition{}, fmt.Errorf("%w: %s has no partition number (%v)", ErrNotPartition, dir, err)
	}
	dev, err := readSysDev(filepath.Join(dir, "dev"))
	if err != nil {
		return Partition{}, err
	}
	parent := filepath.Dir(dir)
	diskNo, err := readSysDev(filepath.Join(parent, "dev"))
	if err != nil {
		return Partition{}, fmt.Errorf("%w: parent of %s: %v", ErrNotPartition, dir, err)
	}
	name := devName(parent)
	return Partition{Number: num, Dev: dev, Disk: filepath.Join(f.root(f.Dev, "/dev"), name), DiskNo: diskNo}, nil
}

func readSysInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func readSysDev(path string) (DevNum, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return DevNum{}, fmt.Errorf("blockdev: %w", err)
	}
	n, err := parseDevNum(string(b))
	if err != nil {
		return DevNum{}, fmt.Errorf("blockdev: %s: %w", path, err)
	}
	return n, nil
}

// devName reads DEVNAME from a sysfs uevent file, falling back to the directory name.
func devName(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "uevent")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "DEVNAME="); ok && v != "" {
				return v
			}
		}
	}
	return filepath.Base(dir)
}

// WholeDisk resolves path to the whole disk that holds it: for a partition's block device
// (/dev/sda4) it returns the disk's node and the partition number; for a whole disk or a
// regular file it returns path and 0.
func (f Finder) WholeDisk(path string) (disk string, partition int, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", 0, fmt.Errorf("blockdev: %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return path, 0, nil
	}
	p, err := f.PartitionOf(DevNum{unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))})
	if errors.Is(err, ErrNotPartition) {
		return path, 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	return p.Disk, p.Number, nil
}
