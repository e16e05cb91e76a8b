package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

// runReleaseList runs `syctl release list`.
func runReleaseList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("release list", stderr)
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
	rels, err := c.ListReleases(ctx, app)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, rels)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tBOARD\tFILE\tSIZE\tSHA256\tHOSTED\tTUF\tURL")
	for _, r := range rels {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\t%v\t%s\n", r.Version, r.Board, r.FileName, r.Size, r.SHA256, r.Hosted, r.HasTargetsMetadata, r.URL)
	}
	return tw.Flush()
}
