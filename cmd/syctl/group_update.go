package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// newGroupUpdateCmd is `syctl group update`: only the flags given change.
func newGroupUpdateCmd() *cobra.Command {
	c, af := newAdminCmd("update [--app A] --name N [--track T] [--channel C] [--updates on|off]", "change a group's track, channel or updates")
	var gf groupFlags
	gf.register(c.Flags())
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		in, err := gf.input()
		if err != nil {
			return err
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		g, err := cl.UpdateGroup(ctx, gf.app, gf.name, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "group %s: track %s, channel %s, updates %s\n", g.Name, g.Track, g.Channel, onOffString(g.UpdatesEnabled))
		return nil
	})
	return c
}
