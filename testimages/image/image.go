// Package image builds the bootable test disks: a Debian kernel, an initramfs whose /init is
// the boot selector, and a Flatcar-layout GPT disk (partitions/layout) whose USR-A and USR-B
// hold read-only ext4 images of the test OS and whose ROOT holds an empty ext4 for / (with
// /var/lib/switchyard and /etc/switchyard). Nothing needs root or loop devices: the guest
// programs are built with `go build` (CGO_ENABLED=0), file systems with `mkfs.ext4 -d DIR` on
// a plain file, and each file system is copied into its partition's byte range of the disk.
//
// Cache (Builder.Cache, normally build/testimages at the module root):
//
//	kernel/PKG_VERSION/        the unpacked Debian kernel package (package debkernel)
//	bin/NAME                   guest binaries, rebuilt on each run (the Go build cache makes
//	                           that cheap) and used by content
//	initramfs/SHA256.cpio.gz   keyed by the hash of /init and every module
//	fs/SHA256.ext4             USR and ROOT file systems, keyed by the hash of their contents
//
// Entries are written to a temporary name and renamed, so a killed build never leaves a
// truncated entry under its final name. A disk is cheap to compose (sparse, zero blocks
// skipped) and is built fresh for each test, because tests write to it.
//
// Test OS layout on USR (mounted on /usr): bin/init, bin/sy-health, optional bin/busybox,
// share/switchyard/version, share/switchyard/services, plus OS.Files.
package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/testimages/debkernel"
	"github.com/switchyard-os/switchyard/testimages/initramfs"
	"github.com/switchyard-os/switchyard/testimages/kmod"
)

// Modules are what the guest needs from a Debian kernel that builds them as modules: the
// virtio PCI transport, disk and network, and ext4 with the CRC32C it needs at mount time.
var Modules = []string{"virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4"}

// Sizes is the layout of the test disks: USR partitions big enough for the test OS with an
// update engine in it, the rest minimal.
var Sizes = layout.Sizes{EFI: 1 * layout.MiB, BIOS: 1 * layout.MiB, USR: 64 * layout.MiB, OEM: 1 * layout.MiB, OEMConfig: 1 * layout.MiB, Root: 64 * layout.MiB}

// ErrMissingTool reports a host tool the build needs; the message names the Debian package.
var ErrMissingTool = errors.New("image: missing tool")

// Builder builds and caches images.
type Builder struct {
	Cache  string // cache directory, e.g. <module>/build/testimages
	Module string // module root, where `go build ./testimages/cmd/...` runs
	Go     string // the go command; "" means "go"
	Log    *slog.Logger
}

// Boot is what QEMU needs besides a disk.
type Boot struct {
	Kernel  *debkernel.Kernel
	Initrd  string
	FwdPipe string // host helper for guest forwards (testimages/cmd/fwdpipe)
}

// File is one extra file of a test OS.
type File struct {
	Data []byte
	Mode fs.FileMode
}

// OS is the content of one USR partition.
type OS struct {
	Version string
	// Services are the lines of share/switchyard/services; nil means just the health check.
	Services []string
	// Files are extra files, by path relative to /usr (e.g. "bin/update-engine").
	Files map[string]File
	// Busybox adds Debian's busybox-static as bin/busybox.
	Busybox bool
}

// CheckTools reports the first missing host tool, with the Debian package to install.
func CheckTools() error {
	for _, t := range []struct{ bin, pkg string }{
		{"mkfs.ext4", "e2fsprogs"}, {"apt-get", "apt"}, {"dpkg-deb", "dpkg"}, {"qemu-system-x86_64", "qemu-system-x86"},
	} {
		if _, err := exec.LookPath(t.bin); err != nil {
			return fmt.Errorf("%w: %s (run: apt-get install %s)", ErrMissingTool, t.bin, t.pkg)
		}
	}
	return nil
}

func (b *Builder) logger() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

// GoBinary builds a static linux/amd64 binary of the package pkg, given relative to the
// module root (e.g. "./testimages/cmd/bootselect" or "./cmd/update-engine"), and returns its
// path under the cache.
func (b *Builder) GoBinary(ctx context.Context, pkg string) (string, error) {
	name := filepath.Base(pkg)
	if !strings.HasPrefix(pkg, "./") || strings.Contains(pkg, "..") || name == "." || name == "/" {
		return "", fmt.Errorf("image: bad package %q (want ./path/to/cmd)", pkg)
	}
	out := filepath.Join(b.Cache, "bin", name)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp%d", out, os.Getpid())
	goCmd := b.Go
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, pkg)
	cmd.Dir = b.Module
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("image: go build %s: %w\n%s", name, err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	return out, nil
}

