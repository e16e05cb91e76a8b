package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// newActivityCmd is `syctl activity`: the server's activity log, walking its pages. now is
// the clock a relative --since counts back from.
func newActivityCmd(now func() time.Time) *cobra.Command {
	c, a := newAdminCmd("activity [--app A] [--action X] [--subject S] [--actor NAME] [--since DUR|TIME] [--until TIME] [--limit N] [--json]",
		"the activity log, newest first: who changed what from what to what, and every automatic halt with its reason")
	fs := c.Flags()
	var f store.ActivityFilter
	var action, since, until string
	fs.StringVar(&f.AppID, "app", "", "only this application (empty: every application, and tokens and host keys)")
	fs.StringVar(&action, "action", "", "only this action: "+actionNames())
	fs.StringVar(&f.Subject, "subject", "", "only this subject (group/stable, channel/beta, token/3, host/MACHINE-ID, …)")
	fs.StringVar(&f.Actor, "actor", "", "only this actor: a token's name, or system (automatic halts)")
	fs.StringVar(&since, "since", "", "only entries since: a duration back from now (24h, 7d), a date (2026-12-01) or an RFC 3339 time")
	fs.StringVar(&until, "until", "", "only entries before: a date or an RFC 3339 time")
	fs.IntVar(&f.Limit, "limit", 100, "at most this many, newest first (0: all; the server is asked in pages)")
	asJSON := fs.Bool("json", false, "print JSON")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		return runActivity(ctx, a, f, action, since, until, *asJSON, stdout, now)
	})
	return c
}

func runActivity(ctx context.Context, a *adminFlags, f store.ActivityFilter, action, since, until string, asJSON bool, stdout io.Writer, now func() time.Time) error {
	if f.Limit < 0 {
		return fmt.Errorf("%w: --limit %d: want 0 (all) or more", errUsage, f.Limit)
	}
	f.Action = store.Action(action)
	if action != "" && !f.Action.Valid() {
		return fmt.Errorf("%w: --action %q: want one of %s", errUsage, action, actionNames())
	}
	var err error
	if f.Since, err = parseSince(since, now()); err != nil {
		return fmt.Errorf("%w: --since: %v", errUsage, err)
	}
	if until != "" {
		if f.Until, err = parseTime(until); err != nil {
			return fmt.Errorf("%w: --until: %v", errUsage, err)
		}
	}
	ctx, cancel, c, err := a.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	list, err := c.ListActivity(ctx, f)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tACTOR\tACTION\tSUBJECT\tCHANGE\tREASON")
	for _, e := range list {
		subject := e.Subject
		if e.AppID != "" && f.AppID == "" && e.AppID != store.FlatcarAppID {
			subject = e.AppID + " " + subject
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, ts(e.At), e.Actor, e.Action, subject, change(e), e.Reason)
	}
	return tw.Flush()
}

func actionNames() string {
	var names []string
	for _, a := range store.Actions() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// change renders an entry's before and after on one line.
func change(e store.Activity) string {
	switch {
	case e.Before == nil && e.After == nil:
		return "-"
	case e.Before == nil:
		return compact(e.After)
	case e.After == nil:
		return compact(e.Before) + " → (removed)"
	}
	return compact(e.Before) + " → " + compact(e.After)
}

// compact prints JSON on one line (the server indents its answers).
func compact(j json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, j); err != nil {
		return string(j)
	}
	return b.String()
}

// parseSince reads --since: a duration back from now (Go's, or whole days "7d"), a date
// or an RFC 3339 time; "" for no bound.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 && days <= 36500 {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	return parseTime(s)
}

// parseTime reads a date (2026-12-01, midnight UTC) or an RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration (24h, 7d), a date (2026-12-01) or an RFC 3339 time", s)
	}
	return t, nil
}
