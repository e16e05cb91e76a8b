package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// runToken runs `omaha-server token ARGS`; now is the clock --expires durations count from.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	return usage.Execute(ctx, newRoot(now, nil), append([]string{"token"}, args...), stdout, stderr)
}

// newTokenCmd returns `omaha-server token create|list|revoke`, which work on the store
// directly (no server needed, so the first admin token can be made). now is the clock
// --expires durations count from.
func newTokenCmd(now func() time.Time) *cobra.Command {
	subs := []struct{ name, use, short string }{
		{"create", "create [--data-dir DIR | --db postgres://…] --role admin|viewer [--name NAME] [--description TEXT] [--expires WHEN]",
			"create an admin API token (printed as the last line)"},
		{"list", "list [--data-dir DIR | --db postgres://…] [--json]", "list tokens (never their values)"},
		{"revoke", "revoke [--data-dir DIR | --db postgres://…] ID", "revoke a token at once, on every replica"},
	}
	token := &cobra.Command{Use: "token COMMAND", Short: "create, list and revoke admin API tokens"}
	for _, sub := range subs {
		c := &cobra.Command{Use: sub.use, Short: sub.short}
		fs := c.Flags()
		var sf storeFlags
		sf.register(fs)
		var role, name, desc, expires *string
		var asJSON *bool
		switch sub.name {
		case "create":
			role = fs.String("role", "", "admin (read and write) or viewer (read only)")
			name = fs.String("name", "", "whose or what the token is, shown by token list (default: the role)")
			desc = fs.String("description", "", "what the token is for")
			expires = fs.String("expires", "", "when it stops working: a duration (720h), a date (2027-01-31) or an RFC 3339 time; empty: never")
		case "list":
			asJSON = fs.Bool("json", false, "print JSON")
		}
		cmd := sub.name
		c.RunE = usage.Run(func(ctx context.Context, pos []string, stdout, _ io.Writer) error {
			return tokenRun(ctx, cmd, pos, &sf, tokenFlags{role, name, desc, expires, asJSON}, stdout, now)
		})
		token.AddCommand(c)
	}
	return usage.Group(token)
}

// tokenFlags are the flags of one token command (nil: the command has no such flag).
type tokenFlags struct {
	role, name, desc, expires *string
	asJSON                    *bool
}

// tokenRun runs the token command cmd ("create", "list", "revoke") with positional
// arguments pos.
func tokenRun(ctx context.Context, cmd string, pos []string, sf *storeFlags, f tokenFlags, stdout io.Writer, now func() time.Time) error {
	// The activity log names this command as the actor of what it changes.
	ctx = store.WithActor(ctx, store.Actor{Name: "omaha-server token"})
	args := []string{cmd}
	role, name, desc, expires, asJSON := f.role, f.name, f.desc, f.expires, f.asJSON
	var id int64
	if args[0] == "revoke" {
		if len(pos) != 1 {
			return fmt.Errorf("%w: token revoke takes one token ID (see token list)", errUsage)
		}
		n, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("%w: token ID %q: want a positive number (see token list)", errUsage, pos[0])
		}
		id = n
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	var t store.Token
	if args[0] == "create" {
		t = store.Token{Role: store.Role(*role), Name: *name, Description: *desc}
		if t.Role != store.RoleAdmin && t.Role != store.RoleViewer {
			return fmt.Errorf("%w: --role must be admin or viewer", errUsage)
		}
		if t.Name == "" {
			t.Name = string(t.Role)
		}
		at, err := auth.ParseExpiry(*expires, now())
		if err != nil {
			return fmt.Errorf("%w: --expires: %v", errUsage, err)
		}
		t.ExpiresAt = at
	}
	st, _, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "create":
		tok, hash, err := auth.NewToken()
		if err != nil {
			return err
		}
		t.Hash = hash
		if t, err = st.CreateToken(ctx, t); err != nil {
			return err
		}
		until := "never expires"
		if !t.ExpiresAt.IsZero() {
			until = "expires " + t.ExpiresAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "created %s token %d %q (%s); it is shown only once:\n%s\n", t.Role, t.ID, t.Name, until, tok)
	case "list":
		ts, err := st.ListTokens(ctx)
		if err != nil {
			return err
		}
		return printTokens(stdout, ts, now(), *asJSON)
	case "revoke":
		t, err := st.RevokeToken(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("token %d: no such token, or revoked already (see token list)", id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s token %d %q\n", t.Role, t.ID, t.Name)
	}
	return nil
}

// printTokens writes tokens as a table or JSON; neither holds a value or a hash.
func printTokens(w io.Writer, ts []store.Token, now time.Time, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ts)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTATE\tCREATED\tEXPIRES\tLAST USED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.State(now), stamp(t.CreatedAt), stamp(t.ExpiresAt), stamp(t.LastUsedAt))
	}
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
