package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
)

const rolloutUsage = `syctl group policy set --app A --name G [--percent N] [--max-per-period N --period D] [--max-in-flight N]
    [--install-timeout D] [--window "Mon-Fri 09:00 8h Europe/Berlin"]... [--clear-windows] [--halt-failures N --halt-of M]
    [--floor V]... [--clear-floors] [--block V]... [--unblock V]... [--pin V | --unpin] [--clear-caps]
syctl group policy show --app A --name G [--json]
syctl rollout status|pause|resume --app A --name G [--version V] [--json]
syctl channel promote --app A --from beta --to stable
D is a duration: 90s, 30m, 12h, 7d; 0 clears the setting.`

// policyRetries bounds how often `group policy set` re-reads and re-applies its change
// when another operator wrote the group in between.
const policyRetries = 3

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// dayDuration is a duration flag that also takes whole days ("7d").
type dayDuration struct {
	d   time.Duration
	set bool
}

func (d *dayDuration) String() string { return d.d.String() }
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
	windows, floors, block, unblock                          multiFlag
	clearWindows, clearFloors, clearCaps, unpin              bool
	pin                                                      string
}

func (e *policyEdits) register(fs *flag.FlagSet) {
	fs.Var(&e.percent, "percent", "percentage of hosts offered the release (0-100)")
	fs.Var(&e.maxPerPeriod, "max-per-period", "at most this many grants per --period (0: no cap)")
	fs.Var(&e.period, "period", "the period of --max-per-period")
	fs.Var(&e.maxInFlight, "max-in-flight", "at most this many hosts updating at once (0: no cap)")
	fs.Var(&e.timeout, "install-timeout", "a grant not installed within this long counts as failed (0: never)")
	fs.Var(&e.windows, "window", `maintenance window "Mon-Fri 09:00 8h Europe/Berlin" (repeatable; adds)`)
	fs.BoolVar(&e.clearWindows, "clear-windows", false, "remove every maintenance window first")
	fs.Var(&e.haltFailures, "halt-failures", "halt the rollout when this many of the last --halt-of attempts failed (0: never)")
	fs.Var(&e.haltOf, "halt-of", "how many recent attempts --halt-failures looks at (default: --halt-failures)")
	fs.Var(&e.floors, "floor", "a version every host must pass through (repeatable; adds)")
	fs.BoolVar(&e.clearFloors, "clear-floors", false, "remove every floor first")
	fs.Var(&e.block, "block", "a version never offered (repeatable)")
	fs.Var(&e.unblock, "unblock", "offer a blocked version again (repeatable)")
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

// runPolicy runs `group policy set|show`; args start after "group policy".
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 || (args[0] != "set" && args[0] != "show") {
		return fmt.Errorf("%w: group policy needs set or show", errUsage)
	}
	sub := args[0]
	fs, af := newAdminFlagSet("group policy "+sub, stderr)
	var app, name string
	var asJSON bool
	addAppFlag(fs, &app)
	fs.StringVar(&name, "name", "", "group name")
	e := &policyEdits{}
	if sub == "set" {
		e.register(fs)
	} else {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}
	pos, err := parse(fs, args[1:], stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if err := need(map[string]string{"name": name}); err != nil {
		return err
	}
	if sub == "set" && !e.timeout.set && af.timeout > 0 {
		// Before --timeout meant the request timeout everywhere, here it set the policy.
		fmt.Fprintln(stderr, "syctl: note: --timeout is the request timeout; the policy's install timeout is --install-timeout")
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := af.withTimeout(ctx)
	defer cancel()
	if sub == "show" {
		cur, err := c.GetPolicy(ctx, app, name)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, cur)
		}
		printPolicy(stdout, name, cur.Policy, *cur.Version)
		return nil
	}
	// Read, modify, write with the version read; on a conflict start over from a fresh
	// read, so the other operator's edit is kept and ours applied on top of it.
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

// runRollout runs `rollout status|pause|resume`.
func runRollout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: rollout needs status, pause or resume", errUsage)
	}
	sub := args[1]
	if sub != "status" && sub != "pause" && sub != "resume" {
		return fmt.Errorf("%w: unknown command %q", errUsage, "rollout "+sub)
	}
	fs, af := newAdminFlagSet("rollout "+sub, stderr)
	var app, name, version string
	var asJSON bool
	addAppFlag(fs, &app)
	fs.StringVar(&name, "name", "", "group name")
	fs.StringVar(&version, "version", "", "release (status; default: the group's channel release)")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	pos, err := parse(fs, args[2:], stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if err := need(map[string]string{"name": name}); err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := af.withTimeout(ctx)
	defer cancel()
	if sub != "status" {
		g, err := c.SetPaused(ctx, app, name, sub == "pause")
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
	st, err := c.RolloutStatus(ctx, app, name, version)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, st)
	}
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
	defer tw.Flush()
	fmt.Fprintln(tw, "GROUP\tVERSION\tGRANTED\tIN FLIGHT\tCOMPLETE\tFAILED\tROLLED BACK\tTIMED OUT\tSTATE")
	fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", st.Group, or(st.Version, "all"), st.Granted, st.InFlight, st.Complete,
		st.Failed, st.RolledBack, st.TimedOut, state)
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// runPromote runs `channel promote`; args start after "channel promote".
func runPromote(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("channel promote", stderr)
	var app, from, to string
	addAppFlag(fs, &app)
	fs.StringVar(&from, "from", "", "channel whose releases are promoted")
	fs.StringVar(&to, "to", "", "channel that will offer them")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if err := need(map[string]string{"from": from, "to": to}); err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := af.withTimeout(ctx)
	defer cancel()
	ch, err := c.Promote(ctx, app, from, to)
	if err != nil {
		return err
	}
	for board, r := range ch.Releases {
		fmt.Fprintf(stdout, "channel %s now offers %s on %s\n", ch.Name, r.Version, board)
	}
	return nil
}
