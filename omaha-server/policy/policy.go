// Package policy decides, for one update check, whether a group's rollout policy lets a host be
// offered a release now, and which release.
//
// It is pure: the Omaha handler loads the group's Policy, the releases the server knows for
// the host's board, and the group's rollout counters inside the transaction that will record
// the grant, calls Decide, and writes what it says. Keeping the counters in the database and
// the decision here is what makes several server replicas on one PostgreSQL agree: the
// transaction serialises grants, this package only reads.
//
// # The decision, in order
//
//  1. Paused or halted groups, and groups with updates disabled, hold every host.
//  2. The target is the channel's release, or the pinned version when the group is pinned.
//  3. A blocked target is replaced by the newest release below it that is not blocked;
//     hosts already on a blocked version are offered the next good release above it.
//  4. A host at or above the target is up to date.
//  5. Floors are stepping stones: a host below a floor that lies under the target is
//     offered the lowest such floor first (Nebraska's floor packages, Cincinnati's barriers).
//  6. Maintenance windows: outside every window, hold.
//  7. Percentage: a stable hash of machine id and offered version places each host at a
//     point in [0, 100); hosts below the percentage are in the cohort. Raising the
//     percentage only adds hosts, it never drops one that was already offered the release.
//  8. Rate limits: grants in the current period and updates in flight below their caps.
//
// Every hold is a Hold with a Reason; the handler answers it with noupdate on the wire.
//
// # Automatic halt
//
// Halt looks at the outcomes of the most recent attempts at a release in a group (errors,
// rollbacks reported with Flatcar's error code 44, and grants that timed out before the host
// reported 3/1): when Failures of the last Of attempts failed, the group stops offering the
// release and records why. Only an explicit resume clears it.
package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/rebootlock/window"
)

// Bounds on policy values.
const (
	MaxPeriod     = 30 * 24 * time.Hour
	MinTimeout    = time.Minute
	MaxTimeout    = 7 * 24 * time.Hour
	MaxHaltWindow = 1000
	MaxVersions   = 64 // floors or blocked versions in one policy
	MaxWindows    = 16
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("policy: invalid policy")

// Policy is a group's rollout policy. The zero Policy places no restriction beyond a group's
// updates-enabled switch.
type Policy struct {
	// Percent of hosts that may be offered a release, 0 to 100. Nil means 100.
	Percent *int `json:"percent,omitempty"`
	// MaxPerPeriod caps the grants in each Period; 0 means no cap.
	MaxPerPeriod int      `json:"max_per_period,omitempty"`
	Period       Duration `json:"period,omitempty"`
	// MaxInFlight caps the hosts granted an update that have not finished it; 0 means no cap.
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// Timeout is how long a granted host has to report 3/1 before the attempt counts as
	// timed out; 0 means never.
	Timeout Duration `json:"timeout,omitempty"`
	// Windows are maintenance windows ("Mon-Fri 09:00 8h Europe/Berlin"); none means always.
	Windows []string `json:"windows,omitempty"`
	// HaltFailures of the last HaltOf attempts failing halts the rollout; 0 disables it.
	HaltFailures int `json:"halt_failures,omitempty"`
	HaltOf       int `json:"halt_of,omitempty"`
	// Floors are versions every host must pass through.
	Floors []string `json:"floors,omitempty"`
	// Blocked versions are never offered.
	Blocked []string `json:"blocked,omitempty"`
	// Pin, when set, is the version the group is held at instead of its channel's release.
	Pin string `json:"pin,omitempty"`
}

// Duration is a time.Duration that reads and writes as a Go duration string in JSON.
type Duration time.Duration

// MarshalText writes the duration as "1h30m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%w: duration %q: %v", ErrInvalid, b, err)
	}
	*d = Duration(v)
	return nil
}

// PercentOrAll is the effective percentage.
func (p Policy) PercentOrAll() int {
	if p.Percent == nil {
		return 100
	}
	return *p.Percent
}

// Counted reports whether the policy needs the group's rollout counters (caps, a timeout
// or an automatic halt). A group whose policy counts nothing is decided from its policy
// alone, with no lock and no counter read.
func (p Policy) Counted() bool {
	return p.MaxPerPeriod > 0 || p.MaxInFlight > 0 || p.Timeout > 0 || p.HaltFailures > 0
}

