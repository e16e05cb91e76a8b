package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// newChannelCreateCmd is `syctl channel create`.
func newChannelCreateCmd() *cobra.Command {
	c, af := newAdminCmd("create [--app A] --name N", "create a channel")
	var app, name string
	addAppFlag(c.Flags(), &app)
	c.Flags().StringVar(&name, "name", "", "channel name")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if err := need(map[string]string{"name": name}); err != nil {
			return err
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		ch, err := cl.CreateChannel(ctx, app, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created channel %s\n", ch.Name)
		return nil
	})
	return c
}
