// Package store is omaha-server's persistent model and the one interface both databases
// implement: applications, releases, channels, groups, instances with their status history,
// events, and admin API tokens.
//
// Parties: the Omaha handler reads the catalog (applications, groups, channels and the
// releases they point at) and records check-ins; the admin API writes the catalog and reads
// instances; `omaha-server token` and the admin API write tokens. Implementations live in
// store/sqlite (embedded, the default) and store/postgres (several replicas on one
// database); both share the SQL of store/internal/sqldb and pass the suite in
// store/storetest.
//
// Invariants:
//
//   - Every method is one transaction: a call either writes everything it was asked to or
//     nothing (no half-written instance, no release row without its file's metadata).
//
//   - Application IDs are stored normalised (NormalizeAppID: lower case, no braces), so
//     lookups compare them case-insensitively with braces optional, as Nebraska does.
//
//   - A release has at most one delta payload per source version (Delta); the catalog
//     carries the deltas, so a delta write bumps the generation like a release write.
//
//   - A channel points at one release per board; a group follows one channel; a group's
//     track is unique within its application (it is what hosts send as `track`).
//
//   - Every catalog write (application, release, channel, group) increments one generation
//     counter in the same transaction; caches of the catalog compare it to stay correct
//     across several server processes on one database.
//
//   - Migrations are numbered; both implementations apply the same numbers and record them
//     in schema_migrations.
//
//   - A group row carries a version incremented by every write; UpdateGroup with an
//     expected version refuses (ErrStale) when it moved, so two operators editing one
//     group never lose an edit.
//
//   - A token is looked up by the hash of its secret, never the secret; a revoked token keeps
//     its row and never authorises again, and an expired one stops at its expiry by the
//     store's clock. Its last use is written at most once per TokenUseInterval.
//
//   - A machine id has at most one host key (host_keys); a pin on first contact never
//     replaces one, only an enrollment or a delete does.
//
//   - Rollout counters are rows (rollout_attempts: one per grant, with its outcome; the
//     caps read per-group counter rows kept with them, store/internal/sqldb's
//     rolloutcounters.go) read and written inside the check-in transaction that holds the
//     group row locked, so caps and halts hold across any number of replicas. Groups
//     whose policy counts nothing never take that lock.
//
//   - The apps of one Omaha request are recorded in one transaction (CheckinAll).
//
//   - The TUF repository's files are written once per (role, version); the current
//     timestamp moves by compare-and-set under the signing lease's fence (tuf.go).
//
//   - StatusCounts is exact at every commit without scanning the instances: every write of
//     an instance row (check-ins, retention) changes the stored counts in its own
//     transaction (store/internal/sqldb's counts.go).
//
//   - Every admin write and every automatic halt writes an activity entry (activity.go) in
//     its own transaction; a failed write writes none. Check-ins write none, except the
//     rare one that trips a halt.
//
// Retention: Prune removes instances not seen for a while (with their history, events
// and attempts), old events and old activity entries; the status history of live instances is kept as their
// summary. version_samples keeps the version distribution over time, bounded by age.
//
// Errors: ErrNotFound, ErrConflict (a duplicate: HTTP 409), ErrStale (a versioned write
// lost: HTTP 409) and ErrInvalid (the caller's input) are sentinels; implementations wrap
// them with detail.
package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Sentinel errors callers branch on (with errors.Is).
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: already exists")
	ErrInvalid  = errors.New("store: invalid")
	// ErrStale: the row changed since the caller read it (a versioned write; HTTP 409).
	ErrStale = errors.New("store: changed since read")
)

