package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// DefaultTimeout bounds each HTTP request when Config.HTTPClient is nil.
const DefaultTimeout = 30 * time.Second

// Errors callers branch on. Verification failures also match go-tuf's error types
// (metadata.ErrRepository and its kinds: ErrUnsignedMetadata, ErrBadVersionNumber,
// ErrExpiredMetadata, ErrLengthOrHashMismatch) through errors.Is.
var (
	// ErrNotFound: no target matches.
	ErrNotFound = errors.New("tufclient: no such target")
	// ErrNoTrustedRoot: the installed root is missing or unreadable.
	ErrNoTrustedRoot = errors.New("tufclient: no trusted root")
)

// Config configures a Client.
type Config struct {
	MetadataURL string // the repository, e.g. https://updates.example.com/tuf/
	// Fetcher, when set, replaces the HTTP fetches from MetadataURL (which may then be
	// empty): DirFetcher for a directory on local media, Files for metadata read from a
	// stream. The verification is the same.
	Fetcher     Fetcher
	TrustedRoot string       // the root installed on the host
	CacheDir    string       // where verified metadata is kept between refreshes
	HTTPClient  *http.Client // nil: a client with DefaultTimeout
	// Now gives the reference time for expiry checks. nil: time.Now. Freeze protection is
	// only as good as this clock.
	Now    func() time.Time
	Logger *slog.Logger // nil: discard
}

// Client refreshes and queries the repository.
type Client struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex
}

// New checks the configuration and creates the cache directory (mode 0700).
func New(cfg Config) (*Client, error) {
	if (cfg.MetadataURL == "" && cfg.Fetcher == nil) || cfg.TrustedRoot == "" || cfg.CacheDir == "" {
		return nil, errors.New("tufclient: MetadataURL (or a Fetcher), TrustedRoot and CacheDir are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("tufclient: %w", err)
	}
	return c, nil
}

// Target is a payload target the targets role pins.
type Target struct {
	Name   string
	Length int64
	SHA256 [sha256.Size]byte
	// Custom holds the target's custom fields; CustomErr is set instead when the target
	// has none or they break the rules of tuf.Custom (such a target is never chosen by
	// Find).
	Custom    tuf.Custom
	CustomErr error
}

// Repository is the verified state after a refresh.
type Repository struct {
	RootVersion      int64
	TimestampVersion int64
	SnapshotVersion  int64
	TargetsVersion   int64
	TimestampExpires time.Time
	TargetsExpires   time.Time
	// RefTime is the reference time the metadata was checked at.
	RefTime time.Time
	targets map[string]Target
}

// trustedRoot picks the newer of the installed and the cached root.
func (c *Client) trustedRoot() ([]byte, error) {
	installed, err := smallfile.Read(c.cfg.TrustedRoot, tuf.MaxRootSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoTrustedRoot, err)
	}
	ir, err := metadata.Root().FromBytes(installed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoTrustedRoot, c.cfg.TrustedRoot, err)
	}
	cached, err := smallfile.Read(filepath.Join(c.cfg.CacheDir, "root.json"), tuf.MaxRootSize)
	if errors.Is(err, fs.ErrNotExist) {
		return installed, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tufclient: %w", err)
	}
	cr, err := metadata.Root().FromBytes(cached)
	if err != nil {
		c.log.Warn("tuf cached root unreadable; starting from the installed root", "err", err)
		return installed, nil
	}
	if cr.Signed.Version >= ir.Signed.Version {
		return cached, nil
	}
	return installed, nil
}

