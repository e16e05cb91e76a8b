// Package sdnotifytest plays systemd's side of sd_notify for tests of the daemons that
// notify it (package sdnotify): a unixgram socket named in NOTIFY_SOCKET, and the watchdog
// interval in WATCHDOG_USEC. Only tests import it.
package sdnotifytest

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Listen binds the socket, sets NOTIFY_SOCKET (and WATCHDOG_USEC to watchdog, when not
// zero) for the test, and returns a function that reads the next notification. The socket's
// directory is short, because a socket path holds at most 107 bytes.
func Listen(t *testing.T, watchdog time.Duration) (next func() string) {
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
	if watchdog > 0 {
		t.Setenv("WATCHDOG_USEC", strconv.FormatInt(watchdog.Microseconds(), 10))
	}
	return func() string {
		t.Helper()
		// A bound for a broken build only: a datagram that is due arrives at once.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
		return string(buf[:n])
	}
}
