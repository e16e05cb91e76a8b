// Package dbustest starts private message buses for tests: Debian's dbus-daemon with the
// default policy of a system bus (method calls denied unless a policy file punches a hole,
// signals and replies allowed) plus one included policy file, on a socket in a directory
// others may enter, so tests can also call as another user. Only tests import it.
package dbustest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// config mirrors Debian's /usr/share/dbus-1/system.conf default policy.
const config = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=%s</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>%s</include>
</busconfig>
`

// Start runs dbus-daemon with the policy file include and returns the bus address; the bus
// stops when the test ends. It skips the test when dbus-daemon is not installed and
// returns an error when the daemon refuses the configuration.
func Start(t testing.TB, include string) (string, error) {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("SKIPPING: dbus-daemon is not installed (Debian package dbus; make test installs it)")
	}
	abs, err := filepath.Abs(include)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "dbustest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, config, filepath.Join(dir, "bus"), abs), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+conf, "--print-address", "--nofork")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The address is printed once the bus listens; EOF means the daemon refused to start.
	line, rerr := bufio.NewReader(out).ReadString('\n')
	if rerr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return "", fmt.Errorf("dbustest: dbus-daemon did not start: %v: %s", rerr, stderr.String())
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if testing.Verbose() && stderr.Len() > 0 {
			t.Logf("dbus-daemon: %s", stderr.String())
		}
	})
	return strings.TrimSpace(line), nil
}

// MustStart is Start that fails the test when the bus does not start.
func MustStart(t testing.TB, include string) string {
	t.Helper()
	addr, err := Start(t, include)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
