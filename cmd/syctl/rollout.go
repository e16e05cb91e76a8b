package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
)

// durationHelp is how the policy commands explain their durations.
const durationHelp = "D is a duration: 90s, 30m, 12h, 7d; 0 clears the setting."

// policyRetries bounds how often `group policy set` re-reads and re-applies its change
// when another operator wrote the group in between.
const policyRetries = 3

// dayDuration is a duration flag that also takes whole days ("7d").
type dayDuration struct {
	d   time.Duration
	set bool
}

func (d *dayDuration) String() string {
	if d.d == 0 {
		return "0" // help shows no default for the zero value
	}
	return d.d.String()
}
func (d *dayDuration) Type() string { return "duration" }
func (d *dayDuration) Set(s string) error {
	v, err := parseDays(s)
	if err != nil {
		return err
	}
	d.d, d.set = v, true
	return nil
}

// parseDays reads a Go duration or a whole number of days ("90d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3650 {
			return 0, fmt.Errorf("%q: want a number of days (0 to 3650) before d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// optInt is an int flag that remembers whether it was given.
type optInt struct {
	v   int
	set bool
}

func (o *optInt) String() string { return strconv.Itoa(o.v) }
func (o *optInt) Type() string   { return "int" }
func (o *optInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	o.v, o.set = v, true
	return nil
}

// policyEdits are the changes `group policy set` makes to a policy.
type policyEdits struct {
	percent, maxPerPeriod, maxInFlight, haltFailures, haltOf optInt
	period, timeout                                          dayDuration
	windows, floors, block, unblock                          []string
	clearWindows, clearFloors, clearCaps, unpin              bool
	pin                                                      string
}

func (e *policyEdits) register(fs *pflag.FlagSet) {
	fs.Var(&e.percent, "percent", "percentage of hosts offered the release (0-100)")
	fs.Var(&e.maxPerPeriod, "max-per-period", "at most this many grants per --period (0: no cap)")
	fs.Var(&e.period, "period", "the period of --max-per-period")
	fs.Var(&e.maxInFlight, "max-in-flight", "at most this many hosts updating at once (0: no cap)")
	fs.Var(&e.timeout, "install-timeout", "a grant not installed within this long counts as failed (0: never)")
	fs.StringArrayVar(&e.windows, "window", nil, `maintenance window "Mon-Fri 09:00 8h Europe/Berlin" (repeatable; adds)`)
	fs.BoolVar(&e.clearWindows, "clear-windows", false, "remove every maintenance window first")
	fs.Var(&e.haltFailures, "halt-failures", "halt the rollout when this many of the last --halt-of attempts failed (0: never)")
	fs.Var(&e.haltOf, "halt-of", "how many recent attempts --halt-failures looks at (default: --halt-failures)")
	fs.StringArrayVar(&e.floors, "floor", nil, "a version every host must pass through (repeatable; adds)")
	fs.BoolVar(&e.clearFloors, "clear-floors", false, "remove every floor first")
	fs.StringArrayVar(&e.block, "block", nil, "a version never offered (repeatable)")
	fs.StringArrayVar(&e.unblock, "unblock", nil, "offer a blocked version again (repeatable)")
	fs.StringVar(&e.pin, "pin", "", "hold the group at this version instead of its channel's")
	fs.BoolVar(&e.unpin, "unpin", false, "follow the channel again")
	fs.BoolVar(&e.clearCaps, "clear-caps", false, "remove the percentage, caps, timeout and halt first")
}

// apply changes p as the flags say; the server validates the result.
func (e *policyEdits) apply(p *policy.Policy) error {
	if e.pin != "" && e.unpin {
		return fmt.Errorf("%w: --pin and --unpin together", errUsage)
	}
	if e.clearCaps {
		p.Percent, p.MaxPerPeriod, p.Period, p.MaxInFlight, p.Timeout, p.HaltFailures, p.HaltOf = nil, 0, 0, 0, 0, 0, 0
	}
	if e.percent.set {
		v := e.percent.v
		p.Percent = &v
		if v == 100 {
			p.Percent = nil
		}
	}
	if e.maxPerPeriod.set {
		p.MaxPerPeriod = e.maxPerPeriod.v
		if p.MaxPerPeriod == 0 && !e.period.set {
			p.Period = 0
		}
	}
	if e.period.set {
		p.Period = policy.Duration(e.period.d)
	}
	if e.maxInFlight.set {
		p.MaxInFlight = e.maxInFlight.v
	}
	if e.timeout.set {
		p.Timeout = policy.Duration(e.timeout.d)
	}
	if e.haltFailures.set {
		p.HaltFailures = e.haltFailures.v
		if !e.haltOf.set && (p.HaltOf < p.HaltFailures || p.HaltFailures == 0) {
			p.HaltOf = p.HaltFailures
		}
	}
	if e.haltOf.set {
		p.HaltOf = e.haltOf.v
	}
	if e.clearWindows {
		p.Windows = nil
	}
	for _, w := range e.windows {
		if !slices.Contains(p.Windows, w) {
			p.Windows = append(p.Windows, w)
		}
	}
	if e.clearFloors {
		p.Floors = nil
	}
	for _, f := range e.floors {
		if !slices.Contains(p.Floors, f) {
			p.Floors = append(p.Floors, f)
		}
	}
	for _, b := range e.block {
		if !slices.Contains(p.Blocked, b) {
			p.Blocked = append(p.Blocked, b)
		}
	}
	p.Blocked = slices.DeleteFunc(p.Blocked, func(b string) bool { return slices.Contains(e.unblock, b) })
	if e.pin != "" {
		p.Pin = e.pin
	}
	if e.unpin {
		p.Pin = ""
	}
	return nil
}

// newPolicyCmd is `syctl group policy set|show`.
func newPolicyCmd() *cobra.Command {
	return group(&cobra.Command{Use: "policy COMMAND", Short: "set and show a group's rollout policy"},
		"group policy needs set or show", newPolicySetCmd(), newPolicyShowCmd())
}

// newPolicyShowCmd is `syctl group policy show`.
func newPolicyShowCmd() *cobra.Command {
	c, af := newAdminCmd("show [--app A] --name G [--json]", "show a group's rollout policy")
	var app, name string
	addAppFlag(c.Flags(), &app)
	c.Flags().StringVar(&name, "name", "", "group name")
	asJSON := c.Flags().Bool("json", false, "print JSON")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if err := need(map[string]string{"name": name}); err != nil {
			return err
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		cur, err := cl.GetPolicy(ctx, app, name)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, cur)
		}
		printPolicy(stdout, name, cur.Policy, *cur.Version)
		return nil
	})
	return c
}

