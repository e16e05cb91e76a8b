package store

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseHeld: another holder has the TUF signing lease and it has not expired by the
// database's clock.
var ErrLeaseHeld = errors.New("store: the TUF signing lease is held by another replica")

// TUF is the state of the server's TUF repository (package tufhost) shared by every
// replica: the signed metadata files, the current timestamp and the signing lease.
//
// The store keeps bytes and never parses them. Its guarantees:
//
//   - tuf_metadata holds every root, targets and snapshot version, keyed by (role,
//     version): a version is written once and never replaced, so two writers can never
//     publish different bytes under one version (the second gets ErrConflict).
//   - tuf_current holds the one current timestamp. It moves only by compare-and-set
//     from the version the writer read, in the transaction that adds the files it names.
//   - tuf_lease is one row: holder, expiry (by the database's clock, never a replica's)
//     and a fence incremented whenever the lease changes hands. Every write that moves
//     the timestamp is conditional on the writer's fence being the lease's and the lease
//     being unexpired, under the row's lock, so a leader that lost its lease (paused,
//     partitioned, or overtaken) cannot write.
//   - On a one-server store (SQLite) the lease is always granted: the process that owns
//     the file leads, even right after a crash of its previous run. The fence still moves
//     when the holder changes.
type TUF interface {
	// TUFCurrent returns the current timestamp: Role "timestamp", its version and bytes;
	// Version 0 and nil Data before the first.
	TUFCurrent(ctx context.Context) (TUFFile, error)
	// GetTUFFile returns the bytes of a role's version; ErrNotFound when there is none.
	GetTUFFile(ctx context.Context, role string, version int64) ([]byte, error)
	// CommitTUF writes c in one transaction: ErrStale when the lease's fence is not
	// c.Fence or the lease expired, or the current timestamp is not c.PrevTimestamp;
	// ErrConflict when a file's (role, version) exists. Nothing is written on error.
	CommitTUF(ctx context.Context, c TUFCommit) error
	// AcquireTUFLease takes the lease for holder for ttl, or renews it when holder has it.
	// It fails with ErrLeaseHeld (and returns the lease as it stands) when another holder
	// has an unexpired lease, unless steal is set: a publish takes the lease from a live
	// leader, whose next write then fails. The fence moves whenever the holder changes or
	// the lease had expired.
	AcquireTUFLease(ctx context.Context, holder string, ttl time.Duration, steal bool) (TUFLease, error)
	// ReleaseTUFLease ends holder's lease at fence (a clean shutdown), so another replica
	// takes over at once; a no-op when the lease moved on.
	ReleaseTUFLease(ctx context.Context, holder string, fence int64) error
}

// TUFFile is one signed metadata file of the TUF repository.
type TUFFile struct {
	Role    string // root, targets, snapshot or timestamp
	Version int64
	Data    []byte
}

// TUFCommit is one write of the TUF repository.
type TUFCommit struct {
	// Fence is the lease's fence the write is conditional on. 0 writes only Files, each
	// if absent, without a lease: for the initial root every replica starts from.
	Fence int64
	// Files are roots, targets and snapshots, inserted in order; none may exist.
	Files []TUFFile
	// PrevTimestamp is the version of the current timestamp the writer read (0: none).
	PrevTimestamp int64
	// Timestamp, when not nil, becomes the current timestamp; its version must be above
	// PrevTimestamp.
	Timestamp *TUFFile
}

// TUFLease is the signing lease as it stands.
type TUFLease struct {
	Holder  string
	Fence   int64
	Expires time.Time // by the database's clock
}

// MaxTUFFile bounds one stored metadata file (the largest tufhost accepts, targets, is
// far below it).
const MaxTUFFile = 8 << 20
