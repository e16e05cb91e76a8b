package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// runInstanceList runs `syctl instance list`.
func runInstanceList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("instance list", stderr)
	var f store.InstanceFilter
	var status string
	fs.StringVar(&f.AppID, "app", store.FlatcarAppID, "application ID (empty: every application)")
	fs.StringVar(&f.Group, "group", "", "only this group")
	fs.StringVar(&f.Version, "version", "", "only this version")
	fs.StringVar(&status, "status", "", "only this status (update-granted, downloading, downloaded, installed, complete, error, rolled-back, …)")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many (0: all; the server is asked in pages)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	f.Status = store.Status(status)
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	list, err := c.ListInstances(ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE-ID\tGROUP\tVERSION\tSTATUS\tBOARD\tIP\tLAST CHECK")
	for _, in := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.MachineID, in.Group, in.Version, in.Status, in.Board, in.IP, ts(in.LastCheck))
	}
	return tw.Flush()
}
