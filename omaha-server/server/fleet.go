package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/dashboard"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// NewDashboard is the operator page over the store (for Config.Dashboard): status counts,
// instance search and the version timeline from the store's fleet queries, rollout state
// from the groups' rows, sign-in with the admin API's tokens.
// Mounted by New, its page acts through the server's admin API (see package dashboard).
func NewDashboard(st store.Store, logger *slog.Logger, now func() time.Time) http.Handler {
	src := fleetSource{st}
	d := dashboard.New(dashboard.Config{
		Source: src, Rollouts: src, Tokens: st, Hash: auth.Hash, Logger: logger, Now: now,
	})
	return actingDashboard{Handler: d.Handler(), d: d}
}

// actingDashboard is NewDashboard's handler: read-only on its own, acting once New hands
// it the admin API (withAdmin).
type actingDashboard struct {
	http.Handler
	d *dashboard.Dashboard
}

// withAdmin returns the dashboard h acting through api when h is NewDashboard's, else h.
func withAdmin(h http.Handler, api *adminapi.API) http.Handler {
	a, ok := h.(actingDashboard)
	if !ok {
		return h
	}
	r := mux.NewRouter()
	api.Register(r)
	return a.d.WithAdmin(r).Handler()
}

// fleetSource adapts store.Store to dashboard.Source and dashboard.Rollouts (the
// dashboard package keeps its own types so it does not depend on how they are stored).
type fleetSource struct{ store.Store }

func (f fleetSource) StatusCounts(ctx context.Context, appID string) ([]dashboard.StatusCount, error) {
	cs, err := f.Store.StatusCounts(ctx, appID)
	out := make([]dashboard.StatusCount, len(cs))
	for i, c := range cs {
		out[i] = dashboard.StatusCount{Group: c.Group, Status: c.Status, Version: c.Version, Count: c.Count}
	}
	return out, err
}

func (f fleetSource) VersionTimeline(ctx context.Context, appID string, since time.Time) ([]dashboard.VersionSample, error) {
	ss, err := f.Store.VersionTimeline(ctx, appID, since)
	out := make([]dashboard.VersionSample, len(ss))
	for i, s := range ss {
		out[i] = dashboard.VersionSample{At: s.At, Version: s.Version, Count: s.Count}
	}
	return out, err
}

func (f fleetSource) GroupVersionTimeline(ctx context.Context, appID, group string, since time.Time) ([]dashboard.VersionSample, error) {
	ss, err := f.Store.GroupVersionTimeline(ctx, appID, group, since)
	out := make([]dashboard.VersionSample, len(ss))
	for i, s := range ss {
		out[i] = dashboard.VersionSample{At: s.At, Version: s.Version, Count: s.Count}
	}
	return out, err
}

func (f fleetSource) RolloutStates(ctx context.Context, appID string) ([]dashboard.RolloutState, error) {
	gs, err := f.Store.ListGroups(ctx, appID)
	out := make([]dashboard.RolloutState, len(gs))
	for i, g := range gs {
		out[i] = dashboard.RolloutState{Group: g.Name, Paused: g.Paused, HaltReason: g.HaltReason, Percent: g.Policy.PercentOrAll()}
	}
	return out, err
}

// Maintenance is the background work of a server: sampling the version distribution for
// the dashboard's chart and applying the retention policy.
type Maintenance struct {
	// SampleEvery is the sampling interval (DefaultSampleEvery when 0, none when < 0).
	SampleEvery time.Duration
	// KeepSamples bounds the samples' age (DefaultKeepSamples when 0).
	KeepSamples time.Duration
	// RetainInstances prunes instances not seen for this long (DefaultRetainInstances
	// when 0; < 0 keeps them).
	RetainInstances time.Duration
	// RetainEvents drops events and ended rollout attempts older than this
	// (DefaultRetainEvents when 0; < 0 keeps them).
	RetainEvents time.Duration
	// RetainActivity drops activity log entries older than this (DefaultRetainActivity
	// when 0; < 0 keeps them).
	RetainActivity time.Duration
	// PruneEvery is the retention interval (DefaultPruneEvery when 0).
	PruneEvery time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Defaults of Maintenance.
const (
	DefaultSampleEvery = 10 * time.Minute
	DefaultKeepSamples = 90 * 24 * time.Hour
	DefaultPruneEvery  = time.Hour
	// Retention is on by default, so anonymous Omaha traffic (any machine id can check
	// in) cannot grow the database without bound. An instance of a host that checks in
	// hourly is refreshed long before it ages out; 90 days of events and attempts outlast
	// any rollout's halt and cap counters.
	DefaultRetainInstances = 90 * 24 * time.Hour
	DefaultRetainEvents    = 90 * 24 * time.Hour
	// The activity log is kept as long as events: it explains what they show.
	DefaultRetainActivity = DefaultRetainEvents
)

// RunMaintenance samples and prunes st at start and then on its intervals, until ctx
// ends. Failures are logged and retried at the next tick; several replicas may run it
// (a sample at the same millisecond is one row; pruning is idempotent).
func RunMaintenance(ctx context.Context, st store.Store, m Maintenance) {
	if m.SampleEvery == 0 {
		m.SampleEvery = DefaultSampleEvery
	}
	if m.KeepSamples <= 0 {
		m.KeepSamples = DefaultKeepSamples
	}
	if m.PruneEvery <= 0 {
		m.PruneEvery = DefaultPruneEvery
	}
	if m.RetainInstances == 0 {
		m.RetainInstances = DefaultRetainInstances
	}
	if m.RetainEvents == 0 {
		m.RetainEvents = DefaultRetainEvents
	}
	if m.RetainActivity == 0 {
		m.RetainActivity = DefaultRetainActivity
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	prune := m.RetainInstances > 0 || m.RetainEvents > 0 || m.RetainActivity > 0
	sample := func() {
		now := m.Now()
		if err := st.SampleVersions(ctx, now, now.Add(-m.KeepSamples)); err != nil && ctx.Err() == nil {
			m.Logger.Error("sampling the version distribution", "err", err)
		}
	}
	pruneOnce := func() {
		now := m.Now()
		var r store.Retention
		if m.RetainInstances > 0 {
			r.InstancesBefore = now.Add(-m.RetainInstances)
		}
		if m.RetainEvents > 0 {
			r.EventsBefore = now.Add(-m.RetainEvents)
		}
		if m.RetainActivity > 0 {
			r.ActivityBefore = now.Add(-m.RetainActivity)
		}
		start := time.Now()
		p, err := st.Prune(ctx, r)
		if err != nil {
			if ctx.Err() == nil {
				m.Logger.Error("retention", "err", err)
			}
			return
		}
		m.Logger.Info("retention", "instances", p.Instances, "history", p.History, "events", p.Events, "attempts", p.Attempts, "activity", p.Activity,
			"took", time.Since(start).Round(time.Millisecond))
	}
	var sampleC, pruneC <-chan time.Time
	if m.SampleEvery > 0 {
		sample()
		t := time.NewTicker(m.SampleEvery)
		defer t.Stop()
		sampleC = t.C
	}
	if prune {
		pruneOnce()
		t := time.NewTicker(m.PruneEvery)
		defer t.Stop()
		pruneC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sampleC:
			sample()
		case <-pruneC:
			pruneOnce()
		}
	}
}
