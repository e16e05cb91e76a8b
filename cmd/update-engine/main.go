// Command update-engine is the host update daemon: it checks an Omaha server for updates,
// verifies them through TUF and the payload signature, writes them to the inactive USR
// partition, flips the GPT, coordinates the reboot, and confirms (or reports the rollback
// of) the update after the reboot. See docs/update-engine.md.
//
// main only wires: flags and configuration files into a config.Config, then run.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(usage.Report(os.Stderr, "update-engine", err))
}
