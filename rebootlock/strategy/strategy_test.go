package strategy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock/window"
)

// fakeClock jumps forward by the requested duration whenever someone waits.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.advance(d)
	t := firedTimer(make(chan time.Time, 1))
	t <- c.Now()
	return t
}

// firedTimer is a timer whose channel holds its time already.
type firedTimer chan time.Time

func (t firedTimer) C() <-chan time.Time { return t }
func (t firedTimer) Stop() bool          { return false }

// journal records what happened, in order, with the fake time.
type journal struct {
	mu     sync.Mutex
	clock  *fakeClock
	events []string
	times  []time.Time
}

func (j *journal) add(ev string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, ev)
	j.times = append(j.times, j.clock.Now())
}

func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.events, " ")
}

// fakeLock fails its first failures Lock calls (all, if -1) and may take time to get the
// slot.
type fakeLock struct {
	j        *journal
	failures int
	takes    []time.Duration // how long the n-th successful Lock waits
	held     bool
	errors   int
	onError  func(n int) // called with the number of errors so far
}

func (l *fakeLock) Lock(ctx context.Context) error {
	if l.failures != 0 {
		l.failures--
		l.errors++
		if l.onError != nil {
			l.onError(l.errors)
		}
		if l.failures >= 0 {
			l.j.add("lock-error")
		}
		return errors.New("etcd unavailable")
	}
	if len(l.takes) > 0 {
		l.j.clock.advance(l.takes[0])
		l.takes = l.takes[1:]
	}
	l.held = true
	l.j.add("lock")
	return nil
}

func (l *fakeLock) Unlock(ctx context.Context) error {
	l.held = false
	l.j.add("unlock")
	return nil
}

type recorder struct {
	j    *journal
	lock *fakeLock
	err  error
}

func (r *recorder) Reboot(ctx context.Context) error {
	if r.lock != nil && !r.lock.held {
		r.j.add("REBOOT-WITHOUT-LOCK")
	} else {
		r.j.add("reboot")
	}
	return r.err
}

func TestParseStrategy(t *testing.T) {
	tests := []struct {
		in      string
		want    Strategy
		wantErr bool
	}{
		{in: "", want: Reboot},
		{in: "etcd-lock", want: EtcdLock},
		{in: "fleetlock", want: FleetLock},
		{in: "reboot", want: Reboot},
		{in: "off", want: Off},
		{in: "best-effort", want: BestEffort},
		{in: "besteffort", wantErr: true},
		{in: "ETCD-LOCK", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Parse(%q) = %q, %v", tt.in, got, err)
			}
		})
	}
}