// Refresh runs one TUF client update (root chain, timestamp, snapshot, targets), writes
// the verified metadata to the cache and returns the verified state.
func (c *Client) Refresh(ctx context.Context) (*Repository, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rootData, err := c.trustedRoot()
	if err != nil {
		return nil, err
	}
	base, f := localBase, c.cfg.Fetcher
	if f == nil {
		base = strings.TrimSuffix(c.cfg.MetadataURL, "/") + "/"
		f = HTTPFetcher{BaseURL: base, Client: c.cfg.HTTPClient}
	}
	cfg, err := config.New(base, rootData)
	if err != nil {
		return nil, fmt.Errorf("tufclient: %w", err)
	}
	cfg.LocalMetadataDir = c.cfg.CacheDir
	cfg.LocalTargetsDir = filepath.Join(c.cfg.CacheDir, "targets-unused")
	// go-tuf's cache writes do not fsync; this package persists instead (see the package
	// doc). go-tuf still reads LocalMetadataDir for rollback protection.
	cfg.DisableLocalCache = true
	cfg.Fetcher = &adapter{ctx: ctx, base: base, f: f}
	cfg.RootMaxLength, cfg.TimestampMaxLength = tuf.MaxRootSize, tuf.MaxTimestampSize
	cfg.SnapshotMaxLength, cfg.TargetsMaxLength = tuf.MaxSnapshotSize, tuf.MaxTargetsSize
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tufclient: trusted root: %w", err)
	}
	ref := c.cfg.Now().UTC()
	up.UnsafeSetRefTime(ref) // the injected clock; the same one time.Now would give in production
	if err := up.Refresh(); err != nil {
		return nil, fmt.Errorf("tufclient: refresh: %w", err)
	}
	tm := up.GetTrustedMetadataSet()
	targets := tm.Targets[metadata.TARGETS]
	if tm.Root == nil || tm.Timestamp == nil || tm.Snapshot == nil || targets == nil {
		return nil, errors.New("tufclient: refresh left incomplete metadata")
	}
	if err := persist(c.cfg.CacheDir, map[string]interface{ ToBytes(bool) ([]byte, error) }{
		"root.json": tm.Root, "timestamp.json": tm.Timestamp, "snapshot.json": tm.Snapshot, "targets.json": targets,
	}); err != nil {
		return nil, err
	}
	repo := &Repository{
		RootVersion:      tm.Root.Signed.Version,
		TimestampVersion: tm.Timestamp.Signed.Version,
		SnapshotVersion:  tm.Snapshot.Signed.Version,
		TargetsVersion:   targets.Signed.Version,
		TimestampExpires: tm.Timestamp.Signed.Expires,
		TargetsExpires:   targets.Signed.Expires,
		RefTime:          ref,
		targets:          map[string]Target{},
	}
	for name, tf := range targets.Signed.Targets {
		repo.targets[name] = newTarget(name, tf)
	}
	c.log.Info("tuf refreshed", "root_version", repo.RootVersion, "timestamp_version", repo.TimestampVersion,
		"targets_version", repo.TargetsVersion, "targets", len(repo.targets))
	return repo, nil
}

func newTarget(name string, tf *metadata.TargetFiles) Target {
	t := Target{Name: name, Length: tf.Length}
	if h := tf.Hashes["sha256"]; len(h) == sha256.Size {
		copy(t.SHA256[:], h)
	} else {
		t.CustomErr = errors.New("tufclient: target has no sha256 hash")
		return t
	}
	if tf.Custom == nil {
		t.CustomErr = errors.New("tufclient: target has no custom fields")
		return t
	}
	t.Custom, t.CustomErr = tuf.ParseCustom(*tf.Custom)
	return t
}

// persist writes each file durably. Order: root first, so a crash never leaves a cached
// timestamp newer than the root that must verify it.
func persist(dir string, files map[string]interface{ ToBytes(bool) ([]byte, error) }) error {
	for _, name := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		data, err := files[name].ToBytes(false)
		if err != nil {
			return fmt.Errorf("tufclient: encoding %s: %w", name, err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("tufclient: %w", err)
		}
	}
	return nil
}

// Lookup returns the target with the given name.
func (r *Repository) Lookup(name string) (Target, error) {
	t, ok := r.targets[name]
	if !ok {
		return Target{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return t, nil
}

// Find returns the target whose custom fields name this board and version. Several
// matches (the same payload under two names) resolve to the first name in sort order.
func (r *Repository) Find(board, version string) (Target, error) {
	var found []Target
	for _, t := range r.targets {
		if t.CustomErr == nil && t.Custom.Board == board && t.Custom.Version == version {
			found = append(found, t)
		}
	}
	if len(found) == 0 {
		return Target{}, fmt.Errorf("%w: board %q version %q", ErrNotFound, board, version)
	}
	slices.SortFunc(found, func(a, b Target) int { return strings.Compare(a.Name, b.Name) })
	return found[0], nil
}

// Targets returns every target, sorted by name.
func (r *Repository) Targets() []Target {
	out := make([]Target, 0, len(r.targets))
	for _, t := range r.targets {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.Name, b.Name) })
	return out
}
