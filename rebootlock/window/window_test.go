package window

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // canonical String(); "" means an error is expected
	}{
		{name: "weekdays berlin", input: "Mon-Fri 02:00 3h Europe/Berlin", want: "Mon,Tue,Wed,Thu,Fri 02:00 3h0m0s Europe/Berlin"},
		{name: "weekend utc", input: "Sat,Sun 00:00 24h UTC", want: "Sat,Sun 00:00 24h0m0s UTC"},
		{name: "default zone", input: "wed 4:05 90m", want: "Wed 04:05 1h30m0s UTC"},
		{name: "full names", input: "Monday,friday 23:59 1m", want: "Mon,Fri 23:59 1m0s UTC"},
		{name: "wrapping range", input: "Fri-Mon 22:00 4h", want: "Mon,Fri,Sat,Sun 22:00 4h0m0s UTC"},
		{name: "every day", input: "* 01:00 1h", want: "Mon,Tue,Wed,Thu,Fri,Sat,Sun 01:00 1h0m0s UTC"},
		{name: "daily", input: "daily 01:00 1h", want: "Mon,Tue,Wed,Thu,Fri,Sat,Sun 01:00 1h0m0s UTC"},
		{name: "two windows", input: "Mon 01:00 1h; Tue 02:00 2h America/New_York", want: "Mon 01:00 1h0m0s UTC; Tue 02:00 2h0m0s America/New_York"},
		{name: "newline separated", input: "Mon 01:00 1h\nTue 02:00 2h\n", want: "Mon 01:00 1h0m0s UTC; Tue 02:00 2h0m0s UTC"},
		{name: "a full week", input: "Sun 00:00 168h", want: "Sun 00:00 168h0m0s UTC"},
		{name: "empty", input: ""},
		{name: "only separators", input: " ; \n ;"},
		{name: "missing length", input: "Mon 02:00"},
		{name: "too many fields", input: "Mon 02:00 1h UTC extra"},
		{name: "bad day", input: "Mun 02:00 1h"},
		{name: "bad range end", input: "Mon-Fro 02:00 1h"},
		{name: "hour 24", input: "Mon 24:00 1h"},
		{name: "minute 60", input: "Mon 02:60 1h"},
		{name: "negative hour", input: "Mon -1:00 1h"},
		{name: "plus sign", input: "Mon +1:00 1h"},
		{name: "no colon", input: "Mon 0200 1h"},
		{name: "zero length", input: "Mon 02:00 0s"},
		{name: "negative length", input: "Mon 02:00 -1h"},
		{name: "too long", input: "Mon 02:00 169h"},
		{name: "length without unit", input: "Mon 02:00 60"},
		{name: "unknown zone", input: "Mon 02:00 1h Mars/Olympus"},
		{name: "zone path", input: "Mon 02:00 1h ../../etc/passwd"},
		{name: "empty day in list", input: "Mon,,Tue 02:00 1h"},
		{name: "huge", input: strings.Repeat("Mon 02:00 1h;", 400)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.input)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want an error", tt.input, got)
				}
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("error %v does not wrap ErrSyntax", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.input, err)
			}
			if got.String() != tt.want {
				t.Fatalf("Parse(%q) = %q, want %q", tt.input, got.String(), tt.want)
			}
		})
	}
}

func TestParseFlatcar(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	tests := []struct {
		name, start, length string
		want                string
	}{
		{name: "daily", start: "14:00", length: "1h", want: "Mon,Tue,Wed,Thu,Fri,Sat,Sun 14:00 1h0m0s Europe/Berlin"},
		{name: "weekly", start: "Thu 23:00", length: "1h30m", want: "Thu 23:00 1h30m0s Europe/Berlin"},
		{name: "lower-case day, short hour", start: "thu 4:00", length: "30m", want: "Thu 04:00 30m0s Europe/Berlin"},
		{name: "daily 24h is too long", start: "04:00", length: "24h"},
		{name: "weekly 7d is too long", start: "Thu 04:00", length: "168h"},
		{name: "weekly below 7d", start: "Thu 04:00", length: "167h", want: "Thu 04:00 167h0m0s Europe/Berlin"},
		{name: "full day name is not locksmith's", start: "Thursday 04:00", length: "1h"},
		{name: "empty start", start: "", length: "1h"},
		{name: "bad length", start: "04:00", length: "soon"},
		{name: "zero length", start: "04:00", length: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseFlatcar(tt.start, tt.length, berlin)
			if tt.want == "" {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("ParseFlatcar(%q, %q) = %v, %v; want ErrSyntax", tt.start, tt.length, w, err)
				}
				return
			}
			if err != nil || w.String() != tt.want {
				t.Fatalf("ParseFlatcar(%q, %q) = %q, %v; want %q", tt.start, tt.length, w, err, tt.want)
			}
		})
	}
}

