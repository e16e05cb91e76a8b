package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// newInstanceShowCmd is `syctl instance show MACHINE-ID`.
func newInstanceShowCmd() *cobra.Command {
	c, af := newAdminCmd("show MACHINE-ID [--json]", "show a host: its state and history")
	c.Args = cobra.ArbitraryArgs
	asJSON := c.Flags().Bool("json", false, "print JSON")
	c.RunE = usage.Run(func(ctx context.Context, pos []string, stdout, _ io.Writer) error {
		if len(pos) != 1 {
			return fmt.Errorf("%w: instance show takes one MACHINE-ID", errUsage)
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		d, err := cl.GetInstance(ctx, pos[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, d)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, in := range d {
			fmt.Fprintf(tw, "machine id\t%s\napplication\t%s\ngroup\t%s (track %s)\nversion\t%s\naleph version\t%s\nboard\t%s\noem\t%s %s\nip\t%s\nboot id\t%s\n",
				in.MachineID, in.AppID, in.Group, in.Track, in.Version, in.AlephVersion, in.Board, in.OEM, in.OEMVersion, in.IP, in.BootID)
			fmt.Fprintf(tw, "status\t%s since %s\nupdate version\t%s\nlast error code\t%d\nfirst check\t%s\nlast check\t%s\n\nhistory (newest first):\n",
				in.Status, ts(in.StatusAt), in.UpdateVersion, in.LastErrorCode, ts(in.FirstCheck), ts(in.LastCheck))
			for _, h := range in.History {
				code := ""
				if h.ErrorCode != 0 {
					code = fmt.Sprintf("error code %d", h.ErrorCode)
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", ts(h.At), h.Status, h.Version, code)
			}
		}
		return tw.Flush()
	})
	return c
}
