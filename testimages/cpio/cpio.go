// Package cpio writes "newc" cpio archives (the SVR4 portable format without checksums, magic
// "070701"), the only archive format the Linux kernel unpacks as an initramfs.
//
// Format: every member is a 110-byte ASCII header of thirteen 8-digit hexadecimal fields
// (ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
// namesize including the trailing NUL, check = 0) after the magic, then the NUL-terminated name
// padded to a multiple of four bytes counted from the start of the header, then the data padded
// the same way. The archive ends with a member named "TRAILER!!!". Names are relative paths
// without a leading slash; parents must come before their children, which the kernel needs
// because it creates each entry with plain mkdir/open calls.
//
// The writer is deterministic: inode numbers count up from 1 in write order and every mtime is
// the one the caller gives (zero by default), so the same inputs produce the same bytes, which
// lets callers cache archives by content hash. It rejects names that would escape the archive
// root ("..", absolute paths) and sizes that do not fit the 32-bit fields.
package cpio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Mode type bits as stored in the header (the st_mode values of Linux).
const (
	typeDir     = 0o040000
	typeRegular = 0o100000
	typeSymlink = 0o120000
	typeChar    = 0o020000
)

const (
	magic        = "070701"
	headerSize   = 110
	trailerName  = "TRAILER!!!"
	maxFieldSize = 1<<32 - 1
)

// ErrBadName reports a member name that is empty, absolute, or climbs out of the archive root.
var ErrBadName = errors.New("cpio: bad member name")

// ErrClosed reports a write after Close.
var ErrClosed = errors.New("cpio: writer closed")

// Writer appends members to a newc archive. It is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	ino    uint32
	mtime  uint32
	closed bool
	seen   map[string]bool
}

// NewWriter returns a Writer that writes the archive to w. Call Close to write the trailer.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, seen: make(map[string]bool)}
}

// cleanName checks a member name and returns it in canonical form.
func cleanName(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	c := path.Clean(name)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") || c == trailerName {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return c, nil
}

// Dir adds a directory with the given permission bits.
func (w *Writer) Dir(name string, perm fs.FileMode) error {
	return w.write(name, typeDir|uint32(perm.Perm()), 2, 0, 0, nil)
}

// File adds a regular file holding data, with the given permission bits.
func (w *Writer) File(name string, perm fs.FileMode, data []byte) error {
	return w.write(name, typeRegular|uint32(perm.Perm()), 1, 0, 0, data)
}

// Symlink adds a symbolic link at name pointing to target.
func (w *Writer) Symlink(name, target string) error {
	if target == "" {
		return fmt.Errorf("cpio: symlink %q: empty target", name)
	}
	return w.write(name, typeSymlink|0o777, 1, 0, 0, []byte(target))
}

// CharDev adds a character device node (for example dev/console, 5:1), so that the kernel's
// early console works before devtmpfs is mounted.
func (w *Writer) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	return w.write(name, typeChar|uint32(perm.Perm()), 1, major, minor, nil)
}

func (w *Writer) write(name string, mode, nlink, rmajor, rminor uint32, data []byte) error {
	if w.closed {
		return ErrClosed
	}
	c, err := cleanName(name)
	if err != nil {
		return err
	}
	if w.seen[c] {
		return fmt.Errorf("cpio: duplicate member %q", c)
	}
	if dir := path.Dir(c); dir != "." && !w.seen[dir] {
		return fmt.Errorf("cpio: member %q written before its directory %q", c, dir)
	}
	if uint64(len(data)) > maxFieldSize {
		return fmt.Errorf("cpio: member %q: %d bytes do not fit the size field", c, len(data))
	}
	w.ino++
	if err := w.member(c, w.ino, mode, nlink, rmajor, rminor, data); err != nil {
		return err
	}
	w.seen[c] = true
	return nil
}

func (w *Writer) member(name string, ino, mode, nlink, rmajor, rminor uint32, data []byte) error {
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		magic, ino, mode, 0, 0, nlink, w.mtime, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	buf := make([]byte, 0, pad4(headerSize+len(name)+1)+pad4(len(data)))
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad4(len(buf))-len(buf))...)
	buf = append(buf, data...)
	buf = append(buf, make([]byte, pad4(len(data))-len(data))...)
	if _, err := w.w.Write(buf); err != nil {
		return fmt.Errorf("cpio: writing %q: %w", name, err)
	}
	return nil
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	return w.member(trailerName, 0, 0, 1, 0, 0, nil)
}

func pad4(n int) int { return (n + 3) &^ 3 }
