package sdnotify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen plays systemd's side: a unixgram socket named in NOTIFY_SOCKET. The directory is
// short because a socket path holds at most 107 bytes.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

// next reads one datagram, failing the test when none comes within a generous bound (a
// datagram that is due arrives at once; the bound only keeps a broken build from hanging).
func next(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading a notification: %v", err)
	}
	return string(buf[:n])
}

// queued returns a datagram already waiting on c, or "" when none is: a non-blocking read,
// so "nothing was sent" is checked without waiting for something that should not come.
func queued(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
	}); err != nil {
		t.Fatal(err)
	}
	if errors.Is(rerr, syscall.EAGAIN) {
		return ""
	}
	if rerr != nil {
		t.Fatalf("reading a queued notification: %v", rerr)
	}
	return string(buf[:n])
}

func TestReadyAndStopping(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", "")
	n, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := next(t, c); got != "READY=1" {
		t.Errorf("first notification %q, want READY=1", got)
	}
	if err := n.Stopping(); err != nil {
		t.Fatal(err)
	}
	if got := next(t, c); got != "STOPPING=1" {
		t.Errorf("second notification %q, want STOPPING=1", got)
	}
	if got := queued(t, c); got != "" {
		t.Errorf("unexpected notification %q", got)
	}
}

func TestOutsideSystemdDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	n, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err != nil {
		t.Errorf("Ready without NOTIFY_SOCKET: %v", err)
	}
	if n.WatchdogInterval() != 0 {
		t.Errorf("watchdog interval %v without WATCHDOG_USEC", n.WatchdogInterval())
	}
	// Without a watchdog Watchdog returns at once, before calling the check.
	n.Watchdog(context.Background(), func(context.Context) error {
		t.Error("health check called without a watchdog")
		return nil
	})
}

func TestSendFailureIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("WATCHDOG_USEC", "")
	n, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	err = n.Ready()
	if err == nil || !strings.HasPrefix(err.Error(), "sdnotify: sending READY=1") {
		t.Errorf("Ready to a missing socket: %v, want an sdnotify error", err)
	}
}

func TestBadWatchdogSetting(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "soon")
	if _, err := New(nil); err == nil || !strings.HasPrefix(err.Error(), "sdnotify: ") {
		t.Errorf("New with WATCHDOG_USEC=soon: %v, want an sdnotify error", err)
	}
}

// TestWatchdogOnlyWhileHealthy drives the health check by hand: each call reports itself on
// called and returns what the test sends on results. A call that starts proves the previous
// one's outcome was handled, so the absence of WATCHDOG=1 after a failed check is read
// without waiting.
func TestWatchdogOnlyWhileHealthy(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000") // 20 ms: a tick every 10 ms
	n, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n.WatchdogInterval(), 20*time.Millisecond; got != want {
		t.Fatalf("watchdog interval %v, want %v", got, want)
	}
	called := make(chan context.Context)
	results := make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Watchdog(ctx, func(hctx context.Context) error {
			select {
			case called <- hctx:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case err := <-results:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	defer func() { cancel(); <-done }()

	hctx := <-called
	if _, ok := hctx.Deadline(); !ok {
		t.Error("the health check's context has no deadline")
	}
	if got := queued(t, c); got != "" {
		t.Errorf("notification %q before the first check passed", got)
	}
	results <- nil
	if got := next(t, c); got != "WATCHDOG=1" {
		t.Fatalf("after a passing check got %q, want WATCHDOG=1", got)
	}

	<-called
	results <- errors.New("store unavailable")
	<-called // the failed check's outcome is handled
	if got := queued(t, c); got != "" {
		t.Errorf("after a failing check got %q, want nothing", got)
	}
	results <- errors.New("store still unavailable")
	<-called
	if got := queued(t, c); got != "" {
		t.Errorf("after a second failing check got %q, want nothing", got)
	}
	results <- nil
	if got := next(t, c); got != "WATCHDOG=1" {
		t.Fatalf("after health came back got %q, want WATCHDOG=1", got)
	}

	cancel()
	<-done
}