// Boot fetches the kernel, builds the boot selector and the initramfs, and the forwarding
// helper.
func (b *Builder) Boot(ctx context.Context) (*Boot, error) {
	k, err := debkernel.Fetch(ctx, b.logger(), filepath.Join(b.Cache, "kernel"), debkernel.Metapackage)
	if err != nil {
		return nil, err
	}
	initBin, err := b.GoBinary(ctx, "./testimages/cmd/bootselect")
	if err != nil {
		return nil, err
	}
	fwd, err := b.GoBinary(ctx, "./testimages/cmd/fwdpipe")
	if err != nil {
		return nil, err
	}
	initData, err := os.ReadFile(initBin)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	tree, err := kmod.Open(k.Modules)
	if err != nil {
		return nil, err
	}
	mods, err := tree.Resolve(Modules...)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "initramfs v1\x00%s\x00%d\x00", k.Release, len(initData))
	h.Write(initData)
	for _, m := range mods {
		fmt.Fprintf(h, "%s\x00%d\x00", m.Name, len(m.Data))
		h.Write(m.Data)
	}
	path := filepath.Join(b.Cache, "initramfs", hex.EncodeToString(h.Sum(nil))+".cpio.gz")
	if _, err := os.Stat(path); err != nil {
		var buf bytes.Buffer
		if err := initramfs.Write(&buf, initramfs.Spec{Init: initData, Release: k.Release, Modules: mods}); err != nil {
			return nil, err
		}
		if err := writeAtomic(path, buf.Bytes()); err != nil {
			return nil, err
		}
		b.logger().InfoContext(ctx, "built initramfs", "path", path, "modules", len(mods), "bytes", buf.Len())
	}
	return &Boot{Kernel: k, Initrd: path, FwdPipe: fwd}, nil
}

// writeAtomic writes data to path with mode 0644, creating its directory.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// entry is one file or directory of a file system to build.
type entry struct {
	path string
	mode fs.FileMode // fs.ModeDir for directories
	data []byte
}

// USR builds (or finds in the cache) the ext4 image of a test OS and returns its path.
func (b *Builder) USR(ctx context.Context, o OS) (string, error) {
	if o.Version == "" || strings.ContainsAny(o.Version, " \t\n/") {
		return "", fmt.Errorf("image: bad version %q", o.Version)
	}
	initBin, err := b.GoBinary(ctx, "./testimages/cmd/testinit")
	if err != nil {
		return "", err
	}
	health, err := b.GoBinary(ctx, "./testimages/cmd/sy-health")
	if err != nil {
		return "", err
	}
	services := o.Services
	if services == nil {
		services = []string{"/usr/bin/sy-health"}
	}
	files := map[string]File{
		"share/switchyard/version":  {Data: []byte(o.Version + "\n"), Mode: 0o644},
		"share/switchyard/services": {Data: []byte(strings.Join(services, "\n") + "\n"), Mode: 0o644},
	}
	for name, p := range map[string]string{"bin/init": initBin, "bin/sy-health": health} {
		data, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("image: %w", err)
		}
		files[name] = File{Data: data, Mode: 0o755}
	}
	if o.Busybox {
		data, err := os.ReadFile("/bin/busybox")
		if err != nil {
			return "", fmt.Errorf("%w: /bin/busybox (run: apt-get install busybox-static): %v", ErrMissingTool, err)
		}
		files["bin/busybox"] = File{Data: data, Mode: 0o755}
	}
	for name, f := range o.Files {
		if _, dup := files[name]; dup {
			return "", fmt.Errorf("image: %s is part of the test OS already", name)
		}
		files[name] = f
	}
	var entries []entry
	for name, f := range files {
		c := filepath.Clean(name)
		if filepath.IsAbs(c) || c == "." || strings.HasPrefix(c, "..") {
			return "", fmt.Errorf("image: bad file name %q", name)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		entries = append(entries, entry{path: c, mode: mode.Perm(), data: f.Data})
	}
	return b.filesystem(ctx, "USR", Sizes.USR, true, entries)
}

// Root builds (or finds) the ext4 image of an empty ROOT.
func (b *Builder) Root(ctx context.Context) (string, error) {
	var entries []entry
	for _, d := range []string{"usr", "dev", "proc", "sys", "run", "tmp", "etc/switchyard", "var/lib/switchyard"} {
		entries = append(entries, entry{path: d, mode: fs.ModeDir | 0o755})
	}
	return b.filesystem(ctx, "ROOT", Sizes.Root, false, entries)
}

