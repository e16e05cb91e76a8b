package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// newAppCreateCmd is `syctl app create`.
func newAppCreateCmd() *cobra.Command {
	c, af := newAdminCmd("create --id ID --name NAME", "create an application")
	var id, name string
	c.Flags().StringVar(&id, "id", "", "application ID (a GUID, braces optional)")
	c.Flags().StringVar(&name, "name", "", "application name")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if err := need(map[string]string{"id": id, "name": name}); err != nil {
			return err
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		a, err := cl.CreateApp(ctx, id, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created application %s (%s)\n", a.ID, a.Name)
		return nil
	})
	return c
}
