// Package media reads a release from local media for air-gapped hosts (`updatectl install`),
// the role `flatcar-update` and `rauc install` play: the engine installs it with the same
// checks as an online update (engine.InstallLocal), only the payload and the TUF metadata
// come from a directory or a tar file instead of the servers.
//
// # Layout
//
//	DIR/metadata/               the TUF repository's metadata as the server serves it under
//	                            /tuf/: timestamp.json, N.snapshot.json, N.targets.json and
//	                            any N.root.json the host may not have yet
//	DIR/targets/NAME            the payload, at its TUF target name NAME, e.g.
//	                            targets/amd64-usr/4001.0.0/update.sy; exactly one
//
// A FILE is a tar archive of DIR (ustar, PAX or GNU; entries may start with "./"): every
// metadata entry comes before the payload entry, which is streamed straight from the
// archive into the installer, never copied. Nothing after the payload entry is read.
//
// # Trust
//
// Nothing on the media is trusted. The metadata goes through signing/tuf/client with the
// host's trusted root (TUF_ROOT, shipped with the image) and its cache (STATE_DIR/tuf):
// signatures and thresholds, expiry at the host's clock, version rollback against what
// the host last verified online or from other media, and snapshot/targets consistency. The
// payload's name must be a target of the verified targets metadata; its length, SHA-256,
// version, board and release counter are TUF's, and the engine refuses a version or release
// counter that is not above the running one and a board other than the host's. The
// installer then checks the payload's signature (PAYLOAD_KEYS), every operation's hash,
// the partition hash and the whole payload's SHA-256 before the GPT flip. What the media
// verifies becomes the floor of later online refreshes, as an online refresh would.
//
// # Who uses it
//
// update-engine serves `POST /v1/install` on its control socket through [Daemon]; the
// daemon is the disk's only writer, so a local install shows in `updatectl status` and the
// reboot strategy applies to it as to an online update.
package media

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/signing/tuf"
	tufclient "github.com/switchyard-os/switchyard/signing/tuf/client"
	"github.com/switchyard-os/switchyard/update-engine/engine"
	"github.com/switchyard-os/switchyard/update-engine/trust"
)

// Directory names inside the media.
const (
	MetadataDir = "metadata"
	TargetsDir  = "targets"
)

// maxMetadataFiles bounds the metadata entries read from a tar archive into memory.
const maxMetadataFiles = 64

// ErrLayout: the media is not laid out as the package doc says.
var ErrLayout = errors.New("media: not a release directory or archive")

// Config is the host's side of the verification.
type Config struct {
	TrustedRoot string           // TUF_ROOT
	CacheDir    string           // the TUF cache, STATE_DIR/tuf (shared with online refreshes)
	Now         func() time.Time // reference time for expiry; nil: time.Now
	Log         *slog.Logger
}

// Media is a release on local media; it implements engine.Media. Close it when done.
type Media struct {
	cfg  Config
	path string

	fetcher tufclient.Fetcher
	name    string // the payload's TUF target name
	file    *os.File
	payload io.Reader // the open payload: the file itself, or the tar entry
	opened  bool
}

// Open opens a release directory or a tar archive of one. It reads the archive's metadata
// entries (bounded by TUF's size limits) up to the payload entry; nothing is verified yet.
func Open(p string, cfg Config) (*Media, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	m := &Media{cfg: cfg, path: p}
	if fi.IsDir() {
		if err := m.openDir(); err != nil {
			return nil, err
		}
		return m, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is neither a directory nor a file", ErrLayout, p)
	}
	if err := m.openTar(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Media) openDir() error {
	meta := filepath.Join(m.path, MetadataDir)
	if fi, err := os.Stat(meta); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %s has no %s/ directory", ErrLayout, m.path, MetadataDir)
	}
	m.fetcher = tufclient.DirFetcher{Dir: meta}
	root := filepath.Join(m.path, TargetsDir)
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		found = append(found, filepath.ToSlash(rel))
		if len(found) > 1 {
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrLayout, root, err)
	}
	if len(found) != 1 {
		return fmt.Errorf("%w: %s holds %s payloads, one expected", ErrLayout, root, countWord(len(found)))
	}
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(found[0])))
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	m.name, m.file, m.payload = found[0], f, f
	return nil
}

