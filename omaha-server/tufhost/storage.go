package tufhost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/signing/tuf"
)

// storage is where a Host keeps the repository: a directory of its own (dirStorage) or
// the database every replica shares (dbStorage).
type storage interface {
	// current returns the version and bytes of the current timestamp (0, nil before the
	// first publish).
	current(ctx context.Context) (int64, []byte, error)
	// get returns a root, targets or snapshot version; an error wrapping fs.ErrNotExist
	// when there is none.
	get(ctx context.Context, role string, version int64) ([]byte, error)
	// commit writes files in order and then makes ts current, all or nothing; ErrLeaseLost
	// when the lease or the current timestamp moved since the caller read them.
	commit(ctx context.Context, c commitReq) error
	// lead takes or renews the signing lease (steal: from a live holder) and returns its
	// fence; ErrNotLeader when another replica holds it.
	lead(ctx context.Context, steal bool) (int64, error)
	// release gives the lease up at fence.
	release(ctx context.Context, fence int64) error
}

type file struct {
	role    string
	version int64
	data    []byte
}

type commitReq struct {
	fence  int64
	files  []file
	prevTS int64
	ts     *file // nil: no new timestamp
}

// maxSize is the bound of each role's file.
func maxSize(role string) int64 {
	switch role {
	case tuf.RoleRoot:
		return tuf.MaxRootSize
	case tuf.RoleTargets:
		return tuf.MaxTargetsSize
	case tuf.RoleSnapshot:
		return tuf.MaxSnapshotSize
	default:
		return tuf.MaxTimestampSize
	}
}

// dirStorage keeps the repository in one directory under the names clients fetch; the
// Host is its only writer, so it always leads (fence 1) and commit writes the files
// durably in order with timestamp.json last.
type dirStorage string

func versioned(v int64, role string) string {
	return strconv.FormatInt(v, 10) + "." + role + ".json"
}

func (d dirStorage) path(name string) string { return filepath.Join(string(d), name) }

func (d dirStorage) current(context.Context) (int64, []byte, error) {
	data, err := smallfile.Read(d.path(tuf.RoleTimestamp+".json"), tuf.MaxTimestampSize)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("tufhost: reading the timestamp: %w", err)
	}
	v, err := timestampVersion(data)
	return v, data, err
}

func (d dirStorage) get(_ context.Context, role string, version int64) ([]byte, error) {
	data, err := smallfile.Read(d.path(versioned(version, role)), maxSize(role))
	if err != nil {
		return nil, fmt.Errorf("tufhost: reading %s %d: %w", role, version, err)
	}
	return data, nil
}

func (d dirStorage) commit(_ context.Context, c commitReq) error {
	for _, f := range c.files {
		if err := atomicfile.WriteFile(d.path(versioned(f.version, f.role)), f.data, 0o644); err != nil {
			return fmt.Errorf("tufhost: %w", err)
		}
	}
	if c.ts != nil {
		if err := atomicfile.WriteFile(d.path(tuf.RoleTimestamp+".json"), c.ts.data, 0o644); err != nil {
			return fmt.Errorf("tufhost: %w", err)
		}
	}
	return nil
}

func (dirStorage) lead(context.Context, bool) (int64, error) { return 1, nil }
func (dirStorage) release(context.Context, int64) error      { return nil }

// dbStorage keeps the repository in the database every replica shares (store.TUF).
type dbStorage struct {
	db     store.TUF
	holder string
	ttl    time.Duration
}

func (d *dbStorage) current(ctx context.Context) (int64, []byte, error) {
	f, err := d.db.TUFCurrent(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("tufhost: %w", err)
	}
	if len(f.Data) > tuf.MaxTimestampSize {
		return 0, nil, fmt.Errorf("tufhost: the stored timestamp has %d bytes, more than %d", len(f.Data), tuf.MaxTimestampSize)
	}
	return f.Version, f.Data, nil
}

func (d *dbStorage) get(ctx context.Context, role string, version int64) ([]byte, error) {
	data, err := d.db.GetTUFFile(ctx, role, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("tufhost: %s %d: %w", role, version, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("tufhost: %w", err)
	}
	if int64(len(data)) > maxSize(role) {
		return nil, fmt.Errorf("tufhost: the stored %s %d has %d bytes, more than %d", role, version, len(data), maxSize(role))
	}
	return data, nil
}

func (d *dbStorage) commit(ctx context.Context, c commitReq) error {
	sc := store.TUFCommit{Fence: c.fence, PrevTimestamp: c.prevTS}
	for _, f := range c.files {
		sc.Files = append(sc.Files, store.TUFFile{Role: f.role, Version: f.version, Data: f.data})
	}
	if c.ts != nil {
		sc.Timestamp = &store.TUFFile{Role: tuf.RoleTimestamp, Version: c.ts.version, Data: c.ts.data}
	}
	err := d.db.CommitTUF(ctx, sc)
	if errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: %v", ErrLeaseLost, err)
	}
	if err != nil {
		return fmt.Errorf("tufhost: %w", err)
	}
	return nil
}

func (d *dbStorage) lead(ctx context.Context, steal bool) (int64, error) {
	l, err := d.db.AcquireTUFLease(ctx, d.holder, d.ttl, steal)
	if errors.Is(err, store.ErrLeaseHeld) {
		return 0, fmt.Errorf("%w: %s holds it until %s", ErrNotLeader, l.Holder, l.Expires.Format(time.RFC3339))
	}
	if err != nil {
		return 0, fmt.Errorf("tufhost: %w", err)
	}
	return l.Fence, nil
}

func (d *dbStorage) release(ctx context.Context, fence int64) error {
	if err := d.db.ReleaseTUFLease(ctx, d.holder, fence); err != nil {
		return fmt.Errorf("tufhost: %w", err)
	}
	return nil
}

// defaultHolder names this process for the lease: the host name and a random suffix, so
// that two processes (or a restarted one) never share a name.
func defaultHolder() string {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "replica"
	}
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%.100s/%d/%s", name, os.Getpid(), hex.EncodeToString(b[:]))
}