// filesystem makes an ext4 image of size bytes holding entries, cached by content.
func (b *Builder) filesystem(ctx context.Context, label string, size int64, readOnly bool, entries []entry) (string, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	h := sha256.New()
	fmt.Fprintf(h, "ext4 v1\x00%s\x00%d\x00%v\x00", label, size, readOnly)
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", e.path, e.mode, len(e.data))
		h.Write(e.data)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	out := filepath.Join(b.Cache, "fs", sum+".ext4")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		return "", fmt.Errorf("%w: mkfs.ext4 (run: apt-get install e2fsprogs)", ErrMissingTool)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".build-")
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	for _, e := range entries {
		p := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("image: %w", err)
		}
		if e.mode.IsDir() {
			if err := os.MkdirAll(p, e.mode.Perm()); err != nil {
				return "", fmt.Errorf("image: %w", err)
			}
			continue
		}
		if err := os.WriteFile(p, e.data, e.mode.Perm()); err != nil {
			return "", fmt.Errorf("image: %w", err)
		}
		if err := os.Chmod(p, e.mode.Perm()); err != nil { // past the umask
			return "", fmt.Errorf("image: %w", err)
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	img := filepath.Join(tmp, "fs.ext4")
	f, err := os.Create(img)
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	args := []string{"-q", "-F", "-L", label, "-E", "root_owner=0:0", "-d", root}
	if readOnly {
		// Nothing writes a USR file system, so it needs no journal.
		args = append(args, "-O", "^has_journal")
	}
	cmd := exec.CommandContext(ctx, "mkfs.ext4", append(args, img)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("image: mkfs.ext4 %s: %w\n%s", label, err, msg)
	}
	if err := os.Rename(img, out); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	b.logger().InfoContext(ctx, "built file system", "label", label, "path", out)
	return out, nil
}

// Disk writes a new disk image at path: the Flatcar layout with Sizes, usrA and usrB (file
// system images; "" leaves a partition empty) and root copied into their partitions. USR-A
// starts as priority 1, successful; USR-B as 0/0/0.
func Disk(ctx context.Context, path, usrA, usrB, root string) error {
	opts := layout.Options{Sizes: Sizes}
	specs, _, err := layout.Plan(opts)
	if err != nil {
		return err
	}
	if err := layout.WriteFile(ctx, path, opts, nil); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	for _, s := range specs {
		var src string
		switch s.Number {
		case layout.NumUSRA:
			src = usrA
		case layout.NumUSRB:
			src = usrB
		case layout.NumRoot:
			src = root
		}
		if src == "" {
			continue
		}
		if err := copyInto(ctx, f, src, int64(s.FirstLBA)*512, int64(s.LastLBA-s.FirstLBA+1)*512, true); err != nil {
			return fmt.Errorf("image: %s: %w", s.Label, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return f.Close()
}

// WriteUSR copies a file system image into partition n (3 or 4) of an existing disk, as an
// update would, without touching the GPT.
func WriteUSR(ctx context.Context, path string, n int, fsImage string) error {
	specs, _, err := layout.Plan(layout.Options{Sizes: Sizes})
	if err != nil {
		return err
	}
	if n != layout.NumUSRA && n != layout.NumUSRB {
		return fmt.Errorf("image: partition %d is not a USR partition", n)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	for _, s := range specs {
		if s.Number == n {
			if err := copyInto(ctx, f, fsImage, int64(s.FirstLBA)*512, int64(s.LastLBA-s.FirstLBA+1)*512, false); err != nil {
				return fmt.Errorf("image: %s: %w", s.Label, err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return f.Close()
}

// copyInto copies the file src to dst at off, failing when it is larger than limit. With
// skipZeros, blocks of zeros are not written (for a fresh, sparse destination); the rest of the
// partition past src is left as it is.
func copyInto(ctx context.Context, dst io.WriterAt, src string, off, limit int64, skipZeros bool) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > limit {
		return fmt.Errorf("%w: %s is %d bytes, the partition %d", layout.ErrTooLarge, src, fi.Size(), limit)
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for pos := int64(0); ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(in, buf)
		if n > 0 && !(skipZeros && bytes.Equal(buf[:n], zero[:n])) {
			if _, werr := dst.WriteAt(buf[:n], off+pos); werr != nil {
				return werr
			}
		}
		pos += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
