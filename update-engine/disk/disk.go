// Package disk is the engine's view of the A/B USR partitions on one disk: which one runs,
// which one is the target, the boot-protocol operations on them, and a writer that can only
// reach the target's bytes.
//
// The disk is a block device or an image file (--disk). The active partition is, in order:
// the configured one (a label such as USR-A, or a partition number; required for image files,
// which have no /usr mount), else the partition backing /usr (blockdev.Finder, following
// dm-verity). The target is the other USR-typed partition; a disk with other than two USR
// partitions is refused.
//
// Every boot operation opens the disk for writing (blockdev's exclusive lock), applies one
// slots operation through slots.Apply (crash-safe write order, read back) and closes it, so
// the GPT is never held open across a long download.
//
// # Never a byte to the active partition
//
// OpenTarget returns a Window: an io.WriterAt/io.ReaderAt whose offsets are relative to the
// target partition and which refuses (ErrOutOfRange) any access that would leave
// [0, partition size). The window is computed from the GPT entry of the target and checked
// not to overlap the active partition or the GPT itself before it is handed out.
// OpenSource returns a read-only Window on the active partition, the source a delta payload
// reads: the device is opened without write access and the window refuses every write.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

// Errors callers branch on.
var (
	ErrOutOfRange = errors.New("disk: write outside the target partition")
	ErrLayout     = errors.New("disk: not an A/B USR layout")
	ErrNotOnDisk  = errors.New("disk: /usr is not on this disk")
)

// Disk is the A/B pair on one disk or image file.
type Disk struct {
	Path string
	// Active is the running partition's label or number; empty means the partition backing
	// /usr.
	Active string
	// SectorSize overrides the logical sector size (image files); 0: detect.
	SectorSize int
	Finder     blockdev.Finder
}

func (d *Disk) open(ctx context.Context, write bool) (*blockdev.Disk, error) {
	ss := d.SectorSize
	bd, err := blockdev.Open(ctx, d.Path, blockdev.Options{Write: write, SectorSize: ss})
	if err != nil {
		return nil, err
	}
	if ss == 0 && !bd.IsBlockDevice() {
		// Image files: find the sector size from the GPT itself (512 or 4096).
		if det, err := gpt.DetectSectorSize(bd); err == nil && det != bd.SectorSize() {
			bd.Close()
			return blockdev.Open(ctx, d.Path, blockdev.Options{Write: write, SectorSize: det})
		}
	}
	return bd, nil
}

