package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// runToken runs `omaha-server token create|list|revoke` on the store directly (no
// server needed, so the first admin token can be made). now is the clock --expires
// durations count from.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: token takes the subcommand create, list or revoke", errUsage)
	}
	// The activity log names this command as the actor of what it changes.
	ctx = store.WithActor(ctx, store.Actor{Name: "omaha-server token"})
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs)
	var role, name, desc, expires *string
	var asJSON *bool
	switch args[0] {
	case "create":
		role = fs.String("role", "", "admin (read and write) or viewer (read only)")
		name = fs.String("name", "", "whose or what the token is, shown by token list (default: the role)")
		desc = fs.String("description", "", "what the token is for")
		expires = fs.String("expires", "", "when it stops working: a duration (720h), a date (2027-01-31) or an RFC 3339 time; empty: never")
	case "list":
		asJSON = fs.Bool("json", false, "print JSON")
	case "revoke":
	default:
		return fmt.Errorf("%w: token takes the subcommand create, list or revoke, not %q", errUsage, args[0])
	}
	synopsis := map[string]string{
		"create": "omaha-server token create [--data-dir DIR | --db postgres://…] --role admin|viewer [--name NAME] [--description TEXT] [--expires WHEN]",
		"list":   "omaha-server token list [--data-dir DIR | --db postgres://…] [--json]",
		"revoke": "omaha-server token revoke [--data-dir DIR | --db postgres://…] ID",
	}[args[0]]
	// Flags may follow the ID as well as precede it.
	var pos []string
	for rest := args[1:]; ; {
		if err := usage.Parse(fs, rest, stdout, synopsis); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
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
