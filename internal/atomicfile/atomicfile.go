// Package atomicfile replaces files so that a crash or a failed write leaves either the old
// content or the new one at the path, never a mix or a short file. A failed write leaves no
// temporary file; a crash may leave one, named ".<name>.tmp-<random>".
//
// Every state file, key, metadata file, payload and disk image the module writes goes
// through it, so there is one rule for all of them:
//
//  1. a temporary file ".<name>.tmp-<random>" is created next to the target (or in a
//     directory the caller names on the same file system) and given the caller's mode
//     explicitly, before any byte is written, so umask plays no part and a secret is never
//     readable by others;
//  2. the caller writes it (WriteFile for bytes, Write for a stream, File for io.WriterAt
//     users and callers that check the content before they commit);
//  3. Commit fsyncs and closes it, renames it over the target and fsyncs the target's
//     directory, so the rename itself survives a crash (CommitNew links it instead, for a
//     file that must not replace an existing one, like a key made on first start);
//  4. on every error before the rename, and whenever a File is dropped without Commit
//     (Cleanup, usually deferred), the temporary file is closed and removed and the target is
//     left as it was.
//
// A directory fsync that the file system refuses with EINVAL (some network and FUSE file
// systems cannot sync directories) is not an error; any other failure is ErrNotDurable,
// reported after the rename: the new content is then in place but may not survive a crash.
//
// The calls take no context: like the os package they touch one local file, and a long
// write goes through File, whose caller checks its own context between writes.
//
// The package uses the standard library only, so every area of the module may import it,
// including the programs that run as a test VM's init.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotDurable: the new content is in place, but syncing its directory failed, so the
// rename may not survive a crash. A caller that must undo the write on failure branches on
// it: the target then holds the new content, not the old.
var ErrNotDurable = errors.New("atomicfile: written, but its directory could not be synced")

// File is the new content of a target path, written to a temporary file until Commit.
// Write to it through the embedded *os.File (Write, WriteAt, Truncate, ...); do not Close
// it: Commit or Cleanup does.
type File struct {
	*os.File
	path string // the target
	done bool   // committed or cleaned up

	// syncDir fsyncs a directory; a field so the package's tests can watch and fail it.
	syncDir func(dir string) error
}

// Create starts replacing path: it returns a File backed by a temporary file in path's
// directory, with mode perm.
func Create(path string, perm os.FileMode) (*File, error) {
	return CreateIn(filepath.Dir(path), path, perm)
}

// CreateIn is Create with the temporary file in tmpDir, which must be on the same file system
// as path. A caller that keeps its temporary files in one directory uses it, so that it can
// remove what a crash left there.
func CreateIn(tmpDir, path string, perm os.FileMode) (*File, error) {
	if perm&^os.ModePerm != 0 {
		return nil, fmt.Errorf("atomicfile: writing %s: mode %v has more than permission bits", path, perm)
	}
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	return &File{File: f, path: path, syncDir: SyncDir}, nil
}

// Commit makes the written content the content of the target path: fsync, close, rename,
// fsync of the directory. On an error before the rename the temporary file is removed and
// the target is unchanged. Commit or Cleanup after a Commit is a no-op for Cleanup and an
// error for Commit.
func (f *File) Commit() error {
	return f.commit(os.Rename)
}

// CommitNew is Commit for a file that must not replace anything: it puts the content at the
// target with a hard link instead of a rename, so when the target exists (another process
// made it first) it fails with an error wrapping fs.ErrExist and leaves the existing file.
func (f *File) CommitNew() error {
	return f.commit(func(tmp, path string) error {
		if err := os.Link(tmp, path); err != nil {
			return err
		}
		return os.Remove(tmp)
	})
}

// commit syncs and closes the temporary file, puts it in place with place, and syncs the
// directory.
func (f *File) commit(place func(tmp, path string) error) error {
	if f.done {
		return fmt.Errorf("atomicfile: writing %s: already committed or cleaned up", f.path)
	}
	tmp := f.Name()
	if err := f.Sync(); err != nil {
		f.Cleanup()
		return fmt.Errorf("atomicfile: syncing %s: %w", tmp, err)
	}
	if err := f.File.Close(); err != nil {
		f.done = true
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: writing %s: %w", tmp, err)
	}
	f.done = true
	if err := place(tmp, f.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: writing %s: %w", f.path, err)
	}
	dir := filepath.Dir(f.path)
	if err := f.syncDir(dir); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("%w: %s: %w", ErrNotDurable, f.path, err)
	}
	return nil
}

// Cleanup closes and removes the temporary file unless Commit has run; the target is left
// as it was. Deferring it right after Create covers every error path. It returns the error
// of removing the temporary file, if any.
func (f *File) Cleanup() error {
	if f.done {
		return nil
	}
	f.done = true
	f.File.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("atomicfile: removing %s: %w", f.Name(), err)
	}
	return nil
}

// WriteFile replaces path with data, with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	return f.Commit()
}

// writeBuffer is the buffer of Write: large enough that a stream of small writes (an
// encoder, a payload builder) becomes few system calls.
const writeBuffer = 1 << 20

// Write replaces path with what fill writes to w, with mode perm: Create, fill through a
// buffer, Commit. When fill fails, its error is returned as it is and path is left as it was.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	bw := bufio.NewWriterSize(f, writeBuffer)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir fsyncs the directory dir, so that the entries renamed, created or removed in it
// survive a crash; Commit calls it for the target's directory, a caller calls it after
// creating a directory (for its parent) or removing a file.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: syncing directory %s: %w", dir, err)
	}
	return nil
}
