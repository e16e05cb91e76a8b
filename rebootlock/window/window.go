// Package window parses and evaluates reboot windows: the times of the week in which a host
// may reboot.
//
// # Format
//
// A schedule is one or more windows separated by ';' or newlines. A window is
//
//	DAYS HH:MM LENGTH [ZONE]
//
// DAYS is a comma-separated list of days or day ranges (Mon-Fri, Fri-Mon wraps over the
// weekend), with three-letter or full English names in any case, or '*' / "daily" for
// every day. HH:MM is the wall-clock start (hour 0-23, minute 0-59). LENGTH is a Go
// duration (90m, 1h30m) above zero and at most 7 days. ZONE is an IANA time zone name
// (Europe/Berlin), "UTC" (the default) or "localtime" for the process's zone. Examples:
//
//	Mon-Fri 02:00 3h Europe/Berlin
//	Sat,Sun 00:00 24h UTC; Wed 12:00 30m America/New_York
//
// Flatcar's REBOOT_WINDOW_START / REBOOT_WINDOW_LENGTH pair ("Thu 04:00" or "04:00" daily,
// with a Go duration below 7 days, or below 24 hours for a daily window) is read by
// ParseFlatcar; the caller supplies the zone locksmith would have taken from the process.
// Combine joins both forms into the schedule of a host's configuration.
//
// # Semantics
//
// A window opens on each listed day at HH:MM wall-clock time in its zone and stays open for
// LENGTH of elapsed time; it may run into the following days. Across a daylight-saving
// change the start keeps its wall-clock time: a start that falls into a skipped hour moves
// to the same offset after the jump (02:30 on a spring-forward night opens at 03:30), a
// start in a repeated hour opens at its first occurrence. A schedule contains an instant
// when any of its windows does; an empty schedule places no restriction. The zone database
// is compiled in (time/tzdata), so results do not depend on the host's zoneinfo files.
package window

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the same zone rules on every host
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("window: invalid reboot window")

// MaxLength is the longest window.
const MaxLength = 7 * 24 * time.Hour

// maxInput bounds what Parse reads.
const maxInput = 4096

// Window is one weekly reboot window.
type Window struct {
	// Days are indexed by time.Weekday.
	Days         [7]bool
	Hour, Minute int
	Length       time.Duration
	Location     *time.Location
}

// Schedule is a set of windows. The zero value is always open.
type Schedule []Window

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

func syntaxError(input, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrSyntax, input, fmt.Sprintf(format, args...))
}

// Parse parses a schedule (see the package comment).
func Parse(s string) (Schedule, error) {
	if len(s) > maxInput {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrSyntax, len(s), maxInput)
	}
	var sched Schedule
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		w, err := ParseWindow(part)
		if err != nil {
			return nil, err
		}
		sched = append(sched, w)
	}
	if len(sched) == 0 {
		return nil, fmt.Errorf("%w: no window in %q", ErrSyntax, s)
	}
	return sched, nil
}

// ParseWindow parses one window: DAYS HH:MM LENGTH [ZONE].
func ParseWindow(s string) (Window, error) {
	f := strings.Fields(s)
	if len(f) < 3 || len(f) > 4 {
		return Window{}, syntaxError(s, "want DAYS HH:MM LENGTH [ZONE]")
	}
	var w Window
	var err error
	if w.Days, err = parseDays(s, f[0]); err != nil {
		return Window{}, err
	}
	if w.Hour, w.Minute, err = parseClock(s, f[1]); err != nil {
		return Window{}, err
	}
	if w.Length, err = parseLength(s, f[2], MaxLength); err != nil {
		return Window{}, err
	}
	w.Location = time.UTC
	if len(f) == 4 {
		if w.Location, err = LoadZone(f[3]); err != nil {
			return Window{}, syntaxError(s, "%v", err)
		}
	}
	return w, nil
}

// LoadZone returns the zone for an IANA name, "UTC", or "localtime" / "Local" for the
// process's own zone.
func LoadZone(name string) (*time.Location, error) {
	switch name {
	case "localtime", "Local":
		return time.Local, nil
	case "":
		return nil, errors.New("window: empty time zone")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("window: unknown time zone %q", name)
	}
	return loc, nil
}

// Combine builds a host's schedule from its configuration: windows, each in the form
// ParseWindow reads (REBOOT_WINDOWS entries), and, when flatcarStart is not empty, Flatcar's
// LOCKSMITHD_REBOOT_WINDOW_START / _LENGTH evaluated in flatcarZone (time.Local when nil,
// as locksmithd does). Both may be given; the schedule is their union. No windows at all
// gives the empty schedule, which places no restriction.
func Combine(windows []string, flatcarStart string, flatcarLength time.Duration, flatcarZone *time.Location) (Schedule, error) {
	var sched Schedule
	for _, s := range windows {
		w, err := ParseWindow(s)
		if err != nil {
			return nil, err
		}
		sched = append(sched, w)
	}
	if flatcarStart != "" {
		if flatcarZone == nil {
			flatcarZone = time.Local
		}
		w, err := ParseFlatcar(flatcarStart, flatcarLength.String(), flatcarZone)
		if err != nil {
			return nil, err
		}
		sched = append(sched, w)
	}
	return sched, nil
}

