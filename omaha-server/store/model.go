package store

import (
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/policy"
)

// App is an application: an OS (Flatcar's app ID) or anything else updated over Omaha.
type App struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Release is one payload of an application for one board. Either the server hosts the
// file (Hosted) under its packages directory, or it lives at URL elsewhere.
type Release struct {
	ID       int64  `json:"id"`
	AppID    string `json:"app_id"`
	Version  string `json:"version"`
	Board    string `json:"board"`
	FileName string `json:"file_name"`
	Size     int64  `json:"size"`
	// SHA256 is the hex SHA-256 of the payload file.
	SHA256 string `json:"sha256"`
	// SHA1 is the hex SHA-1 of the payload file, for old clients; empty when unknown.
	SHA1   string `json:"sha1,omitempty"`
	Hosted bool   `json:"hosted"`
	// URL is the payload's full URL when not Hosted.
	URL string `json:"url,omitempty"`
	// TargetsMetadata is signed TUF targets metadata published with the release (nil when
	// none); only HasTargetsMetadata is sent in listings.
	TargetsMetadata    []byte    `json:"-"`
	HasTargetsMetadata bool      `json:"has_targets_metadata"`
	CreatedAt          time.Time `json:"created_at"`
}

// Delta is a delta payload of a release: applied to a USR partition that holds
// SourceVersion (of the same application and board), it writes the partition of the
// release's Version. A release has at most one delta per source version. Its file lives
// beside the release's full payload (Hosted) or at URL; the fields mean what they mean on
// a Release.
type Delta struct {
	ID            int64  `json:"id"`
	AppID         string `json:"app_id"`
	Version       string `json:"version"`
	Board         string `json:"board"`
	SourceVersion string `json:"source_version"`
	FileName      string `json:"file_name"`
	Size          int64  `json:"size"`
	SHA256        string `json:"sha256"`
	SHA1          string `json:"sha1,omitempty"`
	Hosted        bool   `json:"hosted"`
	URL           string `json:"url,omitempty"`
	// TargetsMetadata is the signed TUF targets metadata published with the delta (nil
	// when none), which pins it as its own target.
	TargetsMetadata    []byte    `json:"-"`
	HasTargetsMetadata bool      `json:"has_targets_metadata"`
	CreatedAt          time.Time `json:"created_at"`
}

// Channel names a release per board ("stable" → 4081.2.0 on amd64-usr).
type Channel struct {
	ID    int64  `json:"id"`
	AppID string `json:"app_id"`
	Name  string `json:"name"`
	// Releases maps a board to the release the channel offers on it.
	Releases  map[string]Release `json:"releases"`
	CreatedAt time.Time          `json:"created_at"`
}