// Store is the whole persistent state of an omaha-server. Consumers declare the subset
// they need as their own interface.
type Store interface {
	CreateApp(ctx context.Context, app App) (App, error)
	GetApp(ctx context.Context, id string) (App, error)
	ListApps(ctx context.Context) ([]App, error)

	// CreateRelease inserts a release; ErrConflict when (app, version, board) exists.
	CreateRelease(ctx context.Context, r Release) (Release, error)
	GetRelease(ctx context.Context, appID, version, board string) (Release, error)
	ListReleases(ctx context.Context, appID string) ([]Release, error)
	// CreateDelta records a delta payload of the release (d.AppID, d.Version, d.Board):
	// ErrNotFound without that release, ErrConflict when the release has a delta from
	// d.SourceVersion already or a payload of that file name.
	CreateDelta(ctx context.Context, d Delta) (Delta, error)
	// ListDeltas returns the deltas of one release, by source version, with their
	// targets metadata; ErrNotFound without the release.
	ListDeltas(ctx context.Context, appID, version, board string) ([]Delta, error)

	CreateChannel(ctx context.Context, c Channel) (Channel, error)
	// SetChannelRelease points the channel at the release (app, version, board) for that
	// board.
	SetChannelRelease(ctx context.Context, appID, channel, board, version string) (Channel, error)
	GetChannel(ctx context.Context, appID, name string) (Channel, error)
	ListChannels(ctx context.Context, appID string) ([]Channel, error)

	CreateGroup(ctx context.Context, g Group) (Group, error)
	// UpdateGroup loads the group, lets update change it and writes it back, in one
	// transaction.
	UpdateGroup(ctx context.Context, appID, name string, update func(*Group) error) (Group, error)
	GetGroup(ctx context.Context, appID, name string) (Group, error)
	ListGroups(ctx context.Context, appID string) ([]Group, error)

	// Generation returns the catalog generation counter.
	Generation(ctx context.Context) (int64, error)
	// LoadCatalog reads every application, group and channel (with its releases) in one
	// consistent read.
	LoadCatalog(ctx context.Context) (*Catalog, error)

	// Checkin runs one Omaha request's writes for one instance in one transaction: it reads
	// the instance row (nil when the host is new), calls decide, and writes what decide
	// returns. When decide returns an error nothing is written. decide may run more than
	// once (an implementation may retry after a concurrent write to the same row), so it
	// must only compute.
	Checkin(ctx context.Context, appID, machineID string, decide func(cur *Instance) (*InstanceUpdate, error)) error
	ListInstances(ctx context.Context, f InstanceFilter) ([]Instance, error)
	// GetInstances returns the instance rows of a machine (one per application) with their
	// status history, newest first; ErrNotFound when there is none.
	GetInstances(ctx context.Context, machineID string, historyLimit int) ([]InstanceDetail, error)
	ListEvents(ctx context.Context, appID, machineID string, limit int) ([]Event, error)

	// RolloutCheckin is Checkin for a group whose policy keeps counters
	// (policy.Policy.Counted): in one transaction holding the group row locked, so grants
	// in one group serialise across every replica, it ends attempts that timed out, reads
	// the group and its counters, calls decide, writes the instance update and the
	// rollout write, and trips the group's automatic halt when the failures among its
	// recent attempts pass the threshold. decide may run more than once.
	RolloutCheckin(ctx context.Context, appID, machineID string, groupID int64,
		decide func(cur *Instance, r *Rollout) (*InstanceUpdate, *RolloutWrite, error)) error
	// CheckinAll records the check-ins of one Omaha request's apps (one machine, several
	// applications) in one transaction: every app's writes or none. Each AppCheckin is a
	// Checkin (Decide) or a RolloutCheckin (Rollout, GroupID); the groups of the counted
	// ones are locked first, in order of id, and the instance rows in order of (app,
	// machine), so that two requests carrying the same groups or apps in any order never
	// deadlock. With one app it is Checkin or RolloutCheckin.
	CheckinAll(ctx context.Context, apps []AppCheckin) error
	// SetRolloutState pauses or resumes a group; resume also clears a halt and starts a
	// new window for the automatic halt.
	SetRolloutState(ctx context.Context, appID, name string, paused bool) (Group, error)
	// RolloutStatus reports a group's progress towards version ("" for every version).
	RolloutStatus(ctx context.Context, appID, name, version string) (RolloutStatus, error)

	// StatusCounts counts an application's instances by group, status and version.
	StatusCounts(ctx context.Context, appID string) ([]StatusCount, error)
	// SearchInstances finds instances by machine id prefix, alias, IP or version.
	SearchInstances(ctx context.Context, appID, query string, limit int) ([]Instance, error)
	// SampleVersions records the current version distribution of every application at
	// time at, and drops samples older than keepSince.
	SampleVersions(ctx context.Context, at, keepSince time.Time) error
	// VersionTimeline returns an application's samples since the given time, oldest first.
	VersionTimeline(ctx context.Context, appID string, since time.Time) ([]VersionSample, error)
	// GroupVersionTimeline returns one group's samples since the given time, oldest first.
	GroupVersionTimeline(ctx context.Context, appID, group string, since time.Time) ([]VersionSample, error)
	// Prune applies a retention policy.
	Prune(ctx context.Context, r Retention) (Pruned, error)

	// GetHostKey returns the key pinned to a machine id; ErrNotFound when there is none.
	GetHostKey(ctx context.Context, machineID string) (HostKey, error)
	// PinHostKey pins k to its machine id unless a key is pinned already, and returns the
	// key pinned after the call (the existing one when there was one): the first of two
	// racing pins wins on every replica.
	PinHostKey(ctx context.Context, k HostKey) (HostKey, error)
	// EnrollHostKey pins k as enrolled, replacing any key pinned to the machine id.
	EnrollHostKey(ctx context.Context, k HostKey) (HostKey, error)
	// DeleteHostKey removes a machine id's key (ErrNotFound when none), so the next signed
	// contact may pin a new one.
	DeleteHostKey(ctx context.Context, machineID string) error
	// ListHostKeys returns up to limit keys (MaxHostKeys when 0 or more) ordered by machine
	// id, starting after the machine id after ("" for the first page).
	ListHostKeys(ctx context.Context, after string, limit int) ([]HostKey, error)

	// CreateToken stores a token (Hash, Role, Name, Description, ExpiresAt; ExpiresAt
	// zero or after now) and returns it with its ID and creation time.
	CreateToken(ctx context.Context, t Token) (Token, error)
	// LookupToken finds a live token by the SHA-256 of its secret (hex): ErrNotFound when
	// none has that hash or it is revoked or expired at the store's clock. It reads the
	// database every time, so a revoke on one replica holds on all at once, and records
	// the use (LastUsedAt, written at most once per TokenUseInterval).
	LookupToken(ctx context.Context, hash string) (Token, error)
	// GetToken returns a token by ID, revoked and expired ones too.
	GetToken(ctx context.Context, id int64) (Token, error)
	// ListTokens returns every token, revoked and expired ones too, by ID.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes a token and returns it; ErrNotFound when no token has that ID
	// or it is revoked already.
	RevokeToken(ctx context.Context, id int64) (Token, error)

	// TUF is the replicas' shared TUF repository and signing lease (tuf.go).
	TUF

	// PromoteChannel points channel at the release channel from offers, on every board
	// from has one, in one transaction (one channel.promote activity entry); ErrInvalid
	// when from offers nothing.
	PromoteChannel(ctx context.Context, appID, channel, from string) (Channel, error)
	// RecordActivity appends an entry for a write made outside the store (its ID, time
	// and, when a.Actor is empty, the actor of ctx are filled in).
	RecordActivity(ctx context.Context, a Activity) (Activity, error)
	// ListActivity returns entries newest first (see ActivityFilter).
	ListActivity(ctx context.Context, f ActivityFilter) ([]Activity, error)
	// ObserveActivity sets the function that sees every entry this store object writes,
	// after its transaction committed (nil: none; a store object has one observer, the
	// last one set). It runs on the writer's goroutine, on the check-in path for a halt,
	// so it must not block. Entries other replicas write are not observed here.
	ObserveActivity(fn func(Activity))

	Close() error
}

// FlatcarAppID is the application ID Flatcar's update_engine sends.
const FlatcarAppID = "e96281a6-d1af-4bde-9a0a-97b76e56dc57"

// NormalizeAppID returns the stored form of an application ID: surrounding braces
// removed, lower case, spaces trimmed.
func NormalizeAppID(id string) string {
	id = strings.TrimSpace(id)
	if len(id) >= 2 && id[0] == '{' && id[len(id)-1] == '}' {
		id = id[1 : len(id)-1]
	}
	return strings.ToLower(id)
}
