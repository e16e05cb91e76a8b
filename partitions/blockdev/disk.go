package blockdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrHeld: another writer holds the disk's lock.
var ErrHeld = errors.New("blockdev: disk is held by another writer")

// ErrNotDisk: the path is neither a block device nor a regular file (a FIFO, a socket, a
// character device, a directory).
var ErrNotDisk = errors.New("blockdev: neither a block device nor a regular file")

// Options configure Open.
type Options struct {
	// Write opens the disk read-write and takes the exclusive writer lock.
	Write bool
	// SectorSize overrides the logical sector size; 0 means BLKSSZGET for block devices and
	// 512 for files.
	SectorSize int
	// LockWait is how long to keep trying for the writer lock before ErrHeld. udev holds a
	// shared lock on a block device for a moment while it probes it, so callers that write
	// real disks should allow a second or so; 0 tries once.
	LockWait time.Duration
}

// Disk is an open whole disk or image file.
type Disk struct {
	f          *os.File
	path       string
	size       int64
	sectorSize int
	block      bool
}

// Open opens path (a block device or a regular file). Anything else is refused with
// ErrNotDisk before it is opened: opening a FIFO blocks until a writer appears, and no
// context can end a blocked open(2).
func Open(ctx context.Context, path string, opts Options) (*Disk, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("blockdev: %w", err)
	}
	if err := checkKind(path, fi.Mode()); err != nil {
		return nil, err
	}
	flag := os.O_RDONLY
	if opts.Write {
		flag = os.O_RDWR
	}
	// Not O_EXCL: on a block device that fails while any partition is mounted. O_NONBLOCK so
	// that a FIFO put in the file's place after the stat cannot block the open either (init
	// refuses it); reads and writes of files and block devices ignore the flag, and it is
	// cleared right after.
	f, err := os.OpenFile(path, flag|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("blockdev: %w", err)
	}
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, fmt.Errorf("blockdev: %s: %w", path, err)
	}
	d := &Disk{f: f, path: path}
	if err := d.init(opts); err != nil {
		f.Close()
		return nil, err
	}
	if opts.Write {
		if err := d.lock(ctx, opts.LockWait); err != nil {
			f.Close()
			return nil, err
		}
	}
	return d, nil
}

// lock takes the exclusive writer lock, retrying until wait has passed.
func (d *Disk) lock(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(d.f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("blockdev: locking %s: %w", d.path, err)
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: %s", ErrHeld, d.path)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *Disk) init(opts Options) error {
	fi, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("blockdev: %w", err)
	}
	fd := int(d.f.Fd())
	switch {
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		d.block = true
		size, err := blkGetSize64(fd)
		if err != nil {
			return fmt.Errorf("blockdev: BLKGETSIZE64 on %s: %w", d.path, err)
		}
		ss, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
		if err != nil {
			return fmt.Errorf("blockdev: BLKSSZGET on %s: %w", d.path, err)
		}
		d.size, d.sectorSize = int64(size), ss
	case fi.Mode().IsRegular():
		d.size, d.sectorSize = fi.Size(), 512
	default:
		return checkKind(d.path, fi.Mode())
	}
	if opts.SectorSize != 0 {
		if opts.SectorSize < 512 || opts.SectorSize&(opts.SectorSize-1) != 0 {
			return fmt.Errorf("blockdev: sector size %d is not a power of two of at least 512", opts.SectorSize)
		}
		if d.block && opts.SectorSize != d.sectorSize {
			return fmt.Errorf("blockdev: %s has %d-byte logical sectors, not %d", d.path, d.sectorSize, opts.SectorSize)
		}
		d.sectorSize = opts.SectorSize
	}
	return nil
}

// checkKind refuses every file type but a block device and a regular file.
func checkKind(path string, m os.FileMode) error {
	if m.IsRegular() || m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0 {
		return nil
	}
	kind := "a special file"
	switch {
	case m&os.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&os.ModeSocket != 0:
		kind = "a socket"
	case m&os.ModeCharDevice != 0:
		kind = "a character device"
	case m.IsDir():
		kind = "a directory"
	}
	return fmt.Errorf("%w: %s is %s", ErrNotDisk, path, kind)
}

// Path is the path the disk was opened with.
func (d *Disk) Path() string { return d.path }

// Size is the size in bytes.
func (d *Disk) Size() int64 { return d.size }

// SectorSize is the logical sector size in bytes.
func (d *Disk) SectorSize() int { return d.sectorSize }

// IsBlockDevice reports whether the disk is a block device rather than a file.
func (d *Disk) IsBlockDevice() bool { return d.block }

// ReadAt reads at an absolute byte offset.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }

// WriteAt writes at an absolute byte offset.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, off) }

// Sync flushes written data to stable storage (fsync).
func (d *Disk) Sync() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("blockdev: fsync %s: %w", d.path, err)
	}
	return nil
}

// Close releases the lock and the descriptor.
func (d *Disk) Close() error {
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("blockdev: %w", err)
	}
	return nil
}

// blkGetSize64 issues BLKGETSIZE64, which writes a uint64 through its argument.
func blkGetSize64(fd int) (uint64, error) {
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.BLKGETSIZE64), uintptr(unsafe.Pointer(&size))); errno != 0 {
		return 0, errno
	}
	return size, nil
}
