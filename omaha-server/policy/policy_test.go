package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
)

func v(t *testing.T, s string) omaha.Version {
	t.Helper()
	ver, err := omaha.ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return ver
}

func vp(t *testing.T, s string) *omaha.Version {
	ver := v(t, s)
	return &ver
}

func pct(n int) *int { return &n }

func TestDecide(t *testing.T) {
	// Wednesday 2026-11-25 10:00 UTC is 11:00 in Berlin.
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	all := []string{"100.0.0", "200.0.0", "300.0.0", "400.0.0"}
	tests := []struct {
		name     string
		policy   Policy
		current  string
		channel  string // "" for none
		counters Counters
		paused   bool
		halted   bool
		disabled bool
		want     string // version offered, or "hold:<reason>"
	}{
		{name: "plain offer", current: "100.0.0", channel: "400.0.0", want: "400.0.0"},
		{name: "up to date", current: "400.0.0", channel: "400.0.0", want: "hold:up-to-date"},
		{name: "newer than channel", current: "500.0.0", channel: "400.0.0", want: "hold:up-to-date"},
		{name: "no channel release", current: "100.0.0", want: "hold:no-release"},
		{name: "updates off", current: "100.0.0", channel: "400.0.0", disabled: true, want: "hold:updates-disabled"},
		{name: "paused", current: "100.0.0", channel: "400.0.0", paused: true, want: "hold:paused"},
		{name: "halted", current: "100.0.0", channel: "400.0.0", halted: true, want: "hold:halted"},
		{name: "floor first", policy: Policy{Floors: []string{"200.0.0", "300.0.0"}}, current: "100.0.0", channel: "400.0.0", want: "200.0.0"},
		{name: "next floor", policy: Policy{Floors: []string{"200.0.0", "300.0.0"}}, current: "200.0.0", channel: "400.0.0", want: "300.0.0"},
		{name: "past floors", policy: Policy{Floors: []string{"200.0.0"}}, current: "300.0.0", channel: "400.0.0", want: "400.0.0"},
		{name: "floor above target ignored", policy: Policy{Floors: []string{"500.0.0"}}, current: "100.0.0", channel: "400.0.0", want: "400.0.0"},
		{name: "blocked target falls back", policy: Policy{Blocked: []string{"400.0.0"}}, current: "100.0.0", channel: "400.0.0", want: "300.0.0"},
		{name: "host on blocked version moves on", policy: Policy{Blocked: []string{"200.0.0"}}, current: "200.0.0", channel: "400.0.0", want: "400.0.0"},
		{name: "blocked floor skipped", policy: Policy{Floors: []string{"200.0.0"}, Blocked: []string{"200.0.0"}}, current: "100.0.0", channel: "400.0.0", want: "400.0.0"},
		{name: "all blocked", policy: Policy{Blocked: all}, current: "50.0.0", channel: "400.0.0", want: "hold:all-blocked"},
		{name: "pinned", policy: Policy{Pin: "300.0.0"}, current: "100.0.0", channel: "400.0.0", want: "300.0.0"},
		{name: "pinned host at pin", policy: Policy{Pin: "300.0.0"}, current: "300.0.0", channel: "400.0.0", want: "hold:up-to-date"},
		{name: "pin missing", policy: Policy{Pin: "350.0.0"}, current: "100.0.0", channel: "400.0.0", want: "hold:pinned-release-missing"},
		{name: "inside window", policy: Policy{Windows: []string{"Mon-Fri 09:00 8h Europe/Berlin"}}, current: "100.0.0", channel: "400.0.0", want: "400.0.0"},
		{name: "outside window", policy: Policy{Windows: []string{"Sat,Sun 00:00 24h Europe/Berlin"}}, current: "100.0.0", channel: "400.0.0", want: "hold:outside-window"},
		{name: "zero percent", policy: Policy{Percent: pct(0)}, current: "100.0.0", channel: "400.0.0", want: "hold:not-in-cohort"},
		{name: "period limit", policy: Policy{MaxPerPeriod: 2, Period: Duration(time.Hour)}, current: "100.0.0", channel: "400.0.0", counters: Counters{GrantedInPeriod: 2}, want: "hold:period-limit"},
		{name: "below period limit", policy: Policy{MaxPerPeriod: 2, Period: Duration(time.Hour)}, current: "100.0.0", channel: "400.0.0", counters: Counters{GrantedInPeriod: 1}, want: "400.0.0"},
		{name: "in flight limit", policy: Policy{MaxInFlight: 3}, current: "100.0.0", channel: "400.0.0", counters: Counters{InFlight: 3}, want: "hold:in-flight-limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Validate(); err != nil {
				t.Fatalf("policy invalid: %v", err)
			}
			in := Input{
				Now: now, MachineID: "m1", Current: v(t, tt.current),
				UpdatesEnabled: !tt.disabled, Paused: tt.paused, Halted: tt.halted,
				Counters: tt.counters,
			}
			for _, a := range all {
				in.Available = append(in.Available, v(t, a))
			}
			if tt.channel != "" {
				in.Channel = vp(t, tt.channel)
			}
			d := Decide(tt.policy, in)
			got := "hold:" + string(d.Reason)
			if d.Offer {
				got = d.Version.String()
			}
			if got != tt.want {
				t.Errorf("Decide = %s, want %s", got, tt.want)
			}
		})
	}
}

