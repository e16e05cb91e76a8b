package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

// runChannelList runs `syctl channel list`.
func runChannelList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("channel list", stderr)
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
	chans, err := c.ListChannels(ctx, app)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, chans)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tBOARD\tVERSION")
	for _, ch := range chans {
		if len(ch.Releases) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\n", ch.Name)
		}
		for b, r := range ch.Releases {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", ch.Name, b, r.Version)
		}
	}
	return tw.Flush()
}
