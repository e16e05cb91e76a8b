package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/update-engine/control"
	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// runInstall is `updatectl install [--socket S] PATH`: the running update-engine installs the
// release at PATH (a directory or a tar file, laid out as update-engine/media describes) with
// the same verification as an online update. The daemon does the work, so it stays the
// disk's only writer, `updatectl status` shows the install and the reboot strategy applies.
func runInstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("updatectl install", flag.ContinueOnError)
	socket := fs.String("socket", defaultSocket, "update-engine control socket")
	if err := usage.Parse(fs, args, stdout, "updatectl install [--socket S] DIR|FILE.tar"); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: install takes one PATH (a release directory or tar file)", errUsage)
	}
	p, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	fmt.Fprintf(stdout, "installing from %s\n", p)
	s, err := control.NewClient(*socket).Install(ctx, p)
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
