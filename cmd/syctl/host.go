package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

const hostUsage = `syctl host enroll MACHINE-ID KEY     enroll a host key (KEY: the host's host-key.pub, base64 Ed25519)
syctl host show MACHINE-ID [--json]  the key on record for a machine id
syctl host list [--after ID] [--limit N] [--json]
syctl host remove MACHINE-ID         forget a key (the next signed contact may pin a new one)`

// runHost runs `syctl host …`: host keys (package hostauth) over the admin API.
func runHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: host needs a command (enroll, show, list, remove)", errUsage)
	}
	fs, a := newAdminFlagSet("host "+args[1], stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	after := fs.String("after", "", "list: start after this machine id")
	limit := fs.Int("limit", 0, "list: at most this many keys (0: the server's maximum)")
	pos, err := parse(fs, args[2:], stdout)
	if err != nil {
		return err
	}
	want := map[string]int{"enroll": 2, "show": 1, "remove": 1, "list": 0}
	n, ok := want[args[1]]
	if !ok {
		return fmt.Errorf("%w: unknown command %q", errUsage, "host "+args[1])
	}
	if len(pos) != n {
		return fmt.Errorf("%w: host %s takes %d argument(s), got %d", errUsage, args[1], n, len(pos))
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	print := func(v any) error {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		return nil
	}
	switch args[1] {
	case "enroll":
		k, err := c.EnrollHostKey(ctx, pos[0], pos[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enrolled %s for %s\n", k.PublicKey, k.MachineID)
	case "show":
		k, err := c.GetHostKey(ctx, pos[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return print(k)
		}
		fmt.Fprintf(stdout, "machine id  %s\nkey         %s\nenrolled    %t\nsince       %s\n", k.MachineID, k.PublicKey, k.Enrolled, k.UpdatedAt.Format(time.RFC3339))
	case "remove":
		if err := c.DeleteHostKey(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed the key of %s\n", pos[0])
	case "list":
		keys, err := c.ListHostKeys(ctx, *after, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return print(keys)
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
	return nil
}
