// Package state persists what update-engine must remember across restarts and reboots.
//
// # Format
//
// One JSON document, <dir>/state.json, with a schema number (SchemaVersion). Unknown fields
// are ignored when reading, so an older daemon can read a newer file after a rollback. The
// file is replaced atomically: written to a temporary file in the same directory, fsynced,
// renamed over state.json, and the directory fsynced, so a crash leaves the old or the new
// document, never a torn one.
//
// # What it holds
//
//   - AlephVersion: the first version this install ever ran (sent as app@alephversion).
//   - LastCheck: the time of the last completed Omaha check.
//   - Pending: the update this host is working on, from the moment a target partition is
//     made unbootable until it is confirmed good or a rollback is reported. Its Phase moves
//     downloading → flipped → (confirmed | rolled-back); a flipped update survives the reboot
//     and drives the post-boot work (3/2 or 3/0 errorcode 44).
//   - Resume: the applier's checkpoint (next operation, byte offset) for the payload whose
//     Omaha hash it names; a new attempt for the same payload continues from there.
//   - TUFTimestamp: the time of the last successful TUF refresh, a lower bound for the clock.
//   - Release: the TUF release counter of the running version (a floor for the next one).
//   - Backoff: consecutive failed checks, for the scheduler.
//
// Callers own concurrency: the engine holds the only Store and serialises access.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/internal/smallfile"
)

// SchemaVersion is the version of the document written by Save.
const SchemaVersion = 1

// maxStateSize bounds what Load reads.
const maxStateSize = 1 << 20

// FileName is the document's name inside the state directory.
const FileName = "state.json"

// Phases of a pending update.
const (
	PhaseDownloading = "downloading" // the target is unbootable and being written
	PhaseFlipped     = "flipped"     // the GPT says boot the target next, once
	PhaseConfirmed   = "confirmed"   // booted, healthy, marked good, 3/2 reported
	PhaseRolledBack  = "rolled-back" // came back on the old partition, 3/0 44 reported
)

// State is the persisted document.
type State struct {
	Schema       int       `json:"schema"`
	AlephVersion string    `json:"aleph_version,omitempty"`
	LastCheck    time.Time `json:"last_check,omitzero"`
	Pending      *Pending  `json:"pending,omitempty"`
	Resume       *Resume   `json:"resume,omitempty"`
	TUFTimestamp time.Time `json:"tuf_timestamp,omitzero"`
	// Release is the TUF release counter of the running version, once an update to it
	// was confirmed (0: unknown); a new target must carry a higher one.
	Release  uint64      `json:"release,omitempty"`
	Failures int         `json:"failures,omitempty"`
	History  []HistEntry `json:"history,omitempty"`
}

// Aleph is the first version this install ran, as sent in requests: the recorded one, or
// running before the engine records it.
func (s State) Aleph(running string) string {
	if s.AlephVersion != "" {
		return s.AlephVersion
	}
	return running
}

// Pending is the update in progress.
type Pending struct {
	Version     string    `json:"version"`
	FromVersion string    `json:"from_version"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // as Omaha announced it
	Target      int       `json:"target"` // GPT partition number
	TargetLabel string    `json:"target_label,omitempty"`
	Source      int       `json:"source"`            // the active partition when the update started
	Release     uint64    `json:"release,omitempty"` // TUF release counter of Version
	Phase       string    `json:"phase"`
	Since       time.Time `json:"since"`
	FlipBootID  string    `json:"flip_boot_id,omitempty"` // boot id when the flip happened
}

// Resume is an applier checkpoint for one payload.
type Resume struct {
	SHA256        string          `json:"sha256"` // the payload it belongs to
	Target        int             `json:"target"`
	NextOperation int             `json:"next_operation"`
	Offset        int64           `json:"offset"` // payload bytes consumed so far
	Applier       json.RawMessage `json:"applier,omitempty"`
	Attempts      int             `json:"attempts"`
}

// HistEntry is one line of the short history status shows.
type HistEntry struct {
	Time    time.Time `json:"time"`
	Version string    `json:"version"`
	Event   string    `json:"event"`
}

// maxHistory bounds History.
const maxHistory = 20

// AddHistory appends an entry, dropping the oldest beyond the bound.
func (s *State) AddHistory(t time.Time, version, event string) {
	s.History = append(s.History, HistEntry{Time: t.UTC(), Version: version, Event: event})
	if n := len(s.History); n > maxHistory {
		s.History = append([]HistEntry(nil), s.History[n-maxHistory:]...)
	}
}

// Store reads and writes the document in Dir.
type Store struct {
	Dir string
}

// ErrNewerSchema is returned when the file was written by a newer schema this daemon cannot
// interpret safely.
var ErrNewerSchema = errors.New("state: written by a newer schema")

// Load returns the stored state, or a zero State (with the current schema) when there is none.
func (st Store) Load() (State, error) {
	name := filepath.Join(st.Dir, FileName)
	data, err := smallfile.Read(name, maxStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		return State{Schema: SchemaVersion}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("state: %w", err)
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("state: decoding %s: %w", name, err)
	}
	if s.Schema > SchemaVersion {
		return State{}, fmt.Errorf("%w: %s has schema %d, this daemon knows %d", ErrNewerSchema, name, s.Schema, SchemaVersion)
	}
	s.Schema = SchemaVersion
	return s, nil
}

// Save replaces the stored document atomically.
func (st Store) Save(s State) error {
	s.Schema = SchemaVersion
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(st.Dir, 0o755); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(st.Dir, FileName), data, 0o644)
}
