package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// newChannelSetCmd is `syctl channel set`: the release a channel offers on a board.
func newChannelSetCmd() *cobra.Command {
	c, af := newAdminCmd("set [--app A] --name N --version V [--board B]", "make a channel offer a release on a board")
	var app, name, version, board string
	addAppFlag(c.Flags(), &app)
	c.Flags().StringVar(&name, "name", "", "channel name")
	c.Flags().StringVar(&version, "version", "", "release version")
	c.Flags().StringVar(&board, "board", "amd64-usr", "board")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if err := need(map[string]string{"name": name, "version": version, "board": board}); err != nil {
			return err
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		ch, err := cl.SetChannel(ctx, app, name, board, version)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "channel %s now offers %s on %s\n", ch.Name, ch.Releases[board].Version, board)
		return nil
	})
	return c
}