// Raising the percentage never drops a host that was already in the cohort, and the cohort
// is about the size asked for.
func TestCohortMonotonicAndFair(t *testing.T) {
	const hosts = 20000
	prev := map[string]bool{}
	for _, p := range []int{0, 1, 10, 25, 50, 90, 100} {
		in := 0
		cur := map[string]bool{}
		for i := range hosts {
			id := fmt.Sprintf("machine-%05d", i)
			if InCohort(id, "4081.2.0", p) {
				cur[id] = true
				in++
			}
		}
		for id := range prev {
			if !cur[id] {
				t.Fatalf("raising to %d%% dropped %s", p, id)
			}
		}
		want := hosts * p / 100
		if diff := in - want; diff > hosts/100 || diff < -hosts/100 {
			t.Errorf("%d%%: %d hosts in cohort, want about %d", p, in, want)
		}
		prev = cur
	}
	// Different releases pick different cohorts.
	same := 0
	for i := range 1000 {
		id := fmt.Sprintf("machine-%05d", i)
		if InCohort(id, "1.0.0", 50) == InCohort(id, "2.0.0", 50) {
			same++
		}
	}
	if same > 600 || same < 400 {
		t.Errorf("cohorts of two releases agree on %d of 1000 hosts; want about 500", same)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   string // substring of the error; "" for valid
	}{
		{name: "zero", policy: Policy{}},
		{name: "full", policy: Policy{Percent: pct(10), MaxPerPeriod: 10, Period: Duration(time.Hour), MaxInFlight: 5,
			Timeout: Duration(time.Hour), Windows: []string{"Mon-Fri 09:00 8h Europe/Berlin"}, HaltFailures: 2, HaltOf: 5,
			Floors: []string{"1.0.0"}, Blocked: []string{"1.1.0"}, Pin: "1.2.0"}},
		{name: "percent high", policy: Policy{Percent: pct(101)}, want: "percent 101"},
		{name: "percent negative", policy: Policy{Percent: pct(-1)}, want: "percent -1"},
		{name: "max without period", policy: Policy{MaxPerPeriod: 3}, want: "needs a period"},
		{name: "period without max", policy: Policy{Period: Duration(time.Hour)}, want: "without a max"},
		{name: "negative in flight", policy: Policy{MaxInFlight: -1}, want: "max in flight -1"},
		{name: "timeout tiny", policy: Policy{Timeout: Duration(time.Second)}, want: "timeout 1s"},
		{name: "bad window", policy: Policy{Windows: []string{"Funday 09:00 8h"}}, want: "window"},
		{name: "bad zone", policy: Policy{Windows: []string{"Mon 09:00 8h Mars/Olympus"}}, want: "window"},
		{name: "halt of below failures", policy: Policy{HaltFailures: 3, HaltOf: 2}, want: "at least the failure count"},
		{name: "halt of alone", policy: Policy{HaltOf: 2}, want: "without halt-failures"},
		{name: "bad floor", policy: Policy{Floors: []string{"x.y"}}, want: "floor version"},
		{name: "pin blocked", policy: Policy{Pin: "1.0.0", Blocked: []string{"1.0.0"}}, want: "also blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestHalt(t *testing.T) {
	p := Policy{HaltFailures: 2, HaltOf: 4}
	tests := []struct {
		name   string
		recent []Outcome
		want   bool
	}{
		{"none", nil, false},
		{"one failure", []Outcome{Failed, Succeeded, Succeeded}, false},
		{"two failures", []Outcome{Failed, Succeeded, RolledBack}, true},
		{"timeout counts", []Outcome{TimedOut, Succeeded, Succeeded, Failed}, true},
		{"old failures fall out", []Outcome{Succeeded, Succeeded, Succeeded, Failed, Failed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Halt(p, "4081.2.0", tt.recent)
			if got != tt.want {
				t.Fatalf("Halt = %v (%s), want %v", got, reason, tt.want)
			}
			if got && !strings.Contains(reason, "4081.2.0") {
				t.Errorf("reason %q does not name the release", reason)
			}
		})
	}
	if got, _ := Halt(Policy{}, "1", []Outcome{Failed, Failed}); got {
		t.Error("a policy without a threshold halted")
	}
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || time.Duration(d) != 90*time.Minute {
		t.Fatalf("UnmarshalText = %v, %v", time.Duration(d), err)
	}
	if err := d.UnmarshalText([]byte("soon")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("UnmarshalText(soon) = %v", err)
	}
	b, _ := Duration(90 * time.Minute).MarshalText()
	if string(b) != "1h30m0s" {
		t.Fatalf("MarshalText = %s", b)
	}
}
