package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/update-engine/control"
	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// newInstallCmd is `updatectl install [--socket S] PATH`: the running update-engine installs the
// release at PATH (a directory or a tar file, laid out as update-engine/media describes) with
// the same verification as an online update. The daemon does the work, so it stays the
// disk's only writer, `updatectl status` shows the install and the reboot strategy applies.
func newInstallCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "install [--socket S] DIR|FILE.tar",
		Short: "install a release from local media (a directory or tar file with the payload and TUF metadata)",
	}
	socket := c.Flags().String("socket", defaultSocket, "update-engine control socket")
	c.RunE = usage.Run(func(ctx context.Context, args []string, stdout, _ io.Writer) error {
		if len(args) != 1 {
			return fmt.Errorf("%w: install takes one PATH (a release directory or tar file)", errUsage)
		}
		return installFrom(ctx, *socket, args[0], stdout)
	})
	return c
}

func installFrom(ctx context.Context, socket, path string, stdout io.Writer) error {
	p, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	fmt.Fprintf(stdout, "installing from %s\n", p)
	s, err := control.NewClient(socket).Install(ctx, p)
	if errors.Is(err, control.ErrBusy) {
		return fmt.Errorf("install: %w (an update runs or waits for its reboot; see `updatectl status`)", err)
	}
	if err != nil {
		return fmt.Errorf("install refused, nothing applied: %w", err)
	}
	if s.Status != engine.StatusUpdatedNeedReboot {
		return fmt.Errorf("install: the daemon ended in %s: %s", s.Status, s.LastError)
	}
	fmt.Fprintf(stdout, "installed %s on %s: reboot needed\n", s.NewVersion, orUnknown(s.TargetPartition))
	return nil
}