func TestContainsNext(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	ny := mustZone(t, "America/New_York")
	at := func(loc *time.Location, s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name     string
		schedule string
		t        time.Time
		contains bool
		next     time.Time
	}{
		// 2026-11-25 is a Wednesday.
		{name: "inside", schedule: "Mon-Fri 02:00 3h Europe/Berlin", t: at(berlin, "2026-11-25 03:00"), contains: true, next: at(berlin, "2026-11-25 03:00")},
		{name: "at start", schedule: "Mon-Fri 02:00 3h Europe/Berlin", t: at(berlin, "2026-11-25 02:00"), contains: true, next: at(berlin, "2026-11-25 02:00")},
		{name: "at end is outside", schedule: "Mon-Fri 02:00 3h Europe/Berlin", t: at(berlin, "2026-11-25 05:00"), next: at(berlin, "2026-11-26 02:00")},
		{name: "friday evening waits for monday", schedule: "Mon-Fri 02:00 3h Europe/Berlin", t: at(berlin, "2026-11-27 06:00"), next: at(berlin, "2026-11-30 02:00")},
		{name: "other zone instant", schedule: "Mon-Fri 02:00 3h Europe/Berlin", t: at(time.UTC, "2026-11-25 01:30"), contains: true, next: at(time.UTC, "2026-11-25 01:30")},
		{name: "runs past midnight", schedule: "Sat 22:00 4h UTC", t: at(time.UTC, "2026-11-29 01:00"), contains: true, next: at(time.UTC, "2026-11-29 01:00")},
		{name: "weekend window sunday", schedule: "Sat,Sun 00:00 24h UTC", t: at(time.UTC, "2026-11-29 23:59"), contains: true, next: at(time.UTC, "2026-11-29 23:59")},
		{name: "weekend window monday", schedule: "Sat,Sun 00:00 24h UTC", t: at(time.UTC, "2026-11-30 00:00"), next: at(time.UTC, "2026-12-05 00:00")},
		{name: "earliest of two", schedule: "Fri 01:00 1h; Thu 05:00 1h", t: at(time.UTC, "2026-11-25 12:00"), next: at(time.UTC, "2026-11-26 05:00")},
		{name: "wrapping week", schedule: "Sun 20:00 48h", t: at(time.UTC, "2026-11-24 19:59"), contains: true, next: at(time.UTC, "2026-11-24 19:59")},
		// DST: Europe/Berlin springs forward 2026-03-29 02:00 -> 03:00 and falls back
		// 2026-10-25 03:00 -> 02:00.
		{name: "spring forward: skipped start opens after the jump", schedule: "Sun 02:30 1h Europe/Berlin", t: at(time.UTC, "2026-03-29 00:00"), next: time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)},
		{name: "spring forward: wall clock kept the week after", schedule: "Sun 02:30 1h Europe/Berlin", t: at(time.UTC, "2026-03-30 00:00"), next: time.Date(2026, 4, 5, 0, 30, 0, 0, time.UTC)},
		{name: "fall back: length is elapsed time", schedule: "Sun 01:30 2h Europe/Berlin", t: time.Date(2026, 10, 25, 1, 15, 0, 0, time.UTC), contains: true, next: time.Date(2026, 10, 25, 1, 15, 0, 0, time.UTC)},
		{name: "fall back: closed after two hours", schedule: "Sun 01:30 2h Europe/Berlin", t: time.Date(2026, 10, 25, 1, 31, 0, 0, time.UTC), next: time.Date(2026, 11, 1, 0, 30, 0, 0, time.UTC)},
		{name: "fall back: a repeated start opens at its first occurrence", schedule: "Sun 02:30 1h Europe/Berlin", t: time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC), next: time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
		{name: "fall back: and stays open one elapsed hour", schedule: "Sun 02:30 1h Europe/Berlin", t: time.Date(2026, 10, 25, 1, 15, 0, 0, time.UTC), contains: true, next: time.Date(2026, 10, 25, 1, 15, 0, 0, time.UTC)},
		{name: "fall back: closed after", schedule: "Sun 02:30 1h Europe/Berlin", t: time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), next: time.Date(2026, 11, 1, 1, 30, 0, 0, time.UTC)},
		{name: "new york daily across DST", schedule: "* 09:00 1h America/New_York", t: at(ny, "2026-03-08 10:30"), next: at(ny, "2026-03-09 09:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.schedule)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Contains(tt.t); got != tt.contains {
				t.Errorf("Contains(%v) = %v, want %v", tt.t, got, tt.contains)
			}
			if got := s.Next(tt.t); !got.Equal(tt.next) {
				t.Errorf("Next(%v) = %v, want %v", tt.t, got, tt.next)
			}
		})
	}
}