// ParseFlatcar reads Flatcar's REBOOT_WINDOW_START ("Thu 04:00", or "04:00" for every day)
// and REBOOT_WINDOW_LENGTH (a Go duration, below 24h for a daily window and below 7 days
// for a weekly one), evaluated in loc.
func ParseFlatcar(start, length string, loc *time.Location) (Window, error) {
	if loc == nil {
		return Window{}, errors.New("window: nil time zone")
	}
	in := start + " / " + length
	f := strings.Fields(start)
	var w Window
	var err error
	limit := 24 * time.Hour
	switch len(f) {
	case 1:
		for d := range w.Days {
			w.Days[d] = true
		}
	case 2:
		d, ok := dayNames[strings.ToLower(f[0])]
		if !ok || len(f[0]) != 3 {
			return Window{}, syntaxError(in, "day %q is not one of sun, mon, tue, wed, thu, fri, sat", f[0])
		}
		w.Days[d] = true
		limit = MaxLength
	default:
		return Window{}, syntaxError(in, "start must be HH:MM or DAY HH:MM")
	}
	if w.Hour, w.Minute, err = parseClock(in, f[len(f)-1]); err != nil {
		return Window{}, err
	}
	if w.Length, err = parseLength(in, strings.TrimSpace(length), limit-time.Nanosecond); err != nil {
		return Window{}, err
	}
	w.Location = loc
	return w, nil
}

func parseDays(in, s string) ([7]bool, error) {
	var days [7]bool
	if s == "*" || strings.EqualFold(s, "daily") {
		for d := range days {
			days[d] = true
		}
		return days, nil
	}
	for _, item := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(item, "-")
		a, ok := dayNames[strings.ToLower(from)]
		if !ok {
			return days, syntaxError(in, "unknown day %q", from)
		}
		b := a
		if isRange {
			if b, ok = dayNames[strings.ToLower(to)]; !ok {
				return days, syntaxError(in, "unknown day %q", to)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func parseClock(in, s string) (int, int, error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) < 1 || len(ms) > 2 {
		return 0, 0, syntaxError(in, "start %q is not HH:MM", s)
	}
	h, err1 := strconv.Atoi(hs)
	m, err2 := strconv.Atoi(ms)
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 || hs[0] == '+' || ms[0] == '+' || hs[0] == '-' || ms[0] == '-' {
		return 0, 0, syntaxError(in, "start %q is not a time of day between 00:00 and 23:59", s)
	}
	return h, m, nil
}

func parseLength(in, s string, limit time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, syntaxError(in, "length %q is not a duration like 90m or 1h30m", s)
	}
	if d <= 0 || d > limit {
		return 0, syntaxError(in, "length %v must be above zero and at most %v", d, limit)
	}
	return d, nil
}

// start returns the window's opening on the calendar day y-m-d (of its zone). time.Date
// leaves open which of two instants a repeated wall-clock time means; the earlier one is
// chosen here explicitly.
func (w Window) start(y int, m time.Month, d int) time.Time {
	t := time.Date(y, m, d, w.Hour, w.Minute, 0, 0, w.Location)
	_, off := t.Zone()
	_, before := t.Add(-12 * time.Hour).Zone()
	if before > off {
		earlier := t.Add(-time.Duration(before-off) * time.Second)
		ey, em, ed := earlier.Date()
		if ey == y && em == m && ed == d && earlier.Hour() == w.Hour && earlier.Minute() == w.Minute {
			return earlier
		}
	}
	return t
}

// Contains reports whether the window is open at t.
func (w Window) Contains(t time.Time) bool {
	lt := t.In(w.Location)
	y, m, d := lt.Date()
	// A window lasts at most 7 days, so only openings of the last 8 days can cover t.
	for back := 0; back <= 8; back++ {
		day := time.Date(y, m, d-back, 12, 0, 0, 0, w.Location)
		if !w.Days[day.Weekday()] {
			continue
		}
		st := w.start(y, m, d-back)
		if !t.Before(st) && t.Before(st.Add(w.Length)) {
			return true
		}
	}
	return false
}

// Next returns t if the window is open at t, else the next instant it opens. ok is false
// for a window with no days.
func (w Window) Next(t time.Time) (next time.Time, ok bool) {
	if w.Contains(t) {
		return t, true
	}
	lt := t.In(w.Location)
	y, m, d := lt.Date()
	for fwd := 0; fwd <= 8; fwd++ {
		day := time.Date(y, m, d+fwd, 12, 0, 0, 0, w.Location)
		if !w.Days[day.Weekday()] {
			continue
		}
		if st := w.start(y, m, d+fwd); st.After(t) {
			return st, true
		}
	}
	return time.Time{}, false
}

// String returns the window in the canonical form Parse reads.
func (w Window) String() string {
	var days []string
	for d := time.Sunday; d <= time.Saturday; d++ {
		if w.Days[(d+1)%7] { // Monday first
			days = append(days, time.Weekday((d + 1) % 7).String()[:3])
		}
	}
	zone := "UTC"
	if w.Location != nil {
		zone = w.Location.String()
	}
	return fmt.Sprintf("%s %02d:%02d %v %s", strings.Join(days, ","), w.Hour, w.Minute, w.Length, zone)
}

// Contains reports whether any window is open at t; an empty schedule always is.
func (s Schedule) Contains(t time.Time) bool {
	if len(s) == 0 {
		return true
	}
	for _, w := range s {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// Next returns t if the schedule is open at t, else the earliest instant a window opens.
// It returns the zero Time when no window ever opens (windows without days, which Parse
// never returns).
func (s Schedule) Next(t time.Time) time.Time {
	if s.Contains(t) {
		return t
	}
	var best time.Time
	for _, w := range s {
		if n, ok := w.Next(t); ok && (best.IsZero() || n.Before(best)) {
			best = n
		}
	}
	return best
}

// String returns the schedule in the form Parse reads.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, w := range s {
		parts[i] = w.String()
	}
	return strings.Join(parts, "; ")
}