// Validate checks every value and returns one error naming each problem.
func (p Policy) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if p.Percent != nil && (*p.Percent < 0 || *p.Percent > 100) {
		bad("percent %d is outside 0..100", *p.Percent)
	}
	if p.MaxPerPeriod < 0 {
		bad("max per period %d is negative", p.MaxPerPeriod)
	}
	if p.MaxPerPeriod > 0 && (p.Period <= 0 || time.Duration(p.Period) > MaxPeriod) {
		bad("a max per period needs a period above 0 and at most %s, got %s", MaxPeriod, time.Duration(p.Period))
	}
	if p.MaxPerPeriod == 0 && p.Period != 0 {
		bad("period %s given without a max per period", time.Duration(p.Period))
	}
	if p.MaxInFlight < 0 {
		bad("max in flight %d is negative", p.MaxInFlight)
	}
	if p.Timeout != 0 && (time.Duration(p.Timeout) < MinTimeout || time.Duration(p.Timeout) > MaxTimeout) {
		bad("timeout %s is outside %s..%s", time.Duration(p.Timeout), MinTimeout, MaxTimeout)
	}
	if len(p.Windows) > MaxWindows {
		bad("%d windows, at most %d", len(p.Windows), MaxWindows)
	}
	for _, w := range p.Windows {
		if _, err := window.ParseWindow(w); err != nil {
			bad("window %q: %v", w, err)
		}
	}
	switch {
	case p.HaltFailures < 0 || p.HaltOf < 0:
		bad("halt thresholds must not be negative")
	case p.HaltFailures == 0 && p.HaltOf != 0:
		bad("halt-of %d given without halt-failures", p.HaltOf)
	case p.HaltFailures > 0 && (p.HaltOf < p.HaltFailures || p.HaltOf > MaxHaltWindow):
		bad("halt when %d of the last %d failed: the window must be at least the failure count and at most %d", p.HaltFailures, p.HaltOf, MaxHaltWindow)
	}
	for _, list := range []struct {
		name string
		vs   []string
	}{{"floor", p.Floors}, {"blocked", p.Blocked}} {
		if len(list.vs) > MaxVersions {
			bad("%d %s versions, at most %d", len(list.vs), list.name, MaxVersions)
		}
		for _, v := range list.vs {
			if _, err := omaha.ParseVersion(v); err != nil {
				bad("%s version: %v", list.name, err)
			}
		}
	}
	if p.Pin != "" {
		if _, err := omaha.ParseVersion(p.Pin); err != nil {
			bad("pin: %v", err)
		} else if slices.Contains(p.Blocked, p.Pin) {
			bad("pinned version %s is also blocked", p.Pin)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// Schedule parses the maintenance windows; call Validate first.
func (p Policy) Schedule() (window.Schedule, error) {
	var s window.Schedule
	for _, w := range p.Windows {
		parsed, err := window.ParseWindow(w)
		if err != nil {
			return nil, fmt.Errorf("%w: window %q: %v", ErrInvalid, w, err)
		}
		s = append(s, parsed)
	}
	return s, nil
}

// Reason says why a host was not offered an update.
type Reason string

// Hold reasons.
const (
	ReasonUpToDate       Reason = "up-to-date"
	ReasonUpdatesOff     Reason = "updates-disabled"
	ReasonPaused         Reason = "paused"
	ReasonHalted         Reason = "halted"
	ReasonNoRelease      Reason = "no-release"
	ReasonAllBlocked     Reason = "all-blocked"
	ReasonOutsideWindow  Reason = "outside-window"
	ReasonNotInCohort    Reason = "not-in-cohort"
	ReasonPeriodLimit    Reason = "period-limit"
	ReasonInFlightLimit  Reason = "in-flight-limit"
	ReasonPinnedNotFound Reason = "pinned-release-missing"
)

// Counters are a group's rollout counters for the release being offered, read in the
// transaction that records the grant.
type Counters struct {
	// GrantedInPeriod counts grants since now minus the policy's period.
	GrantedInPeriod int
	// InFlight counts hosts granted an update that have neither finished, failed nor timed out.
	InFlight int
}

// Input is everything Decide needs about one check.
type Input struct {
	Now       time.Time
	MachineID string
	// Current is the version the host runs.
	Current omaha.Version
	// Channel is the channel's release for the host's board; nil when it has none.
	Channel *omaha.Version
	// Available are the versions of every release the server holds for the board.
	Available []omaha.Version
	// UpdatesEnabled is the group's switch; Paused and Halted its rollout state.
	UpdatesEnabled bool
	Paused         bool
	Halted         bool
	Counters       Counters
}

// Decision is Decide's answer: an offer of Version, or a hold for Reason.
type Decision struct {
	Offer   bool
	Version omaha.Version
	Reason  Reason
}

// Target works out which version a host should move to next, before any rate or cohort
// check: steps 1 to 5 of the package doc. ok is false with a reason when there is none.
func Target(p Policy, in Input) (next omaha.Version, reason Reason, ok bool) {
	switch {
	case !in.UpdatesEnabled:
		return next, ReasonUpdatesOff, false
	case in.Halted:
		return next, ReasonHalted, false
	case in.Paused:
		return next, ReasonPaused, false
	}
	blocked := parseAll(p.Blocked)
	isBlocked := func(v omaha.Version) bool {
		return slices.ContainsFunc(blocked, func(b omaha.Version) bool { return b.Compare(v) == 0 })
	}
	available := slices.Clone(in.Available)
	slices.SortFunc(available, omaha.Version.Compare)
	has := func(v omaha.Version) bool {
		return slices.ContainsFunc(available, func(a omaha.Version) bool { return a.Compare(v) == 0 })
	}

	var target omaha.Version
	switch {
	case p.Pin != "":
		pin, err := omaha.ParseVersion(p.Pin)
		if err != nil || !has(pin) {
			return next, ReasonPinnedNotFound, false
		}
		target = pin
	case in.Channel != nil:
		target = *in.Channel
	default:
		return next, ReasonNoRelease, false
	}
	if isBlocked(target) {
		found := false
		for i := len(available) - 1; i >= 0; i-- {
			if v := available[i]; v.Compare(target) < 0 && !isBlocked(v) {
				target, found = v, true
				break
			}
		}
		if !found {
			return next, ReasonAllBlocked, false
		}
	}
	if in.Current.Compare(target) >= 0 {
		return next, ReasonUpToDate, false
	}
	next = target
	for _, f := range parseAll(p.Floors) {
		if in.Current.Compare(f) < 0 && f.Compare(next) < 0 && has(f) && !isBlocked(f) {
			next = f
		}
	}
	return next, "", true
}

// Decide applies the whole policy to one check.
func Decide(p Policy, in Input) Decision {
	next, reason, ok := Target(p, in)
	if !ok {
		return Decision{Reason: reason}
	}
	if len(p.Windows) > 0 {
		s, err := p.Schedule()
		if err != nil || !s.Contains(in.Now) {
			return Decision{Reason: ReasonOutsideWindow}
		}
	}
	if !InCohort(in.MachineID, next.String(), p.PercentOrAll()) {
		return Decision{Reason: ReasonNotInCohort}
	}
	if p.MaxPerPeriod > 0 && in.Counters.GrantedInPeriod >= p.MaxPerPeriod {
		return Decision{Reason: ReasonPeriodLimit}
	}
	if p.MaxInFlight > 0 && in.Counters.InFlight >= p.MaxInFlight {
		return Decision{Reason: ReasonInFlightLimit}
	}
	return Decision{Offer: true, Version: next}
}

// Point places a host in [0, 10000) for a release: the first eight bytes of
// SHA-256(machineID NUL version), modulo 10000. It depends on nothing but its inputs, so
// every replica and every restart agrees.
func Point(machineID, version string) int {
	h := sha256.New()
	h.Write([]byte(machineID))
	h.Write([]byte{0})
	h.Write([]byte(version))
	sum := h.Sum(nil)
	return int(binary.BigEndian.Uint64(sum[:8]) % 10000)
}

// InCohort reports whether a host is among the percent of hosts offered a release.
func InCohort(machineID, version string, percent int) bool {
	if percent >= 100 {
		return true
	}
	return Point(machineID, version) < percent*100
}

func parseAll(vs []string) []omaha.Version {
	out := make([]omaha.Version, 0, len(vs))
	for _, s := range vs {
		if v, err := omaha.ParseVersion(s); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// Outcome is how one attempt at a release ended.
type Outcome int

// Attempt outcomes.
const (
	Succeeded  Outcome = iota
	Failed             // 3/0 with an error code other than a rollback
	RolledBack         // 3/0 with Flatcar's error code 44
	TimedOut           // granted, no 3/1 within the policy's timeout
)

// Halt reports whether the recent outcomes (newest first; only the first HaltOf count)
// trip the policy's automatic halt, and a reason a person can read.
func Halt(p Policy, release string, recent []Outcome) (bool, string) {
	if p.HaltFailures <= 0 {
		return false, ""
	}
	if len(recent) > p.HaltOf {
		recent = recent[:p.HaltOf]
	}
	var failed, rolledBack, timedOut int
	for _, o := range recent {
		switch o {
		case Failed:
			failed++
		case RolledBack:
			rolledBack++
		case TimedOut:
			timedOut++
		}
	}
	total := failed + rolledBack + timedOut
	if total < p.HaltFailures {
		return false, ""
	}
	return true, fmt.Sprintf("%d of the last %d attempts at %s failed (%d errors, %d rollbacks, %d timeouts); threshold %d of %d",
		total, len(recent), release, failed, rolledBack, timedOut, p.HaltFailures, p.HaltOf)
}
