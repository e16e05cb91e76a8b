package engine

import (
	"context"
	"io"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

// Server is the Omaha server.
type Server interface {
	// Check sends an update check with the given events; a nil offer and nil error mean
	// noupdate.
	Check(ctx context.Context, onDemand bool, events ...*omaha.Event) (*omaha.Offer, error)
	// Ping sends a ping-only request (while a flipped update waits for its reboot).
	Ping(ctx context.Context) error
	// Report sends events (fire and forget: the caller logs errors).
	Report(ctx context.Context, events ...*omaha.Event) error
	// CheckFull is Check asking for the full payload only (delta_okay="false"): the
	// fallback after a delta payload did not fit the active partition.
	CheckFull(ctx context.Context, onDemand bool) (*omaha.Offer, error)
}

// Target is a payload as TUF pins it.
type Target struct {
	Name    string
	Length  int64
	SHA256  []byte
	Version string
	Board   string
	Release uint64
	// PartitionSize and PartitionSHA256 describe the partition image the payload produces,
	// when TUF pins them (zero otherwise); the installer checks the signed manifest agrees.
	PartitionSize   int64
	PartitionSHA256 []byte
	// SourceVersion is the version a delta payload applies to ("" for a full payload).
	SourceVersion string
}

// Trust refreshes TUF metadata and looks a version up: its full payload when source is
// empty, else its delta payload from source.
type Trust interface {
	Lookup(ctx context.Context, version, board, source string) (Target, error)
}

// Boot is the A/B partition table. Six methods rather than four: each is one absolute,
// idempotent operation of the boot protocol, and splitting them would only spread one
// device lock over several values.
type Boot interface {
	// Slots returns the active (running) and the target (other) USR partitions, with their
	// boot attributes as the slots package decodes them.
	Slots(ctx context.Context) (active, target slots.Slot, err error)
	Prepare(ctx context.Context, n int) error
	Flip(ctx context.Context, n int) error
	MarkGood(ctx context.Context, n int) error
	// Rollback makes the known-good partition other than from boot next; it returns it.
	Rollback(ctx context.Context, from int) (int, error)
}

// Job is one payload to install onto a partition.
type Job struct {
	Offer     *omaha.Offer
	Target    Target // as TUF pins it: the stream is bounded by its length, checked by its hash
	Partition int    // the GPT partition number to write
	// Source is the active partition's number, which a delta payload reads (only ever
	// reads).
	Source int
	Resume *state.Resume
	// Progress reports payload bytes consumed so far out of the total.
	Progress func(done, total int64)
	// Checkpoint persists the position after each verified operation.
	Checkpoint func(state.Resume) error
	// Verifying is called once, when the last operation is written and the final hash check
	// starts.
	Verifying func()
	// Open, when set, reads the payload from local media (InstallLocal) instead of the
	// offer's URLs; it is only asked for offset 0 (local installs do not resume).
	Open func(ctx context.Context, off int64) (io.ReadCloser, error)
}

// Installer downloads, verifies and writes a payload.
type Installer interface {
	Install(ctx context.Context, job *Job) error
}

// Rebooter is the reboot strategy.
type Rebooter interface {
	// Reboot waits for the reboot window and the lock, then reboots. It returns when the
	// reboot has been requested, or with an error.
	Reboot(ctx context.Context) error
	// Release gives back the lock slot held across the reboot (idempotent).
	Release(ctx context.Context) error
}

// Hook is a command run after the reboot (the post-reboot hook, e.g. an uncordon).
type Hook interface {
	Run(ctx context.Context) error
}

// Health runs the post-boot checks.
type Health interface {
	Run(ctx context.Context) error
}

// StateStore loads and saves the persisted state.
type StateStore interface {
	Load() (state.State, error)
	Save(state.State) error
}