func (d *Disk) table(ctx context.Context) (*gpt.Table, *blockdev.Disk, error) {
	bd, err := d.open(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	t, err := gpt.Read(ctx, bd, bd.Size(), bd.SectorSize())
	if err != nil {
		bd.Close()
		return nil, nil, err
	}
	return t, bd, nil
}

// pair returns the active and target slots of t.
func (d *Disk) pair(ctx context.Context, t *gpt.Table) (slots.Slot, slots.Slot, error) {
	usr := slots.List(t)
	if len(usr) != 2 {
		return slots.Slot{}, slots.Slot{}, fmt.Errorf("%w: %d USR partitions on %s", ErrLayout, len(usr), d.Path)
	}
	active := -1
	switch {
	case d.Active != "":
		for i, s := range usr {
			if s.Label == d.Active || strconv.Itoa(s.Number) == d.Active {
				active = i
			}
		}
		if active < 0 {
			return slots.Slot{}, slots.Slot{}, fmt.Errorf("%w: no USR partition %q on %s", ErrLayout, d.Active, d.Path)
		}
	default:
		p, err := d.Finder.BackingPartition(ctx, "/usr")
		if err != nil {
			return slots.Slot{}, slots.Slot{}, fmt.Errorf("disk: finding the partition behind /usr: %w", err)
		}
		if !sameFile(p.Disk, d.Path) {
			return slots.Slot{}, slots.Slot{}, fmt.Errorf("%w: /usr is on %s partition %d, the disk is %s", ErrNotOnDisk, p.Disk, p.Number, d.Path)
		}
		for i, s := range usr {
			if s.Number == p.Number {
				active = i
			}
		}
		if active < 0 {
			return slots.Slot{}, slots.Slot{}, fmt.Errorf("%w: /usr is on partition %d, not a USR partition", ErrLayout, p.Number)
		}
	}
	return usr[active], usr[1-active], nil
}

func sameFile(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return ra == rb
}

// Slots returns the active and target partitions with their boot attributes.
func (d *Disk) Slots(ctx context.Context) (slots.Slot, slots.Slot, error) {
	t, bd, err := d.table(ctx)
	if err != nil {
		return slots.Slot{}, slots.Slot{}, err
	}
	defer bd.Close()
	return d.pair(ctx, t)
}

// apply runs op on the table after checking that n is the target (never the active one).
func (d *Disk) apply(ctx context.Context, op func(*gpt.Table) error) error {
	bd, err := d.open(ctx, true)
	if err != nil {
		return err
	}
	defer bd.Close()
	_, err = slots.Apply(ctx, bd, op)
	return err
}

// Prepare makes partition n unbootable (0/0/0); n must not be the active partition.
func (d *Disk) Prepare(ctx context.Context, n int) error {
	return d.apply(ctx, func(t *gpt.Table) error {
		a, _, err := d.pair(ctx, t)
		if err != nil {
			return err
		}
		if a.Number == n {
			return fmt.Errorf("disk: refusing to make the active partition %d unbootable", n)
		}
		return slots.Prepare(t, n)
	})
}

// Flip makes partition n boot next, once.
func (d *Disk) Flip(ctx context.Context, n int) error {
	return d.apply(ctx, func(t *gpt.Table) error { return slots.Flip(t, n) })
}

// MarkGood marks partition n successful.
func (d *Disk) MarkGood(ctx context.Context, n int) error {
	return d.apply(ctx, func(t *gpt.Table) error { return slots.MarkGood(t, n) })
}

// Rollback makes the known-good partition other than from boot next.
func (d *Disk) Rollback(ctx context.Context, from int) (int, error) {
	var to int
	err := d.apply(ctx, func(t *gpt.Table) error {
		var err error
		to, err = slots.Rollback(t, from)
		return err
	})
	return to, err
}

// Window is a view of one partition: offsets are relative to its start and nothing outside
// [0, Size) can be read or written.
type Window struct {
	dev  *blockdev.Disk
	off  int64
	size int64
	ro   bool // the active partition (OpenSource): every write is refused
}

// Size is the partition size in bytes.
func (w *Window) Size() int64 { return w.size }

// WriteAt writes p at off within the partition.
func (w *Window) WriteAt(p []byte, off int64) (int, error) {
	if w.ro {
		return 0, fmt.Errorf("%w: the active partition is only ever read", ErrOutOfRange)
	}
	if off < 0 || off > w.size || int64(len(p)) > w.size-off {
		return 0, fmt.Errorf("%w: %d bytes at %d, partition size %d", ErrOutOfRange, len(p), off, w.size)
	}
	return w.dev.WriteAt(p, w.off+off)
}

// ReadAt reads within the partition.
func (w *Window) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= w.size {
		return 0, io.EOF
	}
	if int64(len(p)) > w.size-off {
		n, err := w.dev.ReadAt(p[:w.size-off], w.off+off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return w.dev.ReadAt(p, w.off+off)
}

// Sync flushes the device.
func (w *Window) Sync() error { return w.dev.Sync() }

// Close closes the device.
func (w *Window) Close() error { return w.dev.Close() }

// OpenTarget opens the target partition n for writing. n must be the target, not the active
// partition, and its byte range must not overlap the active partition.
func (d *Disk) OpenTarget(ctx context.Context, n int) (*Window, error) {
	bd, err := d.open(ctx, true)
	if err != nil {
		return nil, err
	}
	t, err := gpt.Read(ctx, bd, bd.Size(), bd.SectorSize())
	if err != nil {
		bd.Close()
		return nil, err
	}
	a, b, err := d.pair(ctx, t)
	if err != nil {
		bd.Close()
		return nil, err
	}
	if b.Number != n {
		bd.Close()
		return nil, fmt.Errorf("disk: partition %d is not the target (active %d, target %d)", n, a.Number, b.Number)
	}
	ea, err1 := t.Entry(a.Number)
	eb, err2 := t.Entry(b.Number)
	if err := errors.Join(err1, err2); err != nil {
		bd.Close()
		return nil, err
	}
	first, last := t.Header().FirstUsableLBA, t.Header().LastUsableLBA
	if eb.LastLBA < eb.FirstLBA || eb.FirstLBA < first || eb.LastLBA > last ||
		!(eb.LastLBA < ea.FirstLBA || eb.FirstLBA > ea.LastLBA) {
		bd.Close()
		return nil, fmt.Errorf("%w: target %d [%d, %d] overlaps the active partition or the GPT", ErrLayout, n, eb.FirstLBA, eb.LastLBA)
	}
	ss := int64(bd.SectorSize())
	return &Window{dev: bd, off: int64(eb.FirstLBA) * ss, size: int64(eb.LastLBA-eb.FirstLBA+1) * ss}, nil
}

// OpenSource opens the active partition n read-only (the source of a delta payload): the
// device is opened without write access and the window refuses every write.
func (d *Disk) OpenSource(ctx context.Context, n int) (*Window, error) {
	bd, err := d.open(ctx, false)
	if err != nil {
		return nil, err
	}
	t, err := gpt.Read(ctx, bd, bd.Size(), bd.SectorSize())
	if err != nil {
		bd.Close()
		return nil, err
	}
	a, _, err := d.pair(ctx, t)
	if err != nil {
		bd.Close()
		return nil, err
	}
	if a.Number != n {
		bd.Close()
		return nil, fmt.Errorf("disk: partition %d is not the active one (%d)", n, a.Number)
	}
	e, err := t.Entry(a.Number)
	if err != nil {
		bd.Close()
		return nil, err
	}
	ss := int64(bd.SectorSize())
	return &Window{dev: bd, off: int64(e.FirstLBA) * ss, size: int64(e.LastLBA-e.FirstLBA+1) * ss, ro: true}, nil
}
