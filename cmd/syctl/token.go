package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// newTokenCmd is `syctl token …`, the admin API tokens (admin tokens only). now is the
// clock a relative --expires counts from; the server gets the absolute time.
func newTokenCmd(now func() time.Time) *cobra.Command {
	return group(&cobra.Command{Use: "token COMMAND", Short: "create, list and revoke admin API tokens (admin tokens only)"}, "",
		newTokenListCmd(now), newTokenCreateCmd(now), newTokenRevokeCmd())
}

// tokenFlags are the flags of the token commands. Each command shows those it uses; every
// token command has taken all of them, so the others stay accepted, hidden.
type tokenFlags struct {
	asJSON, self              bool
	name, role, desc, expires string
}

// newTokenSubCmd returns the token command use with the admin flags and the token flags,
// those not in shown hidden.
func newTokenSubCmd(use, short string, shown ...string) (*cobra.Command, *adminFlags, *tokenFlags) {
	c, a := newAdminCmd(use, short)
	f := &tokenFlags{}
	fs := c.Flags()
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	fs.StringVar(&f.name, "name", "", "whose or what the token is")
	fs.StringVar(&f.role, "role", "", "admin (read and write) or viewer (read only)")
	fs.StringVar(&f.desc, "description", "", "what the token is for")
	fs.StringVar(&f.expires, "expires", "", "when it stops working: a duration (720h), a date (2027-01-31) or an RFC 3339 time; empty: never")
	fs.BoolVar(&f.self, "self", false, "allow revoking the token this command uses")
	for _, name := range []string{"json", "name", "role", "description", "expires", "self"} {
		if !slices.Contains(shown, name) {
			if err := fs.MarkHidden(name); err != nil {
				panic(err) // defined just above
			}
		}
	}
	return c, a, f
}

// newTokenListCmd is `syctl token list`.
func newTokenListCmd(now func() time.Time) *cobra.Command {
	c, a, f := newTokenSubCmd("list [--json]", "every token: id, name, role, state, created, expires, last used", "json")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		ctx, cancel, cl, err := a.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		toks, err := cl.ListTokens(ctx)
		if err != nil {
			return err
		}
		if f.asJSON {
			return printJSON(stdout, toks)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTATE\tCREATED\tEXPIRES\tLAST USED")
		for _, t := range toks {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.State(now()), ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.LastUsedAt))
		}
		return tw.Flush()
	})
	return c
}

// newTokenCreateCmd is `syctl token create`: it prints the new token once, as the last line.
func newTokenCreateCmd(now func() time.Time) *cobra.Command {
	c, a, f := newTokenSubCmd("create --name N --role admin|viewer [--expires 720h|2027-01-31|RFC3339] [--description D] [--json]",
		"create a token; it is printed once, as the last line", "json", "name", "role", "description", "expires")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if err := need(map[string]string{"name": f.name, "role": f.role}); err != nil {
			return err
		}
		in := adminapi.TokenInput{Name: f.name, Role: store.Role(f.role), Description: f.desc}
		at, err := auth.ParseExpiry(f.expires, now())
		if err != nil {
			return fmt.Errorf("%w: --expires: %v", errUsage, err)
		}
		if !at.IsZero() {
			in.ExpiresAt = &at
		}
		ctx, cancel, cl, err := a.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		out, err := cl.CreateToken(ctx, in)
		if err != nil {
			return err
		}
		if f.asJSON {
			return printJSON(stdout, out)
		}
		until := "never expires"
		if !out.Token.ExpiresAt.IsZero() {
			until = "expires " + ts(out.Token.ExpiresAt)
		}
		fmt.Fprintf(stdout, "created %s token %d %q (%s); it is shown only once:\n%s\n", out.Token.Role, out.Token.ID, out.Token.Name, until, out.Value)
		return nil
	})
	return c
}

// newTokenRevokeCmd is `syctl token revoke ID`: at once, on every replica.
func newTokenRevokeCmd() *cobra.Command {
	c, a, f := newTokenSubCmd("revoke ID [--self]", "revoke a token at once on every replica; --self to revoke the token in use", "self")
	c.Args = cobra.ArbitraryArgs
	c.RunE = usage.Run(func(ctx context.Context, pos []string, stdout, _ io.Writer) error {
		if len(pos) != 1 {
			return fmt.Errorf("%w: token revoke takes one ID, got %d arguments", errUsage, len(pos))
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id < 1 {
			return fmt.Errorf("%w: token ID %q: want a positive number (see syctl token list)", errUsage, pos[0])
		}
		ctx, cancel, cl, err := a.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		t, err := cl.RevokeToken(ctx, id, f.self)
		if adminclient.IsStatus(err, http.StatusConflict) {
			return fmt.Errorf("%w (syctl: give --self to revoke the token this command uses)", err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s token %d %q\n", t.Role, t.ID, t.Name)
		return nil
	})
	return c
}
