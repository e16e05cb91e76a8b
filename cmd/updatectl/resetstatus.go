package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/update-engine/control"
)

// newResetStatusCmd is `updatectl reset-status` (update_engine_client -reset_status): the
// daemon leaves a failed state for IDLE, or abandons an applied update still waiting for
// its reboot (the flip is undone, the running partition boots next).
func newResetStatusCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "reset-status [--socket S]",
		Short: "back to IDLE after a failure, or abandon an update waiting for its reboot",
	}
	socket := c.Flags().String("socket", defaultSocket, "update-engine control socket")
	c.RunE = usage.Run(func(ctx context.Context, args []string, stdout, _ io.Writer) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: reset-status takes no arguments", errUsage)
		}
		return resetStatus(ctx, *socket, stdout)
	})
	return c
}

func resetStatus(ctx context.Context, socket string, stdout io.Writer) error {
	before, err := control.NewClient(socket).Status(ctx)
	if err != nil {
		return err
	}
	s, err := control.NewClient(socket).ResetStatus(ctx)
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
