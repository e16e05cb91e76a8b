package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// newAppListCmd is `syctl app list`.
func newAppListCmd() *cobra.Command {
	c, af := newAdminCmd("list [--json]", "list the applications")
	asJSON := c.Flags().Bool("json", false, "print JSON")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		apps, err := cl.ListApps(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, apps)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, a := range apps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.ID, a.Name, ts(a.CreatedAt))
		}
		return tw.Flush()
	})
	return c
}