func countWord(n int) string {
	if n == 0 {
		return "no"
	}
	return "several"
}

func (m *Media) openTar() error {
	f, err := os.Open(m.path)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	files := tufclient.Files{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			f.Close()
			return fmt.Errorf("%w: %s has no payload under %s/", ErrLayout, m.path, TargetsDir)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("%w: %s: %w", ErrLayout, m.path, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if h.Typeflag == tar.TypeDir || name == "." {
			continue
		}
		dir, rest, _ := strings.Cut(name, "/")
		switch {
		case h.Typeflag != tar.TypeReg:
			f.Close()
			return fmt.Errorf("%w: %s: entry %q is not a regular file", ErrLayout, m.path, h.Name)
		case dir == MetadataDir && rest != "" && !strings.Contains(rest, "/"):
			if len(files) >= maxMetadataFiles {
				f.Close()
				return fmt.Errorf("%w: %s: more than %d metadata files", ErrLayout, m.path, maxMetadataFiles)
			}
			if h.Size > tuf.MaxTargetsSize {
				f.Close()
				return fmt.Errorf("%w: %s: %s is %d bytes, more than %d", ErrLayout, m.path, h.Name, h.Size, tuf.MaxTargetsSize)
			}
			b, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil {
				f.Close()
				return fmt.Errorf("media: reading %s: %w", h.Name, err)
			}
			files[rest] = b
		case dir == TargetsDir && rest != "":
			m.fetcher, m.name, m.file, m.payload = files, rest, f, io.LimitReader(tr, h.Size)
			return nil
		default:
			f.Close()
			return fmt.Errorf("%w: %s: unexpected entry %q (want %s/* then one %s/NAME)", ErrLayout, m.path, h.Name, MetadataDir, TargetsDir)
		}
	}
}

// Name returns the payload's TUF target name.
func (m *Media) Name() string { return m.name }

// Release implements engine.Media: it verifies the media's metadata and returns the target
// the payload is.
func (m *Media) Release(ctx context.Context) (engine.Target, error) {
	c, err := tufclient.New(tufclient.Config{Fetcher: m.fetcher, TrustedRoot: m.cfg.TrustedRoot, CacheDir: m.cfg.CacheDir,
		Now: m.cfg.Now, Logger: m.cfg.Log})
	if err != nil {
		return engine.Target{}, fmt.Errorf("media: %w", err)
	}
	repo, err := c.Refresh(ctx)
	if err != nil {
		return engine.Target{}, fmt.Errorf("media: %s: %w", m.path, err)
	}
	t, err := repo.Lookup(m.name)
	if err != nil {
		return engine.Target{}, fmt.Errorf("media: the payload %s/%s: %w", TargetsDir, m.name, err)
	}
	return trust.Target(t)
}

// Open implements engine.Media: the payload, once.
func (m *Media) Open(ctx context.Context) (io.ReadCloser, error) {
	if m.opened {
		return nil, errors.New("media: the payload was already read")
	}
	m.opened = true
	return io.NopCloser(&ctxReader{ctx: ctx, r: m.payload}), nil
}

// Close closes the media's file.
func (m *Media) Close() error { return m.file.Close() }

// ctxReader ends a read of the payload when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Installer is the engine's part the daemon needs for local installs.
type Installer interface {
	InstallLocal(ctx context.Context, m engine.Media) (engine.Snapshot, error)
}

// Daemon adds installs from a path (control's POST /v1/install) to an engine.
type Daemon struct {
	*engine.Engine
	Config Config
}

// InstallFrom opens the media at p and has the engine install it.
func (d *Daemon) InstallFrom(ctx context.Context, p string) (engine.Snapshot, error) {
	return InstallFrom(ctx, d.Engine, p, d.Config)
}

// InstallFrom opens the media at p and has in install it.
func InstallFrom(ctx context.Context, in Installer, p string, cfg Config) (engine.Snapshot, error) {
	if !filepath.IsAbs(p) {
		return engine.Snapshot{}, fmt.Errorf("media: %q is not an absolute path", p)
	}
	m, err := Open(p, cfg)
	if err != nil {
		return engine.Snapshot{}, err
	}
	defer m.Close()
	return in.InstallLocal(ctx, m)
}
