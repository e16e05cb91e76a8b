// Package payloads keeps the release files an omaha-server hosts. It defines what every
// backend shares — the Key naming one file, the Expect/Sums of an upload, the sentinel
// errors callers branch on and the Store contract — and implements the default backend,
// Dir, a local directory holding <dir>/<app>/<board>/<version>/<file>. The S3-compatible
// backend is package payloads/s3store; its test server is payloads/s3test.
//
// The Store contract, for every backend: Store streams the bytes (never the whole file in
// memory), hashes them while streaming, and makes them visible under the key only after
// the size and hash check; then it calls the commit callback (the release row's insert),
// and when that fails it removes what it placed. A refused, failed or interrupted upload
// leaves nothing under the key. Open returns a seekable reader of a stored file;
// ErrUnavailable means the backend cannot be reached now (hosts get 503, uploaders a clear
// error), never that the file is missing.
//
// Dir writes a payload streams it: bytes go to a temporary file in <dir>/.tmp (through
// internal/atomicfile) while SHA-256 and SHA-1 are computed, the size and (when given) the
// SHA-256 are compared with what the uploader declared, the file (mode 0644) is synced and
// only then renamed into place, and its directory and their parents up to <dir> synced. A
// commit callback (the release row's insert) runs after the rename; when it fails the file
// is removed, so a failed or truncated upload leaves neither a file nor a row. One upload
// per key at a time within a process.
//
// Reading goes through an os.Root, so no request path can leave the directory; path
// components are checked to be plain names as well.
package payloads

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
)

// Sentinel errors callers branch on.
var (
	// ErrMismatch: the written bytes differ from what the uploader declared (size or hash).
	ErrMismatch = errors.New("payloads: upload does not match its declared size or hash")
	// ErrTooLarge: the upload is over the configured limit.
	ErrTooLarge = errors.New("payloads: upload too large")
	// ErrBadName: a path component is not a plain name.
	ErrBadName = errors.New("payloads: not a plain name")
	// ErrBusy: another upload of the same key is in progress.
	ErrBusy = errors.New("payloads: an upload of this release is in progress")
	// ErrExists: the backend already holds a different file under the key (an upload
	// through another replica, or one left by a crash before its release row was written).
	ErrExists = errors.New("payloads: the payload store already holds a file for this release")
	// ErrUnavailable: the backend cannot be reached; try again later.
	ErrUnavailable = errors.New("payloads: the payload store is unavailable")
)

// Store is a payload backend: Dir, or s3store.Bucket.
type Store interface {
	// Store writes r as key, checks it against want, places it and calls commit; on any
	// failure nothing is left under key.
	Store(ctx context.Context, key Key, r io.Reader, want Expect, commit func(Sums) error) (Sums, error)
	// Open opens a stored file for reading; fs.ErrNotExist when it is missing.
	Open(ctx context.Context, key Key) (io.ReadSeekCloser, error)
	Close() error
}

// Key names one hosted file.
type Key struct {
	App, Board, Version, Name string
}

// Check reports whether every component of k is a plain name (CheckName).
func (k Key) Check() error {
	_, err := k.path()
	return err
}

func (k Key) path() (string, error) {
	for _, c := range []string{k.App, k.Board, k.Version, k.Name} {
		if err := CheckName(c); err != nil {
			return "", err
		}
	}
	return filepath.Join(k.App, k.Board, k.Version, k.Name), nil
}

// CheckName reports whether s can be a path component: 1 to 255 bytes, no separators,
// not "." or "..", no control characters, not starting with a dot.
func CheckName(s string) error {
	switch {
	case s == "" || len(s) > 255:
		return fmt.Errorf("%w: %q has a bad length", ErrBadName, s)
	case strings.HasPrefix(s, "."):
		return fmt.Errorf("%w: %q starts with a dot", ErrBadName, s)
	case strings.ContainsAny(s, "/\\?#%"):
		return fmt.Errorf("%w: %q contains a separator", ErrBadName, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q contains a control character", ErrBadName, s)
		}
	}
	return nil
}

// Sums are what was written.
type Sums struct {
	Size   int64
	SHA256 string // hex
	SHA1   string // hex
}

// Expect is what the uploader declared.
type Expect struct {
	Size   int64  // required: the exact byte count
	SHA256 string // hex; checked when not empty
}

// Dir is a payload directory.
type Dir struct {
	dir     string
	root    *os.Root
	maxSize int64

	mu   sync.Mutex
	busy map[string]bool
}

// Open opens (creating) the payload directory dir; maxSize caps one upload.
func Open(dir string, maxSize int64) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(dir, ".tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("payloads: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("payloads: %w", err)
	}
	// Temporary files of a crashed process are garbage.
	if entries, err := os.ReadDir(filepath.Join(dir, ".tmp")); err == nil {
		for _, e := range entries {
			os.Remove(filepath.Join(dir, ".tmp", e.Name()))
		}
	}
	return &Dir{dir: dir, root: root, maxSize: maxSize, busy: map[string]bool{}}, nil
}

// Close releases the directory handle.
func (d *Dir) Close() error { return d.root.Close() }

// Store writes r as key, checks it against want, renames it into place and calls commit;
// on any failure nothing is left behind.
func (d *Dir) Store(ctx context.Context, key Key, r io.Reader, want Expect, commit func(Sums) error) (Sums, error) {
	rel, err := key.path()
	if err != nil {
		return Sums{}, err
	}
	v, err := NewVerifier(ctx, r, want, d.maxSize)
	if err != nil {
		return Sums{}, err
	}
	d.mu.Lock()
	if d.busy[rel] {
		d.mu.Unlock()
		return Sums{}, ErrBusy
	}
	d.busy[rel] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.busy, rel)
		d.mu.Unlock()
	}()

	final := filepath.Join(d.dir, rel)
	tmp, err := atomicfile.CreateIn(filepath.Join(d.dir, ".tmp"), final, 0o644)
	if err != nil {
		return Sums{}, err
	}
	defer tmp.Cleanup()
	placed := false
	ok := false
	defer func() {
		if placed && !ok {
			os.Remove(final)
		}
	}()
	if _, err := io.Copy(tmp, v); err != nil {
		return v.Sums(), err
	}
	sums := v.Sums()
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return sums, fmt.Errorf("payloads: %w", err)
	}
	err = tmp.Commit()
	placed = err == nil || errors.Is(err, atomicfile.ErrNotDurable)
	if err != nil {
		return sums, err
	}
	// MkdirAll may have made <app>, <board> and <version>: sync their parents too, so that
	// the file's path survives a crash once the commit callback has recorded it.
	for dir := filepath.Dir(filepath.Dir(final)); ; dir = filepath.Dir(dir) {
		if err := atomicfile.SyncDir(dir); err != nil {
			return sums, err
		}
		if dir == filepath.Clean(d.dir) || dir == filepath.Dir(dir) {
			break
		}
	}
	if err := commit(sums); err != nil {
		return sums, err
	}
	ok = true
	return sums, nil
}

// Open opens a hosted file for reading.
func (d *Dir) Open(_ context.Context, key Key) (io.ReadSeekCloser, error) {
	rel, err := key.path()
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("payloads: %w", err)
	}
	return f, nil
}

// Exists reports whether key has a file.
func (d *Dir) Exists(key Key) bool {
	rel, err := key.path()
	if err != nil {
		return false
	}
	_, err = d.root.Stat(rel)
	return err == nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
