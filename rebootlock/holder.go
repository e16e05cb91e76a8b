package rebootlock

import (
	"fmt"
	"regexp"
	"time"
	"unicode"
)

// Holder is the record stored under holders/<id>.
type Holder struct {
	ID          string    `json:"id"`
	Hostname    string    `json:"hostname,omitempty"`
	BootID      string    `json:"boot_id,omitempty"`
	FromVersion string    `json:"from_version,omitempty"`
	ToVersion   string    `json:"to_version,omitempty"`
	Since       time.Time `json:"since"`
	// Via names the path the slot was taken by: "etcd" (the daemon, the default),
	// "fleetlock" (the FleetLock server) or "updatectl" (by hand).
	Via string `json:"via,omitempty"`
}

// Size limits for names, so that keys stay small and readable.
const (
	maxGroupLen = 128
	maxIDLen    = 256
)

var groupPattern = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)

// ValidateGroup reports whether name is a valid group name: the FleetLock pattern
// ^[a-zA-Z0-9.-]+$, at most 128 bytes.
func ValidateGroup(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidGroup)
	}
	if len(name) > maxGroupLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidGroup, len(name), maxGroupLen)
	}
	if !groupPattern.MatchString(name) {
		return fmt.Errorf("%w: %q (letters, digits, '.' and '-' only)", ErrInvalidGroup, name)
	}
	return nil
}

// ValidateID reports whether id is usable as a holder id: non-empty, at most 256 bytes,
// valid UTF-8 of graphic characters (letters, marks, digits, punctuation, symbols and
// spaces, as FleetLock allows any text), without '/' (the id is one etcd key segment) and
// without control or format characters (newlines, NUL, bidi overrides), which would make
// the id print as something else.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(id), maxIDLen)
	}
	for _, r := range id {
		if r == '/' || r == unicode.ReplacementChar || !unicode.IsGraphic(r) {
			return fmt.Errorf("%w: %q (no '/', control or format characters)", ErrInvalidID, id)
		}
	}
	return nil
}
