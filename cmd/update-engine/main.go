// Command update-engine is the host update daemon: it checks an Omaha server for updates,
// verifies them through TUF and the payload signature, writes them to the inactive USR
// partition, flips the GPT, coordinates the reboot, and confirms (or reports the rollback
// of) the update after the reboot. See docs/update-engine.md.
//
// main only wires: flags and configuration files into a config.Config, then run.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "update-engine:", err)
		os.Exit(1)
	}
}
