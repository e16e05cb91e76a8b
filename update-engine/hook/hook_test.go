package hook

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// alive reports whether pid is a process that has not exited (a zombie has exited).
func alive(t *testing.T, pid int) bool {
	t.Helper()
	// SIGKILL is delivered when the process is next scheduled, so a killed process may still
	// read as running for a moment: give it until the deadline to become a zombie or vanish.
	// A process nobody killed stays alive, and the test fails.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if !running(pid) {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...; comm may hold spaces, so look after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the hook did not record its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name       string
		script     string // sh -c; $1 is a file to write a background child's pid to
		timeout    time.Duration
		wantErr    error // nil: success; errAny: any error
		wantOutput string
		child      bool // the script starts a background child that must not survive
	}{
		{name: "success", script: `echo drained; echo warning >&2`, timeout: time.Minute, wantOutput: "drained\nwarning\n"},
		{name: "failure", script: `echo cannot evict pod >&2; exit 3`, timeout: time.Minute, wantErr: errAny, wantOutput: "cannot evict pod\n"},
		{name: "success leaves no child", script: `sleep 1000 & echo $! > "$1"; echo ok`, timeout: time.Minute, wantOutput: "ok\n", child: true},
		{name: "timeout kills the process group", script: `sleep 1000 & echo $! > "$1"; echo started; sleep 1000`,
			timeout: 200 * time.Millisecond, wantErr: ErrTimeout, wantOutput: "started\n", child: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "child.pid")
			var logs bytes.Buffer
			c := Command{Name: "pre-reboot", Argv: []string{"sh", "-c", tt.script, "hook", pidFile}, Timeout: tt.timeout,
				Log: slog.New(slog.NewTextHandler(&logs, nil))}
			res, err := c.Exec(t.Context())
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Exec = %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatal("Exec succeeded")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("Exec = %v, want %v", err, tt.wantErr)
			}
			if string(res.Output) != tt.wantOutput {
				t.Errorf("output %q, want %q", res.Output, tt.wantOutput)
			}
			if !strings.Contains(logs.String(), "hook=pre-reboot") {
				t.Errorf("no log line for the run:\n%s", logs.String())
			}
			if tt.child {
				if pid := readPID(t, pidFile); alive(t, pid) {
					killPID(pid)
					t.Errorf("the hook's child %d outlived it", pid)
				}
			}
			if tt.wantErr == ErrTimeout && res.Duration > 30*time.Second {
				t.Errorf("a 200ms hook ran %s", res.Duration)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestOutputIsBounded(t *testing.T) {
	c := Command{Name: "post-reboot", Argv: []string{"sh", "-c", `i=0; while [ $i -lt 1000 ]; do echo 0123456789; i=$((i+1)); done`}, Timeout: time.Minute}
	res, err := c.Exec(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) != MaxOutput || res.Truncated != 11000-MaxOutput {
		t.Errorf("kept %d bytes and dropped %d, want %d and %d", len(res.Output), res.Truncated, MaxOutput, 11000-MaxOutput)
	}
}

func TestCanceledContextEndsTheHook(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := Command{Name: "pre-reboot", Argv: []string{"sleep", "1000"}, Timeout: time.Hour}
	err := c.Run(ctx)
	if err == nil || errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want the context's cancellation", err)
	}
}

func TestBadCommands(t *testing.T) {
	for _, c := range []Command{
		{Name: "empty", Timeout: time.Second},
		{Name: "no timeout", Argv: []string{"true"}},
		{Name: "missing program", Argv: []string{filepath.Join(t.TempDir(), "nope")}, Timeout: time.Second},
	} {
		if err := c.Run(t.Context()); err == nil {
			t.Errorf("%s: Run succeeded", c.Name)
		}
	}
}

func killPID(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
