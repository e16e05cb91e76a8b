package dbusapi

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

// policyFile is the shipped policy the test buses include.
const policyFile = "../../packaging/dbus/com.coreos.update1.conf"

// busConfig is a private bus with the default policy of Debian's system bus
// (/usr/share/dbus-1/system.conf: method calls denied unless a service file punches a hole,
// signals and replies allowed), listening on sock, with the given file included.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
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

// startBus runs Debian's dbus-daemon on a private socket with the policy in include and
// returns the bus address. The bus directory is world-readable so other users can connect.
func startBus(t *testing.T, include string) (string, error) {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("SKIPPING: dbus-daemon is not installed (Debian package dbus; make test installs it)")
	}
	abs, err := filepath.Abs(include)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "dbusapi-bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus"), abs), 0o644); err != nil {
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
		return "", fmt.Errorf("dbus-daemon did not start: %v: %s", rerr, stderr.String())
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

// bus starts a private bus with the shipped policy.
func bus(t *testing.T) string {
	t.Helper()
	addr, err := startBus(t, policyFile)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestPolicyFileLoads has dbus-daemon, the judge, load a bus configuration that includes
// the shipped policy; a broken copy of it must be refused, or the judge judges nothing.
func TestPolicyFileLoads(t *testing.T) {
	if _, err := startBus(t, policyFile); err != nil {
		t.Fatalf("the shipped policy: %v", err)
	}
	good, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.conf")
	if err := os.WriteFile(broken, bytes.Replace(good, []byte("</policy>"), []byte("</polcy>"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := startBus(t, broken); err == nil {
		t.Fatal("dbus-daemon accepted a policy with a mismatched tag")
	}
}

func isRoot() bool { return os.Geteuid() == 0 }
