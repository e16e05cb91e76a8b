// Package hook runs the commands an operator hangs around a reboot: a pre-reboot hook (drain
// a Kubernetes node, stop a database) and a post-reboot hook (uncordon the node once the
// update is confirmed). Flatcar has no such hooks; they are Switchyard's, in the spirit of
// FLUO's before- and after-reboot annotations and kured's drain.
//
// # Running a hook
//
// A Command runs without a shell (argv as given) in a process group of its own. It ends
// when its first process exits, when its Timeout passes, or when the caller's context ends;
// in every case the whole group is then killed with SIGKILL, so a hook leaves no children
// behind (a process that leaves the group with setsid escapes this; its output pipe is then
// closed after OutputGrace). Stdout and stderr are captured together, the first MaxOutput
// bytes kept, the rest counted and dropped, and logged in one line per run.
//
// A hook fails when it cannot start, exits non-zero, or times out (ErrTimeout). What a
// failure means is the caller's business: the reboot strategy postpones the reboot after a
// failed pre-reboot hook; the engine reports a failed post-reboot hook and goes on.
//
// Only cmd/update-engine builds Commands; rebootlock/strategy and update-engine/engine see
// them through their own one-method Hook interfaces.
package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// MaxOutput bounds the captured output of one run.
const MaxOutput = 4 << 10

// OutputGrace is how long the output pipe may stay open after the process group was killed
// (held by a process that left the group) before it is closed.
const OutputGrace = time.Second

// ErrTimeout is returned when a hook ran longer than its Timeout.
var ErrTimeout = errors.New("hook: timed out")

// Command is one hook.
type Command struct {
	Name    string   // for logs and errors: "pre-reboot", "post-reboot"
	Argv    []string // the program and its arguments; no shell
	Timeout time.Duration
	Log     *slog.Logger // nil: no log
}

// Result is what one run produced.
type Result struct {
	Output    []byte // the first MaxOutput bytes of stdout and stderr
	Truncated int64  // bytes dropped beyond MaxOutput
	Duration  time.Duration
}

// Run runs the hook once and returns nil when it exited 0 within its timeout.
func (c Command) Run(ctx context.Context) error {
	_, err := c.Exec(ctx)
	return err
}

// Exec runs the hook once and returns its output with the error.
func (c Command) Exec(ctx context.Context) (Result, error) {
	var res Result
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return res, fmt.Errorf("hook: %s: empty command", c.Name)
	}
	if c.Timeout <= 0 {
		return res, fmt.Errorf("hook: %s: the timeout must be positive", c.Name)
	}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	r, w, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("hook: %s: %w", c.Name, err)
	}
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	// An *os.File is handed to the child as it is: Wait then returns when the first process
	// exits, not when the last holder of the pipe closes it.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return res, fmt.Errorf("hook: %s: %w", c.Name, err)
	}
	w.Close()
	pgid := cmd.Process.Pid

	out := &capture{max: MaxOutput}
	read := make(chan struct{})
	go func() {
		io.Copy(out, r)
		close(read)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var werr error
	timedOut := false
	select {
	case werr = <-waited:
	case <-tctx.Done():
		timedOut = ctx.Err() == nil
		syscall.Kill(-pgid, syscall.SIGKILL)
		werr = <-waited
	}
	// Whatever the first process left running in its group goes with it.
	syscall.Kill(-pgid, syscall.SIGKILL)
	grace := time.NewTimer(OutputGrace)
	select {
	case <-read:
	case <-grace.C:
		r.Close() // unblocks the copy
		<-read
	}
	grace.Stop()
	r.Close()

	res = Result{Output: out.buf.Bytes(), Truncated: out.dropped, Duration: time.Since(start)}
	switch {
	case timedOut:
		err = fmt.Errorf("%w: %s after %s", ErrTimeout, c.Name, c.Timeout)
	case ctx.Err() != nil:
		err = fmt.Errorf("hook: %s: %w", c.Name, ctx.Err())
	case werr != nil:
		err = fmt.Errorf("hook: %s: %s: %w", c.Name, c.Argv[0], werr)
	}
	attrs := []any{"hook", c.Name, "command", strings.Join(c.Argv, " "), "duration", res.Duration.Round(time.Millisecond),
		"output", string(res.Output)}
	if res.Truncated > 0 {
		attrs = append(attrs, "output_dropped_bytes", res.Truncated)
	}
	if err != nil {
		log.Warn("hook failed", append(attrs, "err", err)...)
		return res, err
	}
	log.Info("hook succeeded", attrs...)
	return res, nil
}

// capture keeps the first max bytes written to it and counts the rest.
type capture struct {
	buf     bytes.Buffer
	max     int
	dropped int64
}

func (c *capture) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.max - c.buf.Len(); room > 0 {
		k := min(room, len(p))
		c.buf.Write(p[:k])
		p = p[k:]
	}
	c.dropped += int64(len(p))
	return n, nil
}
