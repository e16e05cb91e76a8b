package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// newInstanceListCmd is `syctl instance list`.
func newInstanceListCmd() *cobra.Command {
	c, af := newAdminCmd("list [--app A] [--group G] [--version V] [--status S] [--limit N] [--json]", "list hosts, newest check first")
	fs := c.Flags()
	var f store.InstanceFilter
	var status string
	fs.StringVar(&f.AppID, "app", store.FlatcarAppID, "application ID (empty: every application)")
	fs.StringVar(&f.Group, "group", "", "only this group")
	fs.StringVar(&f.Version, "version", "", "only this version")
	fs.StringVar(&status, "status", "", "only this status (update-granted, downloading, downloaded, installed, complete, error, rolled-back, …)")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many (0: all; the server is asked in pages)")
	asJSON := fs.Bool("json", false, "print JSON")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		f.Status = store.Status(status)
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		list, err := cl.ListInstances(ctx, f)
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
	})
	return c
}