// Group is what hosts join by sending its Track; it follows one channel under its rollout
// Policy. Version counts the writes to the group row: a writer that read version N and
// asks to write with ExpectVersion N gets ErrStale when someone else wrote in between.
type Group struct {
	ID             int64         `json:"id"`
	AppID          string        `json:"app_id"`
	Name           string        `json:"name"`
	Track          string        `json:"track"`
	Channel        string        `json:"channel"`
	UpdatesEnabled bool          `json:"updates_enabled"`
	Policy         policy.Policy `json:"policy"`
	// Paused stops the rollout until a resume.
	Paused bool `json:"paused"`
	// HaltReason is set when the automatic halt tripped (HaltedAt); a resume clears it.
	HaltReason string    `json:"halt_reason,omitempty"`
	HaltedAt   time.Time `json:"halted_at,omitzero"`
	// ResumedAt is the last resume: attempts that ended before it no longer count towards
	// the automatic halt.
	ResumedAt time.Time `json:"resumed_at,omitzero"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Halted reports whether the automatic halt stopped the group's rollout.
func (g Group) Halted() bool { return g.HaltReason != "" }

// Catalog is a consistent snapshot of the catalog, as the Omaha handler reads it.
// Releases are every release (without TargetsMetadata), for floors, pins and blocked
// versions.
type Catalog struct {
	Generation int64
	Apps       []App
	Groups     []Group
	Channels   []Channel
	Releases   []Release
	// Deltas are every delta payload (without TargetsMetadata).
	Deltas []Delta
}

// Status is an instance's update status.
type Status string

// Instance statuses. An instance moves update-granted → downloading → downloaded →
// installed → complete; error and rolled-back end an attempt.
const (
	StatusUndefined     Status = "undefined"
	StatusUpdateGranted Status = "update-granted"
	StatusDownloading   Status = "downloading"
	StatusDownloaded    Status = "downloaded"
	StatusInstalled     Status = "installed"
	StatusComplete      Status = "complete"
	StatusError         Status = "error"
	StatusRolledBack    Status = "rolled-back"
	StatusOnHold        Status = "on-hold"
)

// Instance is one host running one application.
type Instance struct {
	AppID        string    `json:"app_id"`
	MachineID    string    `json:"machine_id"`
	BootID       string    `json:"boot_id"`
	Alias        string    `json:"alias,omitempty"`
	Version      string    `json:"version"`
	AlephVersion string    `json:"aleph_version,omitempty"`
	OEM          string    `json:"oem,omitempty"`
	OEMVersion   string    `json:"oem_version,omitempty"`
	Board        string    `json:"board"`
	Track        string    `json:"track"`
	Group        string    `json:"group"`
	IP           string    `json:"ip"`
	FirstCheck   time.Time `json:"first_check"`
	LastCheck    time.Time `json:"last_check"`
	Status       Status    `json:"status"`
	StatusAt     time.Time `json:"status_at"`
	// UpdateVersion is the version last offered to the instance.
	UpdateVersion string `json:"update_version,omitempty"`
	// LastErrorCode is the error code (base code | flag bits) of the last failure event.
	LastErrorCode int64 `json:"last_error_code,omitempty"`
}

// StatusChange is one entry of an instance's status history.
type StatusChange struct {
	Status    Status    `json:"status"`
	Version   string    `json:"version"`
	ErrorCode int64     `json:"error_code,omitempty"`
	At        time.Time `json:"at"`
}

// Event is an Omaha event an instance reported, stored as received.
type Event struct {
	AppID           string    `json:"app_id"`
	MachineID       string    `json:"machine_id"`
	Type            int       `json:"type"`
	Result          int       `json:"result"`
	ErrorCode       int64     `json:"error_code,omitempty"`
	PreviousVersion string    `json:"previous_version,omitempty"`
	Version         string    `json:"version"`
	At              time.Time `json:"at"`
}

// InstanceUpdate is what one Omaha request writes for one instance: the new row, the status
// changes to append to its history and the events to store.
type InstanceUpdate struct {
	Instance Instance
	History  []StatusChange
	Events   []Event
}

// InstanceDetail is an instance with its status history.
type InstanceDetail struct {
	Instance
	History []StatusChange `json:"history"`
}

// InstanceFilter selects instances; empty fields match everything. Limit 0 means the
// implementation's default. Instances come ordered by application, then machine id; a
// page after the previous one sets AfterAppID and AfterMachineID to the last instance of
// that page (keyset paging: every instance is listed once, however many are added).
type InstanceFilter struct {
	AppID   string
	Group   string
	Version string
	Status  Status
	Limit   int

	AfterAppID     string
	AfterMachineID string

	// ByLastCheck orders by last check, newest first, then application and machine id; a
	// page after the previous one also sets AfterLastCheck to its last instance's. No index
	// serves this order (every check-in would write it), so it reads every instance the
	// other fields select.
	ByLastCheck    bool
	AfterLastCheck time.Time
}

// Role is an admin API token's role.
type Role string

// Token roles: admin may write, viewer may only read.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// Token is an admin API token; only the SHA-256 of its secret is stored, and no field
// here carries the secret. A token is live until it is revoked or its expiry passes; a
// revoked token's row stays, so what it did can still be attributed to it.
type Token struct {
	ID   int64  `json:"id"`
	Hash string `json:"-"`
	// Name says whose or what the token is ("ci", "alice"); at most MaxTokenName bytes.
	Name        string    `json:"name"`
	Role        Role      `json:"role"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// ExpiresAt is when the token stops working; zero for never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// LastUsedAt is when it was last presented while live (a lookup found it), to within
	// TokenUseInterval.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// RevokedAt is when it was revoked; zero while it is not.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Live reports whether the token authorises requests at now: not revoked, not expired.
func (t Token) Live(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// State is "revoked", "expired" or "live" at now.
func (t Token) State(now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked"
	case !t.Live(now):
		return "expired"
	}
	return "live"
}

// Token limits.
const (
	// MaxTokenName bounds a token's name (and MaxTokenDescription its description).
	MaxTokenName        = 64
	MaxTokenDescription = 256
	// TokenUseInterval bounds how often a token's last-used time is written: a lookup
	// writes it only when the stored one is at least this old, so a busy token costs at
	// most one write per interval whatever the number of replicas.
	TokenUseInterval = time.Minute
)

// Attempt outcomes as stored (policy.Outcome plus the states of an open attempt).
const (
	OutcomePending    = "pending"
	OutcomeSucceeded  = "succeeded"
	OutcomeFailed     = "failed"
	OutcomeRolledBack = "rolled-back"
	OutcomeTimedOut   = "timed-out"
	// OutcomeSuperseded ends an attempt the host left for a newer grant.
	OutcomeSuperseded = "superseded"
)

// Rollout is what a counted check-in reads inside its transaction, with the group row
// locked: the group as it is now and its counters for its policy.
type Rollout struct {
	Group    Group
	Counters policy.Counters
}

// RolloutWrite is what a counted check-in records besides the instance row.
type RolloutWrite struct {
	// Grant is the version granted by this check ("" for none). A host that already has
	// an open attempt at that version keeps it (a re-serve counts once).
	Grant string
	// Outcome, when set, ends the host's latest attempt in the group (succeeded, failed,
	// rolled-back); OutcomeVersion names the release when the host has no attempt on
	// record (granted before the group's policy counted).
	Outcome        string
	OutcomeVersion string
}

// AppCheckin is one app of a request recorded by CheckinAll: Decide for a plain check-in,
// or Rollout with GroupID for a counted one (exactly one of them set); the functions are
// those of Checkin and RolloutCheckin, with the same rules (they only compute and may run
// more than once).
type AppCheckin struct {
	AppID, MachineID string
	Decide           func(cur *Instance) (*InstanceUpdate, error)
	GroupID          int64
	Rollout          func(cur *Instance, r *Rollout) (*InstanceUpdate, *RolloutWrite, error)
}

// RolloutStatus is a group's rollout progress for one release.
type RolloutStatus struct {
	Group      string    `json:"group"`
	Version    string    `json:"version"`
	Paused     bool      `json:"paused"`
	HaltReason string    `json:"halt_reason,omitempty"`
	HaltedAt   time.Time `json:"halted_at,omitzero"`
	Granted    int       `json:"granted"`
	InFlight   int       `json:"in_flight"`
	Complete   int       `json:"complete"`
	Failed     int       `json:"failed"`
	RolledBack int       `json:"rolled_back"`
	TimedOut   int       `json:"timed_out"`
	// Counted is false when the group's policy keeps no counters: the numbers then come
	// from the instances' statuses.
	Counted bool `json:"counted"`
}

// StatusCount is how many instances of a group are in one status on one version.
type StatusCount struct {
	Group   string `json:"group"`
	Status  Status `json:"status"`
	Version string `json:"version"`
	Count   int    `json:"count"`
}

// VersionSample is how many instances of an application ran a version at one time.
type VersionSample struct {
	At      time.Time `json:"at"`
	Version string    `json:"version"`
	Count   int       `json:"count"`
}

// Retention says what Prune removes: instances not seen since InstancesBefore (with their
// history, events and attempts) and events (and ended attempts) older than EventsBefore.
// A zero time keeps everything of that kind.
type Retention struct {
	InstancesBefore time.Time
	EventsBefore    time.Time
	// ActivityBefore drops activity entries older than it.
	ActivityBefore time.Time
}

// Pruned counts what Prune removed.
type Pruned struct {
	Instances int64 `json:"instances"`
	History   int64 `json:"history"`
	Events    int64 `json:"events"`
	Attempts  int64 `json:"attempts"`
	Activity  int64 `json:"activity"`
}
