package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/omaha-server/server"
)

// dayDuration is a duration flag that also takes whole days ("90d").
type dayDuration struct{ d *time.Duration }

// Type names the value in help.
func (f dayDuration) Type() string { return "duration" }

func (f dayDuration) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f dayDuration) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 36500 {
			return fmt.Errorf("%q: want a whole number of days before d", s)
		}
		*f.d = time.Duration(days) * 24 * time.Hour
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("%q: negative", s)
	}
	*f.d = v
	return nil
}

// keepDuration is a retention flag: 0 means keep (a negative server.Maintenance field).
type keepDuration struct{ dayDuration }

func (f keepDuration) String() string {
	if f.d != nil && *f.d < 0 {
		return "0s"
	}
	return f.dayDuration.String()
}

func (f keepDuration) Set(s string) error {
	if err := f.dayDuration.Set(s); err != nil {
		return err
	}
	if *f.d == 0 {
		*f.d = -1
	}
	return nil
}

// maintenanceFlags are the dashboard, sampling and retention flags of serve.
type maintenanceFlags struct {
	m           server.Maintenance
	noDashboard bool
}

func (f *maintenanceFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.noDashboard, "no-dashboard", false, "do not serve the operator dashboard at /")
	f.m.SampleEvery = server.DefaultSampleEvery
	fs.Var(dayDuration{&f.m.SampleEvery}, "sample-every", "how often to record the version distribution for the dashboard's chart (0: never)")
	f.m.KeepSamples = server.DefaultKeepSamples
	fs.Var(dayDuration{&f.m.KeepSamples}, "keep-samples", "how long version samples are kept")
	f.m.RetainInstances = server.DefaultRetainInstances
	fs.Var(keepDuration{dayDuration{&f.m.RetainInstances}}, "retain-instances", "prune instances not seen for this long, e.g. 90d (0: keep them)")
	f.m.RetainEvents = server.DefaultRetainEvents
	fs.Var(keepDuration{dayDuration{&f.m.RetainEvents}}, "retain-events", "drop events older than this, e.g. 30d; status history is kept (0: keep them)")
	f.m.RetainActivity = server.DefaultRetainActivity
	fs.Var(keepDuration{dayDuration{&f.m.RetainActivity}}, "retain-activity", "drop activity log entries older than this, e.g. 365d (0: keep them)")
	f.m.PruneEvery = server.DefaultPruneEvery
	fs.Var(dayDuration{&f.m.PruneEvery}, "prune-every", "how often retention runs")
}