func TestEmptySchedule(t *testing.T) {
	var s Schedule
	now := time.Now()
	if !s.Contains(now) || !s.Next(now).Equal(now) {
		t.Fatal("an empty schedule must always be open")
	}
	s = Schedule{{Hour: 1, Length: time.Hour, Location: time.UTC}}
	if s.Contains(now) || !s.Next(now).IsZero() {
		t.Fatal("a window without days must never open")
	}
}

// checkSchedule holds the properties every parsed schedule has.
func checkSchedule(t *testing.T, input string, s Schedule, ts ...time.Time) {
	t.Helper()
	again, err := Parse(s.String())
	if err != nil {
		t.Fatalf("Parse(%q) ok but its String %q does not parse: %v", input, s.String(), err)
	}
	if again.String() != s.String() {
		t.Fatalf("round trip of %q: %q became %q", input, s.String(), again.String())
	}
	for _, tm := range ts {
		n := s.Next(tm)
		if n.IsZero() || n.Before(tm) || n.Sub(tm) > MaxLength+25*time.Hour {
			t.Fatalf("%q: Next(%v) = %v", input, tm, n)
		}
		if !s.Contains(n) {
			t.Fatalf("%q: Next(%v) = %v is not inside the schedule", input, tm, n)
		}
		if s.Contains(tm) != n.Equal(tm) {
			t.Fatalf("%q: Contains(%v) = %v but Next = %v", input, tm, s.Contains(tm), n)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"Mon-Fri 02:00 3h Europe/Berlin",
		"Sat,Sun 00:00 24h UTC",
		"Mon 01:00 1h; Tue 02:00 2h America/New_York",
		"* 23:59 168h Australia/Lord_Howe",
		"Fri-Mon 2:5 1h30m localtime",
		"Sun 02:30 1h Europe/Berlin",
	} {
		f.Add(seed, int64(1774746000))
	}
	f.Fuzz(func(t *testing.T, input string, unix int64) {
		s, err := Parse(input)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrSyntax", input, err)
			}
			return
		}
		// Keep instants within years where zone rules are meaningful.
		unix = unix % (200 * 365 * 86400)
		checkSchedule(t, input, s, time.Unix(unix, 0), time.Unix(unix, 0).Add(37*time.Minute))
	})
}

func TestCombine(t *testing.T) {
	thu := time.Date(2026, 6, 4, 23, 30, 0, 0, time.UTC) // a Thursday
	tests := []struct {
		name          string
		windows       []string
		flatcarStart  string
		flatcarLength time.Duration
		zone          *time.Location
		open, closed  []time.Time
		n             int
		wantErr       bool
	}{
		{name: "none: any time", open: []time.Time{thu}},
		{name: "REBOOT_WINDOWS", windows: []string{"Thu 23:00 1h", "Mon 02:00 1h UTC"}, n: 2,
			open: []time.Time{thu, time.Date(2026, 6, 1, 2, 30, 0, 0, time.UTC)}, closed: []time.Time{thu.Add(time.Hour)}},
		{name: "Flatcar pair in its zone", flatcarStart: "Thu 23:00", flatcarLength: time.Hour, zone: time.UTC, n: 1,
			open: []time.Time{thu}, closed: []time.Time{thu.Add(-time.Hour)}},
		{name: "both: the union", windows: []string{"Mon 02:00 1h"}, flatcarStart: "Thu 23:00", flatcarLength: time.Hour, zone: time.UTC, n: 2,
			open: []time.Time{thu, time.Date(2026, 6, 1, 2, 30, 0, 0, time.UTC)}},
		{name: "bad window", windows: []string{"Someday 25:00 1h"}, wantErr: true},
		{name: "bad Flatcar length", flatcarStart: "Thu 23:00", flatcarLength: 8 * 24 * time.Hour, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Combine(tt.windows, tt.flatcarStart, tt.flatcarLength, tt.zone)
			if tt.wantErr {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Combine = %v, %v; want ErrSyntax", s, err)
				}
				return
			}
			if err != nil || len(s) != tt.n {
				t.Fatalf("Combine = %v, %v; want %d windows", s, err, tt.n)
			}
			for _, at := range tt.open {
				if !s.Contains(at) {
					t.Errorf("%v: closed at %v", s, at)
				}
			}
			for _, at := range tt.closed {
				if s.Contains(at) {
					t.Errorf("%v: open at %v", s, at)
				}
			}
		})
	}
	// No zone for the Flatcar pair: the process's zone, as locksmithd.
	s, err := Combine(nil, "04:00", time.Hour, nil)
	if err != nil || len(s) != 1 || s[0].Location != time.Local {
		t.Fatalf("Flatcar pair without a zone: %v, %v", s, err)
	}
}
