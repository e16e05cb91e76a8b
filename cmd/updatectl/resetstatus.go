package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/update-engine/control"
)

// runResetStatus is `updatectl reset-status` (update_engine_client -reset_status): the
// daemon leaves a failed state for IDLE, or abandons an applied update still waiting for
// its reboot (the flip is undone, the running partition boots next).
func runResetStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("updatectl reset-status", flag.ContinueOnError)
	socket := fs.String("socket", defaultSocket, "update-engine control socket")
	if err := usage.Parse(fs, args, stdout, "updatectl reset-status [--socket S]"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: reset-status takes no arguments", errUsage)
	}
	before, err := control.NewClient(*socket).Status(ctx)
	if err != nil {
		return err
	}
	s, err := control.NewClient(*socket).ResetStatus(ctx)
	if errors.Is(err, control.ErrBusy) {
		return fmt.Errorf("a check or an update is in progress (%v); see `updatectl watch`", err)
	}
	if err != nil {
		return err
	}
	if before.NewVersion != "" && s.NewVersion == "" {
		fmt.Fprintf(stdout, "status reset to %s; the update to %s is abandoned\n", s.Status, before.NewVersion)
		return nil
	}
	fmt.Fprintf(stdout, "status reset to %s\n", s.Status)
	return nil
}
