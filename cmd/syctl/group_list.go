package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

// runGroupList runs `syctl group list`.
func runGroupList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("group list", stderr)
	var app string
	addAppFlag(fs, &app)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	groups, err := c.ListGroups(ctx, app)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, groups)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTRACK\tCHANNEL\tUPDATES")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Name, g.Track, g.Channel, onOffString(g.UpdatesEnabled))
	}
	return tw.Flush()
}
