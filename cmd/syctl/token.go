package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

const tokenUsage = `syctl token list [--json]                  every token: id, name, role, state, created, expires, last used
syctl token create --name N --role admin|viewer [--expires 720h|2027-01-31|RFC3339] [--description D]
                                           prints the new token once, as the last line
syctl token revoke ID [--self]             revoke at once on every replica; --self to revoke the token in use
(admin tokens only)`

// runToken runs `syctl token …` over the admin API. now is the clock a relative
// --expires counts from; the server gets the absolute time.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: %s", errUsage, tokenUsage)
	}
	fs, a := newAdminFlagSet("token "+args[1], stderr)
	asJSON := fs.Bool("json", false, "list, create: print JSON")
	name := fs.String("name", "", "create: whose or what the token is")
	role := fs.String("role", "", "create: admin (read and write) or viewer (read only)")
	desc := fs.String("description", "", "create: what the token is for")
	expires := fs.String("expires", "", "create: when it stops working: a duration (720h), a date (2027-01-31) or an RFC 3339 time; empty: never")
	self := fs.Bool("self", false, "revoke: allow revoking the token this command uses")
	pos, err := parse(fs, args[2:], stdout)
	if err != nil {
		return err
	}
	want := map[string]int{"list": 0, "create": 0, "revoke": 1}
	n, ok := want[args[1]]
	if !ok || len(pos) != n {
		return fmt.Errorf("%w: %s", errUsage, tokenUsage)
	}
	var in adminapi.TokenInput
	var id int64
	switch args[1] {
	case "create":
		if err := need(map[string]string{"name": *name, "role": *role}); err != nil {
			return err
		}
		in = adminapi.TokenInput{Name: *name, Role: store.Role(*role), Description: *desc}
		at, err := auth.ParseExpiry(*expires, now())
		if err != nil {
			return fmt.Errorf("%w: --expires: %v", errUsage, err)
		}
		if !at.IsZero() {
			in.ExpiresAt = &at
		}
	case "revoke":
		if id, err = strconv.ParseInt(pos[0], 10, 64); err != nil || id < 1 {
			return fmt.Errorf("%w: token ID %q: want a positive number (see syctl token list)", errUsage, pos[0])
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	switch args[1] {
	case "list":
		toks, err := c.ListTokens(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, toks)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTATE\tCREATED\tEXPIRES\tLAST USED")
		for _, t := range toks {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.State(now()), ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.LastUsedAt))
		}
		return tw.Flush()
	case "create":
		out, err := c.CreateToken(ctx, in)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, out)
		}
		until := "never expires"
		if !out.Token.ExpiresAt.IsZero() {
			until = "expires " + ts(out.Token.ExpiresAt)
		}
		fmt.Fprintf(stdout, "created %s token %d %q (%s); it is shown only once:\n%s\n", out.Token.Role, out.Token.ID, out.Token.Name, until, out.Value)
	case "revoke":
		t, err := c.RevokeToken(ctx, id, *self)
		if adminclient.IsStatus(err, http.StatusConflict) {
			return fmt.Errorf("%w (syctl: give --self to revoke the token this command uses)", err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s token %d %q\n", t.Role, t.ID, t.Name)
	}
	return nil
}
