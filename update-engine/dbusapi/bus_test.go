package dbusapi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/update-engine/dbusapi/dbustest"
)

// policyFile is the shipped policy the test buses include.
const policyFile = "../../packaging/dbus/com.coreos.update1.conf"

// bus starts a private bus with the shipped policy.
func bus(t *testing.T) string {
	t.Helper()
	return dbustest.MustStart(t, policyFile)
}

// TestPolicyFileLoads has dbus-daemon, the judge, load a bus configuration that includes
// the shipped policy; a broken copy of it must be refused, or the judge judges nothing.
func TestPolicyFileLoads(t *testing.T) {
	if _, err := dbustest.Start(t, policyFile); err != nil {
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
	if _, err := dbustest.Start(t, broken); err == nil {
		t.Fatal("dbus-daemon accepted a policy with a mismatched tag")
	}
}

func isRoot() bool { return os.Geteuid() == 0 }
