package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

// runAppList runs `syctl app list`.
func runAppList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("app list", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	apps, err := c.ListApps(ctx)
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
}
