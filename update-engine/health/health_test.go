package health

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSystemctl writes a script that plays systemctl: units listed in active are active.
func fakeSystemctl(t *testing.T, active ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "systemctl")
	script := "#!/bin/sh\n# is-active --quiet UNIT\ncase \"$3\" in\n"
	for _, u := range active {
		script += "  " + u + ") exit 0;;\n"
	}
	script += "  *) echo \"$3 inactive\"; exit 3;;\nesac\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	systemctl := fakeSystemctl(t, "sshd.service", "containerd.service")
	tests := []struct {
		name     string
		commands [][]string
		units    []string
		timeout  time.Duration
		wantFail string // substring of the error; "" means healthy
	}{
		{name: "nothing configured"},
		{name: "commands pass", commands: [][]string{{"true"}, {"test", "-d", "/"}}},
		{name: "command fails", commands: [][]string{{"true"}, {"sh", "-c", "echo broken >&2; exit 4"}}, wantFail: "broken"},
		{name: "missing command", commands: [][]string{{"/nonexistent/check"}}, wantFail: "/nonexistent/check"},
		{name: "units active", units: []string{"sshd.service", "containerd.service"}},
		{name: "unit inactive", units: []string{"sshd.service", "kubelet.service"}, wantFail: "unit kubelet.service"},
		{name: "timeout", commands: [][]string{{"sleep", "10"}}, timeout: 100 * time.Millisecond, wantFail: "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{
				Commands: tt.commands, Units: tt.units, Timeout: tt.timeout, Systemctl: systemctl,
				Uptime: func() (time.Duration, error) { return time.Hour, nil },
			}
			err := c.Run(context.Background())
			if tt.wantFail == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), tt.wantFail) {
				t.Fatalf("Run = %v, want an unhealthy error containing %q", err, tt.wantFail)
			}
		})
	}
}

func TestMinUptime(t *testing.T) {
	var waited time.Duration
	fire := make(chan time.Time, 1)
	c := &Checker{
		MinUptime: 45 * time.Second,
		Uptime:    func() (time.Duration, error) { return 10 * time.Second, nil },
		After: func(d time.Duration) <-chan time.Time {
			waited = d
			fire <- time.Time{}
			return fire
		},
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited != 35*time.Second {
		t.Errorf("waited %v, want 35s", waited)
	}

	// Cancelled while waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.After = func(time.Duration) <-chan time.Time { return nil }
	if err := c.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v", err)
	}
}

func TestParseUptime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"350735.47 234388.90\n", 350735470 * time.Millisecond, true},
		{"0.00 0.00", 0, true},
		{"", 0, false},
		{"abc 1", 0, false},
		{"-5 1", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseUptime(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (got-tt.want).Abs() > time.Millisecond) {
			t.Errorf("ParseUptime(%q) = %v, %v", tt.in, got, err)
		}
	}
	if _, err := ProcUptime(); err != nil {
		t.Errorf("ProcUptime on this host: %v", err)
	}
}
