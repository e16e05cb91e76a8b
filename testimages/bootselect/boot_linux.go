package bootselect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"golang.org/x/sys/unix"
)

// Config says where things are, inside the initramfs and on the disk.
type Config struct {
	Disk        string        // whole disk, e.g. /dev/vda
	ModuleList  string        // file listing the modules to load, e.g. /lib/modules/load.list
	NewRoot     string        // mount point of ROOT, e.g. /newroot
	Init        string        // the test OS init, relative to the USR mount, e.g. bin/init
	VersionFile string        // relative to the USR mount, e.g. share/switchyard/version
	DiskWait    time.Duration // how long to wait for the disk to appear
	Console     io.Writer     // where the stable lines go (the serial console)
}

// Boot runs the boot sequence of the package comment. On success it does not return (the
// process image is replaced). Callers power off on any error it returns.
func Boot(ctx context.Context, cfg Config) error {
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Console, "switchyard-boot: "+format+"\n", args...) }
	for _, m := range []struct{ src, dir, fstype string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
	} {
		if err := mount(m.src, m.dir, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return err
		}
	}
	if err := loadModules(cfg.ModuleList, say); err != nil {
		return err
	}
	if err := waitFor(ctx, cfg.Disk, cfg.DiskWait); err != nil {
		return err
	}
	disk, err := blockdev.Open(ctx, cfg.Disk, blockdev.Options{Write: true})
	if err != nil {
		return fmt.Errorf("bootselect: %w", err)
	}
	c, err := Choose(ctx, disk)
	if cerr := disk.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("bootselect: closing %s: %w", cfg.Disk, cerr)
	}
	if IsNoBootable(err) {
		say("NO BOOTABLE USR PARTITION on %s (%s); powering off", cfg.Disk, Describe(c.States))
		return err
	}
	if err != nil {
		return err
	}
	say("gptprio.next chose partition %d (%s), tries left %d; slots: %s", c.Slot.Number, c.Slot.Label, c.Tries, Describe(c.States))

	rootDev := PartitionDevice(cfg.Disk, c.Root.Number)
	usrDev := PartitionDevice(cfg.Disk, c.Slot.Number)
	for _, d := range []string{rootDev, usrDev} {
		if err := waitFor(ctx, d, cfg.DiskWait); err != nil {
			return err
		}
	}
	if err := mount(rootDev, cfg.NewRoot, "ext4", 0, ""); err != nil {
		return err
	}
	usr := filepath.Join(cfg.NewRoot, "usr")
	if err := mount(usrDev, usr, "ext4", unix.MS_RDONLY, ""); err != nil {
		return err
	}
	version, err := readVersion(filepath.Join(usr, cfg.VersionFile))
	if err != nil {
		return err
	}
	fmt.Fprintln(cfg.Console, c.Line(version))
	return switchRoot(cfg.NewRoot, "/usr/"+strings.TrimPrefix(cfg.Init, "/"), c, version)
}

// mount creates dir and mounts src on it.
func mount(src, dir, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bootselect: %w", err)
	}
	if err := unix.Mount(src, dir, fstype, flags, data); err != nil {
		return fmt.Errorf("bootselect: mount %s on %s (%s): %w", src, dir, fstype, err)
	}
	return nil
}

// loadModules loads every module the list names, in order. A module already loaded is fine.
func loadModules(list string, say func(string, ...any)) error {
	data, err := os.ReadFile(list)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootselect: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("bootselect: module: %w", err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("bootselect: loading %s: %w", p, err)
		}
		n++
	}
	say("loaded %d kernel modules", n)
	return nil
}

// waitFor polls until path exists (devtmpfs creates device nodes as drivers find them).
func waitFor(ctx context.Context, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bootselect: %s did not appear within %v", path, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// maxVersionSize bounds the version file.
const maxVersionSize = 256

func readVersion(path string) (string, error) {
	b, err := smallfile.Read(path, maxVersionSize)
	if err != nil {
		return "", fmt.Errorf("bootselect: version: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" || strings.ContainsAny(v, " \t\n") {
		return "", fmt.Errorf("bootselect: %s does not hold one version word", path)
	}
	return v, nil
}

// switchRoot moves the kernel file systems under newRoot, makes it the root and execs init.
func switchRoot(newRoot, init string, c Choice, version string) error {
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		target := filepath.Join(newRoot, d)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("bootselect: %w", err)
		}
		if err := unix.Mount(d, target, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("bootselect: moving %s: %w", d, err)
		}
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("bootselect: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("bootselect: moving %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("bootselect: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("bootselect: %w", err)
	}
	env := []string{
		"PATH=/usr/bin:/usr/sbin:/bin:/sbin",
		fmt.Sprintf("SWITCHYARD_BOOT_PARTITION=%d", c.Slot.Number),
		"SWITCHYARD_BOOT_LABEL=" + c.Slot.Label,
		"SWITCHYARD_BOOT_VERSION=" + version,
	}
	if err := unix.Exec(init, []string{init}, env); err != nil {
		return fmt.Errorf("bootselect: exec %s: %w", init, err)
	}
	return nil
}

// PowerOff syncs and powers the machine off. It returns only when the kernel refuses.
func PowerOff() error {
	unix.Sync()
	return fmt.Errorf("bootselect: power off: %w", unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF))
}
