package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/omaha-server/hostauth"
	"github.com/switchyard-os/switchyard/omaha-server/server"
)

// hostIdentityFlags are serve's host identity flags (package hostauth).
type hostIdentityFlags struct {
	mode          string
	countUnproven bool
}

func (h *hostIdentityFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&h.mode, "host-identity", string(hostauth.TrustOnFirstUse),
		"how a host key becomes a machine id's: trust-on-first-use (pinned by the first signed contact) or enrolled (only keys enrolled with syctl host enroll)")
	fs.BoolVar(&h.countUnproven, "count-unproven-hosts", true,
		"let reports from hosts that prove no key count toward automatic halts and rollout caps (false: stored, never counted)")
}

// apply sets the server's host identity configuration.
func (h *hostIdentityFlags) apply(c *server.Config) error {
	mode, err := hostauth.ParseMode(h.mode)
	if err != nil {
		return fmt.Errorf("%w: --host-identity: %v", errUsage, err)
	}
	c.HostIdentity = &hostauth.Config{Mode: mode, CountUnproven: h.countUnproven}
	return nil
}
