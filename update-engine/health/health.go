// Package health decides whether a freshly booted USR partition may be marked good.
//
// A Checker waits until the host has been up for MinUptime, then runs every configured check
// once, in order: each command (run directly, without a shell, with its own timeout) must
// exit 0, and each systemd unit must be active (`systemctl is-active --quiet UNIT`). The first
// failure ends the run with an error naming the check and the tail of its output; the caller
// then leaves the partition unmarked, so the boot loader falls back to the old one on the next
// boot. With no checks configured, reaching MinUptime is the whole test (Flatcar marks a boot
// good 45 s after update_engine starts).
//
// Waiting uses one timer from the injected clock; nothing polls.
package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrUnhealthy is wrapped by every failed check.
var ErrUnhealthy = errors.New("health: check failed")

// CheckError names the failed check.
type CheckError struct {
	Check  string // the command line or "unit NAME"
	Output string // the tail of its combined output
	Err    error
}

func (e *CheckError) Error() string {
	s := fmt.Sprintf("health: %s: %v", e.Check, e.Err)
	if e.Output != "" {
		s += ": " + e.Output
	}
	return s
}

func (e *CheckError) Unwrap() []error { return []error{ErrUnhealthy, e.Err} }

// maxOutput bounds the output kept from a failed check.
const maxOutput = 512

// Checker runs the post-boot checks.
type Checker struct {
	Commands  [][]string
	Units     []string
	MinUptime time.Duration
	Timeout   time.Duration // per check; 0 means one minute

	// Systemctl is the systemctl binary; empty means "systemctl" from PATH.
	Systemctl string
	// Uptime returns the time since boot; nil reads /proc/uptime.
	Uptime func() (time.Duration, error)
	// After waits; nil uses time.After.
	After func(time.Duration) <-chan time.Time
	Log   *slog.Logger
}

// Run waits for MinUptime and runs the checks.
func (c *Checker) Run(ctx context.Context) error {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	uptime := c.Uptime
	if uptime == nil {
		uptime = ProcUptime
	}
	up, err := uptime()
	if err != nil {
		return fmt.Errorf("health: reading uptime: %w", err)
	}
	if wait := c.MinUptime - up; wait > 0 {
		log.Info("waiting for the minimum uptime before the health checks", "wait", wait.Round(time.Second))
		after := c.After
		if after == nil {
			after = time.After
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("health: %w", ctx.Err())
		case <-after(wait):
		}
	}
	for _, argv := range c.Commands {
		if len(argv) == 0 {
			continue
		}
		if err := c.run(ctx, strings.Join(argv, " "), argv); err != nil {
			return err
		}
	}
	systemctl := c.Systemctl
	if systemctl == "" {
		systemctl = "systemctl"
	}
	for _, u := range c.Units {
		if err := c.run(ctx, "unit "+u, []string{systemctl, "is-active", "--quiet", u}); err != nil {
			return err
		}
	}
	log.Info("health checks passed", "commands", len(c.Commands), "units", len(c.Units))
	return nil
}

func (c *Checker) run(ctx context.Context, name string, argv []string) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (after %v)", ctx.Err(), timeout)
	}
	o := strings.TrimSpace(out.String())
	if len(o) > maxOutput {
		o = "…" + o[len(o)-maxOutput:]
	}
	return &CheckError{Check: name, Output: o, Err: err}
}

// ProcUptime reads /proc/uptime.
func ProcUptime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	return ParseUptime(string(b))
}

// ParseUptime parses the first field of /proc/uptime ("12345.67 ...").
func ParseUptime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("health: empty uptime")
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil || !(secs >= 0 && secs <= 1e9) { // also refuses NaN
		return 0, fmt.Errorf("health: bad uptime %q", f[0])
	}
	return time.Duration(secs * float64(time.Second)), nil
}
