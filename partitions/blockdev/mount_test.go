package blockdev_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"golang.org/x/sys/unix"
)

// A mountinfo in the shape of a Flatcar host: /usr is dm-verity on /dev/sda3.
const flatcarMountinfo = `22 1 8:9 / / rw,relatime shared:1 - ext4 /dev/sda9 rw
23 22 254:0 / /usr ro,relatime shared:2 - ext4 /dev/mapper/usr ro
24 22 8:6 / /oem rw,relatime shared:3 - btrfs /dev/sda6 rw
25 22 0:22 / /run\040dir rw shared:4 - tmpfs tmpfs rw
26 23 8:4 / /usr rw,relatime shared:5 - ext4 /dev/sda4 rw
`

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name  string
		input string
		mount string
		want  blockdev.DevNum
		err   error
		msg   string
	}{
		{"root", flatcarMountinfo, "/", blockdev.DevNum{Major: 8, Minor: 9}, nil, ""},
		{"last /usr wins", flatcarMountinfo, "/usr", blockdev.DevNum{Major: 8, Minor: 4}, nil, ""},
		{"escaped space", flatcarMountinfo, "/run dir", blockdev.DevNum{Major: 0, Minor: 22}, nil, ""},
		{"not mounted", flatcarMountinfo, "/boot", blockdev.DevNum{}, blockdev.ErrNotMounted, "/boot"},
		{"short line", "22 1 8:9\n", "/", blockdev.DevNum{}, nil, "fields"},
		{"bad device number", "22 1 8x9 / / rw - ext4 /dev/sda9 rw\n", "/", blockdev.DevNum{}, nil, "malformed device number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := blockdev.ParseMountinfo(strings.NewReader(tc.input), tc.mount)
			if tc.msg != "" || tc.err != nil {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %v / %q", err, tc.err, tc.msg)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(flatcarMountinfo), "/usr")
	f.Add([]byte("1 2 3:4 / /a\\040b rw - x y z\n"), "/a b")
	f.Fuzz(func(t *testing.T, data []byte, mount string) {
		n, err := blockdev.ParseMountinfo(strings.NewReader(string(data)), mount)
		if err == nil && n.String() == "" {
			t.Fatal("empty device number")
		}
	})
}

// sysfs builds a sysfs-shaped tree: disk sda (8:0) with partitions sda3 (8:3) and sda4
// (8:4), a dm-0 (254:0) on sda3, and a whole disk vdb (252:16) with no partitions.
func sysfs(t *testing.T) (sys, proc string) {
	root := t.TempDir()
	sys = filepath.Join(root, "sys")
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	dev := filepath.Join(sys, "devices", "pci0000:00", "0000:00:1f.2", "block")
	write(filepath.Join(dev, "sda", "dev"), "8:0\n")
	write(filepath.Join(dev, "sda", "uevent"), "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n")
	for _, p := range []string{"3", "4"} {
		write(filepath.Join(dev, "sda", "sda"+p, "dev"), "8:"+p+"\n")
		write(filepath.Join(dev, "sda", "sda"+p, "partition"), p+"\n")
		link(filepath.Join(dev, "sda", "sda"+p), filepath.Join(sys, "dev", "block", "8:"+p))
	}
	link(filepath.Join(dev, "sda"), filepath.Join(sys, "dev", "block", "8:0"))
	virt := filepath.Join(sys, "devices", "virtual", "block")
	write(filepath.Join(virt, "dm-0", "dev"), "254:0\n")
	link(filepath.Join(dev, "sda", "sda3"), filepath.Join(virt, "dm-0", "slaves", "sda3"))
	link(filepath.Join(virt, "dm-0"), filepath.Join(sys, "dev", "block", "254:0"))
	write(filepath.Join(virt, "vdb", "dev"), "252:16\n")
	link(filepath.Join(virt, "vdb"), filepath.Join(sys, "dev", "block", "252:16"))

	proc = filepath.Join(root, "proc")
	write(filepath.Join(proc, "self", "mountinfo"), "22 1 8:4 / / rw - ext4 /dev/sda4 rw\n23 22 254:0 / /usr ro - ext4 /dev/mapper/usr ro\n24 22 252:16 / /data rw - ext4 /dev/vdb rw\n")
	return sys, proc
}

func TestBackingPartition(t *testing.T) {
	sys, proc := sysfs(t)
	f := blockdev.Finder{Proc: proc, Sys: sys, Dev: "/dev"}
	tests := []struct {
		mount string
		want  blockdev.Partition
		err   error
	}{
		{"/", blockdev.Partition{Number: 4, Dev: blockdev.DevNum{Major: 8, Minor: 4}, Disk: "/dev/sda", DiskNo: blockdev.DevNum{Major: 8}}, nil},
		{"/usr", blockdev.Partition{Number: 3, Dev: blockdev.DevNum{Major: 8, Minor: 3}, Disk: "/dev/sda", DiskNo: blockdev.DevNum{Major: 8}}, nil},
		{"/data", blockdev.Partition{}, blockdev.ErrNotPartition},
		{"/boot", blockdev.Partition{}, blockdev.ErrNotMounted},
	}
	for _, tc := range tests {
		t.Run(tc.mount, func(t *testing.T) {
			got, err := f.BackingPartition(context.Background(), tc.mount)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestRealMountinfo reads this process's own mountinfo: "/" is always there.
func TestRealMountinfo(t *testing.T) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("SKIPPING: no /proc/self/mountinfo here: %v", err)
	}
	defer mi.Close()
	if _, err := blockdev.ParseMountinfo(mi, "/"); err != nil {
		t.Fatal(err)
	}
}

// TestWholeDisk resolves a partition's device node (made with mknod against the prepared
// sysfs tree) to its disk, and leaves files and whole disks alone.
func TestWholeDisk(t *testing.T) {
	sys, _ := sysfs(t)
	f := blockdev.Finder{Sys: sys, Dev: "/dev"}
	dir := t.TempDir()
	file := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if disk, n, err := f.WholeDisk(file); err != nil || disk != file || n != 0 {
		t.Fatalf("file: %s, %d, %v", disk, n, err)
	}
	part := filepath.Join(dir, "sda4")
	whole := filepath.Join(dir, "vdb")
	for path, dev := range map[string]int{part: int(unix.Mkdev(8, 4)), whole: int(unix.Mkdev(252, 16))} {
		if err := unix.Mknod(path, unix.S_IFBLK|0o600, dev); err != nil {
			t.Skipf("SKIPPING: cannot make a device node here (needs root): %v", err)
		}
	}
	if disk, n, err := f.WholeDisk(part); err != nil || disk != "/dev/sda" || n != 4 {
		t.Fatalf("partition node: %s, %d, %v", disk, n, err)
	}
	if disk, n, err := f.WholeDisk(whole); err != nil || disk != whole || n != 0 {
		t.Fatalf("whole-disk node: %s, %d, %v", disk, n, err)
	}
	if _, _, err := f.WholeDisk(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