// newPolicySetCmd is `syctl group policy set`: it changes what its flags name and keeps
// the rest of the policy.
func newPolicySetCmd() *cobra.Command {
	c, af := newAdminCmd(`set [--app A] --name G [--percent N] [--max-per-period N --period D] [--max-in-flight N]
    [--install-timeout D] [--window "Mon-Fri 09:00 8h Europe/Berlin"]... [--clear-windows] [--halt-failures N --halt-of M]
    [--floor V]... [--clear-floors] [--block V]... [--unblock V]... [--pin V | --unpin] [--clear-caps]`,
		"change a group's rollout policy")
	c.Long = "Change a group's rollout policy: only what the flags name changes.\n" + durationHelp
	var app, name string
	addAppFlag(c.Flags(), &app)
	c.Flags().StringVar(&name, "name", "", "group name")
	e := &policyEdits{}
	e.register(c.Flags())
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := need(map[string]string{"name": name}); err != nil {
			return err
		}
		if !e.timeout.set && af.timeout > 0 {
			// Before --timeout meant the request timeout everywhere, here it set the policy.
			fmt.Fprintln(stderr, "syctl: note: --timeout is the request timeout; the policy's install timeout is --install-timeout")
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		return setPolicy(ctx, cl, stdout, stderr, app, name, e)
	})
	return c
}

// setPolicy reads, modifies and writes with the version read; on a conflict it starts over
// from a fresh read, so the other operator's edit is kept and ours applied on top of it.
func setPolicy(ctx context.Context, c *adminclient.Client, stdout, stderr io.Writer, app, name string, e *policyEdits) error {
	for attempt := 1; ; attempt++ {
		cur, err := c.GetPolicy(ctx, app, name)
		if err != nil {
			return err
		}
		p := cur.Policy
		if err := e.apply(&p); err != nil {
			return err
		}
		g, err := c.SetPolicy(ctx, app, name, p, *cur.Version)
		if adminclient.IsStatus(err, http.StatusConflict) && attempt < policyRetries {
			fmt.Fprintf(stderr, "syctl: group %s changed while editing (%v); retrying on the new version\n", name, err)
			continue
		}
		if adminclient.IsStatus(err, http.StatusConflict) {
			return fmt.Errorf("group %s keeps changing under this edit (%d attempts): %w", name, attempt, err)
		}
		if err != nil {
			return err
		}
		printPolicy(stdout, name, g.Policy, g.Version)
		return nil
	}
}

