package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
)

// hostFlags are the flags of the host commands. Each command shows those it uses; every
// host command has taken all three, so the others stay accepted, hidden.
type hostFlags struct {
	asJSON bool
	after  string
	limit  int
}

// newHostCmd is `syctl host …`: host keys (package hostauth) over the admin API.
func newHostCmd() *cobra.Command {
	return group(&cobra.Command{Use: "host COMMAND", Short: "enroll, show, list and remove host keys"},
		"host needs a command (enroll, show, list, remove)",
		newHostSubCmd("enroll MACHINE-ID KEY", "enroll a host key (KEY: the host's host-key.pub, base64 Ed25519)", 2, nil, hostEnroll),
		newHostSubCmd("show MACHINE-ID [--json]", "the key on record for a machine id", 1, []string{"json"}, hostShow),
		newHostSubCmd("list [--after ID] [--limit N] [--json]", "list the host keys", 0, []string{"json", "after", "limit"}, hostList),
		newHostSubCmd("remove MACHINE-ID", "forget a key (the next signed contact may pin a new one)", 1, nil, hostRemove),
	)
}

// hostJob is what a host command does once its arguments are checked.
type hostJob func(ctx context.Context, c *adminclient.Client, pos []string, f *hostFlags, stdout io.Writer) error

// newHostSubCmd returns the host command use taking nargs arguments and showing the flags
// in shown.
func newHostSubCmd(use, short string, nargs int, shown []string, job hostJob) *cobra.Command {
	c, a := newAdminCmd(use, short)
	c.Args = cobra.ArbitraryArgs
	var f hostFlags
	fs := c.Flags()
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	fs.StringVar(&f.after, "after", "", "start after this machine id")
	fs.IntVar(&f.limit, "limit", 0, "at most this many keys (0: the server's maximum)")
	for _, name := range []string{"json", "after", "limit"} {
		if !slices.Contains(shown, name) {
			if err := fs.MarkHidden(name); err != nil {
				panic(err) // defined just above
			}
		}
	}
	c.RunE = usage.Run(func(ctx context.Context, pos []string, stdout, _ io.Writer) error {
		if len(pos) != nargs {
			return fmt.Errorf("%w: host %s takes %d argument(s), got %d", errUsage, c.Name(), nargs, len(pos))
		}
		ctx, cancel, cl, err := a.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		return job(ctx, cl, pos, &f, stdout)
	})
	return c
}

func hostEnroll(ctx context.Context, c *adminclient.Client, pos []string, _ *hostFlags, stdout io.Writer) error {
	k, err := c.EnrollHostKey(ctx, pos[0], pos[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled %s for %s\n", k.PublicKey, k.MachineID)
	return nil
}

func hostShow(ctx context.Context, c *adminclient.Client, pos []string, f *hostFlags, stdout io.Writer) error {
	k, err := c.GetHostKey(ctx, pos[0])
	if err != nil {
		return err
	}
	if f.asJSON {
		return printJSON(stdout, k)
	}
	fmt.Fprintf(stdout, "machine id  %s\nkey         %s\nenrolled    %t\nsince       %s\n", k.MachineID, k.PublicKey, k.Enrolled, k.UpdatedAt.Format(time.RFC3339))
	return nil
}

func hostRemove(ctx context.Context, c *adminclient.Client, pos []string, _ *hostFlags, stdout io.Writer) error {
	if err := c.DeleteHostKey(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed the key of %s\n", pos[0])
	return nil
}

func hostList(ctx context.Context, c *adminclient.Client, _ []string, f *hostFlags, stdout io.Writer) error {
	keys, err := c.ListHostKeys(ctx, f.after, f.limit)
	if err != nil {
		return err
	}
	if f.asJSON {
		return printJSON(stdout, keys)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE ID\tKEY\tHOW\tSINCE")
	for _, k := range keys {
		how := "first use"
		if k.Enrolled {
			how = "enrolled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.MachineID, k.PublicKey, how, k.UpdatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}