func TestCoordinator(t *testing.T) {
	// 2026-11-25 is a Wednesday; the window is 02:00-03:00 UTC every day.
	sched, err := window.Parse("* 02:00 1h UTC")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		strategy  Strategy
		windows   window.Schedule
		failures  int // lock errors before success; -1: never succeeds
		takes     []time.Duration
		rebootErr error
		wantErr   string
		want      string
		// wantRebootAt, when set, is when the reboot must happen (fake time).
		wantRebootAt time.Time
	}{
		{name: "off", strategy: Off, wantErr: "reboots are off", want: ""},
		{name: "reboot waits for the window", strategy: Reboot, windows: sched, want: "reboot",
			wantRebootAt: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)},
		{name: "reboot without windows", strategy: Reboot, want: "reboot", wantRebootAt: start},
		{name: "etcd-lock retries errors", strategy: EtcdLock, windows: sched, failures: 3,
			want: "lock-error lock-error lock-error lock reboot"},
		// The lock fails for ever; the test gives up after 50 attempts.
		{name: "etcd-lock never locked never reboots", strategy: EtcdLock, failures: -1,
			wantErr: "taking the reboot lock"},
		{name: "fleetlock never locked never reboots", strategy: FleetLock, windows: sched, failures: -1,
			wantErr: "taking the reboot lock"},
		{name: "window closed while locking", strategy: EtcdLock, windows: sched, takes: []time.Duration{2 * time.Hour, time.Minute},
			want: "lock unlock lock reboot", wantRebootAt: time.Date(2026, 11, 27, 2, 1, 0, 0, time.UTC)},
		{name: "failed reboot releases the slot", strategy: EtcdLock, rebootErr: errors.New("no systemd"),
			want: "lock reboot unlock", wantErr: "no systemd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: start}
			j := &journal{clock: clock}
			lock := &fakeLock{j: j, failures: tt.failures, takes: tt.takes}
			rec := &recorder{j: j, err: tt.rebootErr}
			if tt.strategy == EtcdLock || tt.strategy == FleetLock {
				rec.lock = lock
			}
			c, err := New(Config{
				Strategy: tt.strategy, Windows: tt.windows, Lock: lock, Rebooter: rec,
				Logger: slog.New(slog.DiscardHandler), Clock: clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			lock.onError = func(n int) {
				if n == 50 {
					cancel()
				}
			}
			err = c.Reboot(ctx)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Reboot: %v, want error %q", err, tt.wantErr)
			}
			got := j.String()
			if tt.failures == -1 {
				if strings.Contains(got, "reboot") || strings.Contains(got, "REBOOT") {
					t.Fatalf("rebooted without the lock: %s", got)
				}
				if lock.errors != 50 {
					t.Fatalf("%d lock attempts, want 50 (it gave up by itself)", lock.errors)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
			if !tt.wantRebootAt.IsZero() {
				at := j.times[len(j.times)-1]
				if !at.Equal(tt.wantRebootAt) {
					t.Fatalf("rebooted at %v, want %v", at, tt.wantRebootAt)
				}
			}
			if tt.windows != nil {
				for i, ev := range j.events {
					if ev == "reboot" && !tt.windows.Contains(j.times[i]) {
						t.Fatalf("rebooted outside the window at %v", j.times[i])
					}
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		in   Strategy
		etcd bool
		want Strategy
	}{
		{in: BestEffort, etcd: true, want: EtcdLock},
		{in: BestEffort, etcd: false, want: Reboot},
		{in: Reboot, etcd: true, want: Reboot},
		{in: FleetLock, etcd: true, want: FleetLock},
		{in: EtcdLock, etcd: false, want: EtcdLock}, // config.Validate refuses this one
		{in: Off, etcd: true, want: Off},
	}
	for _, tt := range tests {
		if got := Resolve(tt.in, tt.etcd); got != tt.want {
			t.Errorf("Resolve(%s, etcd=%v) = %s, want %s", tt.in, tt.etcd, got, tt.want)
		}
	}
	if _, err := New(Config{Strategy: BestEffort, Rebooter: &recorder{}}); err == nil {
		t.Error("New accepted an unresolved best-effort")
	}
}

// fakeHook fails its first failures runs and journals each run, noting whether the lock
// was held while it ran.
type fakeHook struct {
	j        *journal
	lock     *fakeLock // nil: no lock to check
	failures int
}

func (h *fakeHook) Run(ctx context.Context) error {
	if h.lock != nil && !h.lock.held {
		h.j.add("HOOK-WITHOUT-LOCK")
	}
	if h.failures > 0 {
		h.failures--
		h.j.add("hook-failed")
		return errors.New("kubectl drain: cannot evict pod")
	}
	h.j.add("hook")
	return nil
}

// TestPreRebootHook: a failing pre-reboot hook postpones the reboot with the slot released,
// and the cycle is tried again after a backoff; a hook that succeeds runs with the slot held
// right before the reboot.
func TestPreRebootHook(t *testing.T) {
	tests := []struct {
		name      string
		strategy  Strategy
		failures  int
		want      string
		postponed int
	}{
		{name: "etcd-lock, hook succeeds", strategy: EtcdLock, want: "lock hook reboot"},
		{name: "etcd-lock, hook fails twice", strategy: EtcdLock, failures: 2,
			want: "lock hook-failed unlock lock hook-failed unlock lock hook reboot", postponed: 2},
		{name: "reboot, hook fails once", strategy: Reboot, failures: 1, want: "hook-failed hook reboot", postponed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
			clock := &fakeClock{now: start}
			j := &journal{clock: clock}
			lock := &fakeLock{j: j}
			rec := &recorder{j: j}
			h := &fakeHook{j: j, failures: tt.failures}
			if tt.strategy == EtcdLock {
				rec.lock, h.lock = lock, lock
			}
			var postponed []error
			c, err := New(Config{Strategy: tt.strategy, Lock: lock, Rebooter: rec, PreReboot: h,
				Postponed: func(err error) {
					if lock.held {
						j.add("POSTPONED-WITH-LOCK")
					}
					postponed = append(postponed, err)
				},
				Logger: slog.New(slog.DiscardHandler), Clock: clock, MinBackoff: time.Minute, MaxBackoff: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Reboot(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := j.String(); got != tt.want {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
			if len(postponed) != tt.postponed {
				t.Fatalf("told of %d postponements, want %d", len(postponed), tt.postponed)
			}
			for _, err := range postponed {
				if !strings.Contains(err.Error(), "cannot evict pod") {
					t.Errorf("postponed with %v, want the hook's error", err)
				}
			}
			if tt.postponed > 0 && !clock.Now().After(start) {
				t.Error("retried without a backoff")
			}
		})
	}
}

// TestPreRebootHookStopped: when the daemon stops during the hook, the slot is given back.
func TestPreRebootHookStopped(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	j := &journal{clock: clock}
	lock := &fakeLock{j: j}
	ctx, cancel := context.WithCancel(t.Context())
	h := hookFunc(func(context.Context) error { cancel(); return context.Canceled })
	c, err := New(Config{Strategy: EtcdLock, Lock: lock, Rebooter: &recorder{j: j, lock: lock}, PreReboot: h,
		Logger: slog.New(slog.DiscardHandler), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reboot(ctx); err == nil {
		t.Fatal("Reboot succeeded though the daemon stopped during the hook")
	}
	if got := j.String(); got != "lock unlock" {
		t.Fatalf("events %q, want \"lock unlock\"", got)
	}
}

type hookFunc func(context.Context) error

func (f hookFunc) Run(ctx context.Context) error { return f(ctx) }

// TestRelease: the Coordinator is the daemon's Rebooter; Release gives the slot back under
// the locking strategies and is a no-op otherwise.
func TestRelease(t *testing.T) {
	for _, tt := range []struct {
		strategy Strategy
		want     string
	}{
		{EtcdLock, "unlock"},
		{FleetLock, "unlock"},
		{Reboot, ""},
		{Off, ""},
	} {
		t.Run(string(tt.strategy), func(t *testing.T) {
			j := &journal{clock: &fakeClock{}}
			c, err := New(Config{Strategy: tt.strategy, Lock: &fakeLock{j: j}, Rebooter: Command{"true"}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := j.String(); got != tt.want {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
		})
	}
	failing := &failingUnlock{}
	c, _ := New(Config{Strategy: EtcdLock, Lock: failing, Rebooter: Command{"true"}, Logger: slog.New(slog.DiscardHandler)})
	if err := c.Release(t.Context()); err == nil || !strings.Contains(err.Error(), "etcd down") {
		t.Fatalf("Release with a failing unlock: %v", err)
	}
}

type failingUnlock struct{}

func (failingUnlock) Lock(context.Context) error   { return nil }
func (failingUnlock) Unlock(context.Context) error { return errors.New("etcd down") }

func TestNewChecks(t *testing.T) {
	r := Command{"true"}
	for name, cfg := range map[string]Config{
		"etcd-lock without lock": {Strategy: EtcdLock, Rebooter: r},
		"fleetlock without lock": {Strategy: FleetLock, Rebooter: r},
		"no rebooter":            {Strategy: Reboot},
		"unknown strategy":       {Strategy: "sometimes", Rebooter: r},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCommandRebooter(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "rebooted")
	ok := Command{"sh", "-c", fmt.Sprintf("echo rebooted >> %q", record)}
	if err := ok.Reboot(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(record); err != nil || string(b) != "rebooted\n" {
		t.Fatalf("record %q, %v", b, err)
	}
	bad := Command{"sh", "-c", "echo access denied >&2; exit 3"}
	if err := bad.Reboot(t.Context()); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("failing command: %v", err)
	}
	if err := (Command{}).Reboot(t.Context()); err == nil {
		t.Fatal("empty command: no error")
	}
	if got := Systemctl(); strings.Join(got, " ") != "systemctl reboot" {
		t.Fatalf("Systemctl() = %v", got)
	}
}