func printPolicy(w io.Writer, group string, p policy.Policy, version int64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	or := func(s, none string) string {
		if s == "" || s == "0" || s == "0s" {
			return none
		}
		return s
	}
	fmt.Fprintf(tw, "group\t%s (version %d)\n", group, version)
	fmt.Fprintf(tw, "percent\t%d\n", p.PercentOrAll())
	if p.MaxPerPeriod > 0 {
		fmt.Fprintf(tw, "max per period\t%d per %s\n", p.MaxPerPeriod, time.Duration(p.Period))
	} else {
		fmt.Fprintf(tw, "max per period\tnone\n")
	}
	fmt.Fprintf(tw, "max in flight\t%s\n", or(strconv.Itoa(p.MaxInFlight), "none"))
	fmt.Fprintf(tw, "timeout\t%s\n", or(time.Duration(p.Timeout).String(), "none"))
	fmt.Fprintf(tw, "windows\t%s\n", or(strings.Join(p.Windows, "; "), "always"))
	if p.HaltFailures > 0 {
		fmt.Fprintf(tw, "halt\twhen %d of the last %d attempts fail\n", p.HaltFailures, p.HaltOf)
	} else {
		fmt.Fprintf(tw, "halt\tnever\n")
	}
	fmt.Fprintf(tw, "floors\t%s\n", or(strings.Join(p.Floors, ", "), "none"))
	fmt.Fprintf(tw, "blocked\t%s\n", or(strings.Join(p.Blocked, ", "), "none"))
	fmt.Fprintf(tw, "pin\t%s\n", or(p.Pin, "none (follows the channel)"))
}

// newRolloutCmd is `syctl rollout status|pause|resume`.
func newRolloutCmd() *cobra.Command {
	return group(&cobra.Command{Use: "rollout COMMAND", Short: "status, pause and resume of a group's rollout"},
		"rollout needs status, pause or resume",
		newRolloutSubCmd("status", "a group's rollout: granted, in flight, complete, failed, rolled back, timed out"),
		newRolloutSubCmd("pause", "stop granting updates to a group"),
		newRolloutSubCmd("resume", "grant updates to a group again (also after a halt)"))
}

// newRolloutSubCmd is `syctl rollout sub`, sub one of status, pause and resume.
func newRolloutSubCmd(sub, short string) *cobra.Command {
	c, af := newAdminCmd(sub+" [--app A] --name G [--version V] [--json]", short)
	var app, name, version string
	var asJSON bool
	fs := c.Flags()
	addAppFlag(fs, &app)
	fs.StringVar(&name, "name", "", "group name")
	fs.StringVar(&version, "version", "", "release (status; default: the group's channel release)")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if err := need(map[string]string{"name": name}); err != nil {
			return err
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		if sub != "status" {
			g, err := cl.SetPaused(ctx, app, name, sub == "pause")
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, g)
			}
			state := "paused"
			if !g.Paused {
				state = "running"
			}
			fmt.Fprintf(stdout, "group %s: rollout %s\n", g.Name, state)
			return nil
		}
		st, err := cl.RolloutStatus(ctx, app, name, version)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, st)
		}
		return printRolloutStatus(stdout, st)
	})
	return c
}

func printRolloutStatus(stdout io.Writer, st adminapi.RolloutReport) error {
	state := "running"
	switch {
	case st.HaltReason != "":
		state = "halted at " + ts(st.HaltedAt) + ": " + st.HaltReason
	case st.Paused:
		state = "paused"
	}
	if st.NoRelease {
		fmt.Fprintf(stdout, "group %s: no release to roll out (%s); rollout %s\n", st.Group, st.Reason, state)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tVERSION\tGRANTED\tIN FLIGHT\tCOMPLETE\tFAILED\tROLLED BACK\tTIMED OUT\tSTATE")
	fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", st.Group, or(st.Version, "all"), st.Granted, st.InFlight, st.Complete,
		st.Failed, st.RolledBack, st.TimedOut, state)
	return tw.Flush()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// newPromoteCmd is `syctl channel promote`.
func newPromoteCmd() *cobra.Command {
	c, af := newAdminCmd("promote [--app A] --from beta --to stable", "make a channel offer the releases of another")
	var app, from, to string
	addAppFlag(c.Flags(), &app)
	c.Flags().StringVar(&from, "from", "", "channel whose releases are promoted")
	c.Flags().StringVar(&to, "to", "", "channel that will offer them")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if err := need(map[string]string{"from": from, "to": to}); err != nil {
			return err
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		ch, err := cl.Promote(ctx, app, from, to)
		if err != nil {
			return err
		}
		for board, r := range ch.Releases {
			fmt.Fprintf(stdout, "channel %s now offers %s on %s\n", ch.Name, r.Version, board)
		}
		return nil
	})
	return c
}
