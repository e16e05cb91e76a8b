package vmtest

import (
	"flag"
	"testing"

	"github.com/switchyard-os/switchyard/testimages/qemu"
)

var useKVM = flag.Bool("vmtest.kvm", false, "run the VMs under KVM when /dev/kvm opens (TCG otherwise)")

// newEnv is New with the command-line choices of this test binary applied.
func newEnv(t *testing.T) *Env {
	t.Helper()
	env := New(t)
	env.KVM = *useKVM && qemu.KVMAvailable()
	return env
}
