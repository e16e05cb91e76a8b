// Package storetest is the one test suite every store.Store implementation passes: Run
// takes a factory that returns a fresh, empty store, and checks the catalog, check-ins,
// instance queries, tokens, the activity log, the error sentinels and the all-or-nothing
// transactions.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Factory returns a fresh, empty store, closed by the caller's cleanup.
type Factory func(t *testing.T) store.Store

const (
	appID = "e96281a6-d1af-4bde-9a0a-97b76e56dc57"
	sha   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// Run runs the suite against the stores new returns.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Apps", testApps},
		{"Releases", testReleases},
		{"Channels", testChannels},
		{"Groups", testGroups},
		{"Generation", testGeneration},
		{"Catalog", testCatalog},
		{"Checkin", testCheckin},
		{"CheckinRollback", testCheckinRollback},
		{"CheckinConcurrent", testCheckinConcurrent},
		{"CheckinConcurrentMixed", testCheckinConcurrentMixed},
		{"ListInstances", testListInstances},
		{"Logs", testLogs},
		{"InstanceColumns", testInstanceColumns},
		{"Tokens", testTokens},
		{"HostKeys", testHostKeys},
		{"GroupVersionTimeline", testGroupVersionTimeline},
		{"ListInstancesByLastCheck", testListInstancesByLastCheck},

		{"CheckinAll", testCheckinAll},
		{"CheckinAllConcurrent", testCheckinAllConcurrent},

		{"Counts", testCounts},
		{"CountsConcurrent", testCountsConcurrent},

		{"Activity", testActivity},
		{"ActivityHalt", testActivityHalt},
		{"Deltas", testDeltas},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// must is called as must(f())(t): it fails t when f returned an error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func release(version, board string) store.Release {
	return store.Release{AppID: appID, Version: version, Board: board, FileName: "flatcar_production_update.gz",
		Size: 1234, SHA256: sha, SHA1: strings.Repeat("a", 40), Hosted: true}
}

// seed creates the Flatcar app, a stable channel at 4081.2.0 (amd64-usr) and a stable
// group following it.
func seed(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	must(s.CreateApp(ctx, store.App{ID: "{" + strings.ToUpper(appID) + "}", Name: "Flatcar"}))(t)
	must(s.CreateRelease(ctx, release("4081.2.0", "amd64-usr")))(t)
	must(s.CreateChannel(ctx, store.Channel{AppID: appID, Name: "stable"}))(t)
	must(s.SetChannelRelease(ctx, appID, "stable", "amd64-usr", "4081.2.0"))(t)
	must(s.CreateGroup(ctx, store.Group{AppID: appID, Name: "stable", Track: "stable", Channel: "stable", UpdatesEnabled: true}))(t)
}

func testApps(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := must(s.CreateApp(ctx, store.App{ID: "{E96281A6-D1AF-4BDE-9A0A-97B76E56DC57}", Name: "Flatcar"}))(t)
	if a.ID != appID {
		t.Errorf("stored ID %q, want normalised %q", a.ID, appID)
	}
	_, err := s.CreateApp(ctx, store.App{ID: appID, Name: "again"})
	wantErr(t, err, store.ErrConflict)
	_, err = s.CreateApp(ctx, store.App{ID: "", Name: "x"})
	wantErr(t, err, store.ErrInvalid)
	got := must(s.GetApp(ctx, "{"+strings.ToUpper(appID)+"}"))(t)
	if got.Name != "Flatcar" || got.CreatedAt.IsZero() {
		t.Errorf("GetApp = %+v", got)
	}
	_, err = s.GetApp(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	must(s.CreateApp(ctx, store.App{ID: "other", Name: "Other"}))(t)
	apps := must(s.ListApps(ctx))(t)
	if len(apps) != 2 || apps[0].ID != appID || apps[1].ID != "other" {
		t.Errorf("ListApps = %+v", apps)
	}
}

func testReleases(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.CreateRelease(ctx, release("1.0.0", "amd64-usr"))
	wantErr(t, err, store.ErrNotFound)
	must(s.CreateApp(ctx, store.App{ID: appID, Name: "Flatcar"}))(t)
	r := release("4081.2.0", "amd64-usr")
	r.TargetsMetadata = []byte(`{"signed":{}}`)
	got := must(s.CreateRelease(ctx, r))(t)
	if got.ID == 0 || !got.HasTargetsMetadata {
		t.Errorf("CreateRelease = %+v", got)
	}
	_, err = s.CreateRelease(ctx, release("4081.2.0", "amd64-usr"))
	wantErr(t, err, store.ErrConflict)
	must(s.CreateRelease(ctx, release("4081.2.0", "arm64-usr")))(t)
	ext := release("4081.3.0", "amd64-usr")
	ext.Hosted, ext.URL, ext.SHA1 = false, "https://mirror.example/amd64-usr/4081.3.0/flatcar_production_update.gz", ""
	must(s.CreateRelease(ctx, ext))(t)

	bad := []struct {
		name string
		edit func(*store.Release)
	}{
		{"no version", func(r *store.Release) { r.Version = "" }},
		{"no board", func(r *store.Release) { r.Board = "" }},
		{"zero size", func(r *store.Release) { r.Size = 0 }},
		{"short sha256", func(r *store.Release) { r.SHA256 = "abc" }},
		{"external without URL", func(r *store.Release) { r.Hosted = false; r.URL = "" }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := release("9.9.9", "amd64-usr")
			tt.edit(&r)
			_, err := s.CreateRelease(ctx, r)
			wantErr(t, err, store.ErrInvalid)
		})
	}

	one := must(s.GetRelease(ctx, "{"+appID+"}", "4081.2.0", "amd64-usr"))(t)
	if string(one.TargetsMetadata) != `{"signed":{}}` || one.SHA256 != sha || !one.Hosted || one.Size != 1234 {
		t.Errorf("GetRelease = %+v", one)
	}
	_, err = s.GetRelease(ctx, appID, "4081.2.0", "riscv-usr")
	wantErr(t, err, store.ErrNotFound)
	list := must(s.ListReleases(ctx, appID))(t)
	if len(list) != 3 || list[2].URL == "" || list[2].Hosted {
		t.Errorf("ListReleases = %+v", list)
	}
	_, err = s.ListReleases(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
}

func testChannels(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, store.App{ID: appID, Name: "Flatcar"}))(t)
	must(s.CreateRelease(ctx, release("4081.2.0", "amd64-usr")))(t)
	must(s.CreateRelease(ctx, release("4081.2.0", "arm64-usr")))(t)
	must(s.CreateRelease(ctx, release("4081.3.0", "amd64-usr")))(t)
	must(s.CreateChannel(ctx, store.Channel{AppID: appID, Name: "stable"}))(t)
	_, err := s.CreateChannel(ctx, store.Channel{AppID: appID, Name: "stable"})
	wantErr(t, err, store.ErrConflict)
	_, err = s.CreateChannel(ctx, store.Channel{AppID: "nope", Name: "stable"})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateChannel(ctx, store.Channel{AppID: appID, Name: " "})
	wantErr(t, err, store.ErrInvalid)
	must(s.SetChannelRelease(ctx, appID, "stable", "amd64-usr", "4081.2.0"))(t)
	must(s.SetChannelRelease(ctx, appID, "stable", "arm64-usr", "4081.2.0"))(t)
	c := must(s.SetChannelRelease(ctx, appID, "stable", "amd64-usr", "4081.3.0"))(t)
	if c.Releases["amd64-usr"].Version != "4081.3.0" || c.Releases["arm64-usr"].Version != "4081.2.0" {
		t.Errorf("SetChannelRelease = %+v", c.Releases)
	}
	_, err = s.SetChannelRelease(ctx, appID, "stable", "arm64-usr", "4081.3.0")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.SetChannelRelease(ctx, appID, "beta", "amd64-usr", "4081.3.0")
	wantErr(t, err, store.ErrNotFound)
	must(s.CreateChannel(ctx, store.Channel{AppID: appID, Name: "beta"}))(t)
	list := must(s.ListChannels(ctx, appID))(t)
	if len(list) != 2 || list[0].Name != "beta" || len(list[0].Releases) != 0 || len(list[1].Releases) != 2 {
		t.Errorf("ListChannels = %+v", list)
	}
	got := must(s.GetChannel(ctx, appID, "stable"))(t)
	if got.Releases["amd64-usr"].SHA256 != sha {
		t.Errorf("GetChannel = %+v", got)
	}
	_, err = s.GetChannel(ctx, appID, "nope")
	wantErr(t, err, store.ErrNotFound)
}

func testGroups(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	_, err := s.CreateGroup(ctx, store.Group{AppID: appID, Name: "other", Track: "stable", Channel: "stable"})
	wantErr(t, err, store.ErrConflict)
	_, err = s.CreateGroup(ctx, store.Group{AppID: appID, Name: "stable", Track: "x", Channel: "stable"})
	wantErr(t, err, store.ErrConflict)
	_, err = s.CreateGroup(ctx, store.Group{AppID: appID, Name: "eu", Track: "eu", Channel: "nope"})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateGroup(ctx, store.Group{AppID: appID, Name: "eu", Track: ""})
	wantErr(t, err, store.ErrInvalid)
	must(s.CreateGroup(ctx, store.Group{AppID: appID, Name: "canary", Track: "canary", Channel: "stable"}))(t)
	g := must(s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error { g.UpdatesEnabled = false; return nil }))(t)
	if g.UpdatesEnabled || g.Channel != "stable" || g.Track != "stable" {
		t.Errorf("UpdateGroup = %+v", g)
	}
	_, err = s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error { g.Channel = "nope"; return nil })
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error { g.Track = "canary"; return nil })
	wantErr(t, err, store.ErrConflict)
	_, err = s.UpdateGroup(ctx, appID, "nope", func(g *store.Group) error { return nil })
	wantErr(t, err, store.ErrNotFound)
	got := must(s.GetGroup(ctx, appID, "stable"))(t)
	if got.UpdatesEnabled || got.Track != "stable" {
		t.Errorf("after failed updates GetGroup = %+v", got)
	}
	list := must(s.ListGroups(ctx, appID))(t)
	if len(list) != 2 || list[0].Name != "canary" || list[1].Name != "stable" {
		t.Errorf("ListGroups = %+v", list)
	}
}

func testGeneration(t *testing.T, s store.Store) {
	ctx := context.Background()
	g0 := must(s.Generation(ctx))(t)
	seed(t, s)
	g1 := must(s.Generation(ctx))(t)
	if g1 != g0+5 {
		t.Errorf("generation %d after 5 catalog writes from %d", g1, g0)
	}
	s.CreateApp(ctx, store.App{ID: appID, Name: "dup"})
	if g := must(s.Generation(ctx))(t); g != g1 {
		t.Errorf("a failed write moved the generation from %d to %d", g1, g)
	}
}

func testCatalog(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	c := must(s.LoadCatalog(ctx))(t)
	if c.Generation != must(s.Generation(ctx))(t) || len(c.Apps) != 1 || len(c.Groups) != 1 || len(c.Channels) != 1 {
		t.Fatalf("LoadCatalog = %+v", c)
	}
	if r := c.Channels[0].Releases["amd64-usr"]; r.Version != "4081.2.0" || r.FileName == "" || r.Size != 1234 {
		t.Errorf("catalog channel release = %+v", r)
	}
	if c.Groups[0].Channel != "stable" || !c.Groups[0].UpdatesEnabled {
		t.Errorf("catalog group = %+v", c.Groups[0])
	}
}

func instance(machine string, at time.Time) store.Instance {
	return store.Instance{AppID: appID, MachineID: machine, BootID: "{boot}", Version: "4081.1.0", AlephVersion: "3000.0.0",
		OEM: "qemu", Board: "amd64-usr", Track: "stable", Group: "stable", IP: "127.0.0.1",
		FirstCheck: at, LastCheck: at, Status: store.StatusUndefined, StatusAt: at}
}

func testCheckin(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	err := s.Checkin(ctx, appID, "m1", func(cur *store.Instance) (*store.InstanceUpdate, error) {
		if cur != nil {
			t.Errorf("new host: cur = %+v", cur)
		}
		in := instance("m1", t0)
		in.Status, in.UpdateVersion = store.StatusUpdateGranted, "4081.2.0"
		return &store.InstanceUpdate{Instance: in,
			History: []store.StatusChange{{Status: store.StatusUpdateGranted, Version: "4081.1.0", At: t0}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Minute)
	err = s.Checkin(ctx, "{"+strings.ToUpper(appID)+"}", "m1", func(cur *store.Instance) (*store.InstanceUpdate, error) {
		if cur == nil || cur.Status != store.StatusUpdateGranted || !cur.FirstCheck.Equal(t0) || cur.UpdateVersion != "4081.2.0" {
			t.Errorf("cur = %+v", cur)
		}
		in := *cur
		in.LastCheck, in.Status, in.StatusAt, in.LastErrorCode = t1, store.StatusError, t1, 1<<28|34
		return &store.InstanceUpdate{Instance: in,
			History: []store.StatusChange{{Status: store.StatusError, Version: "4081.1.0", ErrorCode: 1<<28 | 34, At: t1}},
			Events: []store.Event{
				{AppID: appID, MachineID: "m1", Type: 13, Result: 1, Version: "4081.1.0", At: t1},
				{AppID: appID, MachineID: "m1", Type: 3, Result: 0, ErrorCode: 1<<28 | 34, Version: "4081.1.0", At: t1},
				{AppID: appID, MachineID: "m1", Type: 4242, Result: 77, Version: "4081.1.0", At: t1},
			}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := must(s.GetInstances(ctx, "m1", 0))(t)
	if len(d) != 1 || d[0].Status != store.StatusError || d[0].LastErrorCode != 1<<28|34 || !d[0].LastCheck.Equal(t1) {
		t.Fatalf("GetInstances = %+v", d)
	}
	if h := d[0].History; len(h) != 2 || h[0].Status != store.StatusError || h[1].Status != store.StatusUpdateGranted || h[0].ErrorCode != 1<<28|34 {
		t.Errorf("history (newest first) = %+v", h)
	}
	ev := must(s.ListEvents(ctx, appID, "m1", 0))(t)
	if len(ev) != 3 || ev[0].Type != 4242 || ev[0].Result != 77 || ev[1].ErrorCode != 1<<28|34 || ev[2].Type != 13 {
		t.Errorf("events (newest first) = %+v", ev)
	}
	_, err = s.GetInstances(ctx, "nope", 0)
	wantErr(t, err, store.ErrNotFound)
	// An update for another instance is refused, and nothing is written.
	err = s.Checkin(ctx, appID, "m2", func(cur *store.Instance) (*store.InstanceUpdate, error) {
		return &store.InstanceUpdate{Instance: instance("m3", t1)}, nil
	})
	wantErr(t, err, store.ErrInvalid)
	// nil update writes nothing.
	if err := s.Checkin(ctx, appID, "m4", func(*store.Instance) (*store.InstanceUpdate, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if l := must(s.ListInstances(ctx, store.InstanceFilter{}))(t); len(l) != 1 {
		t.Errorf("instances = %+v", l)
	}
}

func testCheckinRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	boom := errors.New("decide failed")
	err := s.Checkin(ctx, appID, "m1", func(cur *store.Instance) (*store.InstanceUpdate, error) { return nil, boom })
	wantErr(t, err, boom)
	// An event that cannot be written (a NUL byte in TEXT is refused by PostgreSQL; an
	// oversize error code is not, so use a failing value for both: an instance for another
	// machine) rolls back the instance row too.
	err = s.Checkin(ctx, appID, "m1", func(cur *store.Instance) (*store.InstanceUpdate, error) {
		return &store.InstanceUpdate{Instance: instance("m1", t0),
			Events: []store.Event{{AppID: appID, MachineID: "m1", Type: 3, Result: 1, Version: "bad\x00version", At: t0}}}, nil
	})
	if err == nil {
		// SQLite stores NUL bytes; the half-written case is covered by PostgreSQL.
		if _, err := s.GetInstances(ctx, "m1", 0); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, gerr := s.GetInstances(ctx, "m1", 0); !errors.Is(gerr, store.ErrNotFound) {
		t.Errorf("after a failed event write the instance exists: %v", gerr)
	}
}

func testCheckinConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*2)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				// Every worker increments the same counter: no lost update.
				errs <- s.Checkin(ctx, appID, "shared", func(cur *store.Instance) (*store.InstanceUpdate, error) {
					in := instance("shared", t0)
					if cur != nil {
						in = *cur
					}
					in.LastErrorCode++
					return &store.InstanceUpdate{Instance: in}, nil
				})
				errs <- s.Checkin(ctx, appID, fmt.Sprintf("w%d", w), func(cur *store.Instance) (*store.InstanceUpdate, error) {
					return &store.InstanceUpdate{Instance: instance(fmt.Sprintf("w%d", w), t0)}, nil
				})
			}
		}()
	}
	// The first check-in of "shared" may race with another first check-in (there is no row
	// to lock yet); make it exist before the workers start counting.
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	d := must(s.GetInstances(ctx, "shared", 0))(t)
	if got := d[0].LastErrorCode; got < workers*rounds-workers || got > workers*rounds {
		t.Errorf("counter = %d after %d increments: lost updates", got, workers*rounds)
	}
	if l := must(s.ListInstances(ctx, store.InstanceFilter{AppID: appID}))(t); len(l) != workers+1 {
		t.Errorf("%d instances, want %d", len(l), workers+1)
	}
}

func testListInstances(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	put := func(machine, group, version string, status store.Status) {
		t.Helper()
		in := instance(machine, t0)
		in.Group, in.Version, in.Status = group, version, status
		if err := s.Checkin(ctx, appID, machine, func(*store.Instance) (*store.InstanceUpdate, error) {
			return &store.InstanceUpdate{Instance: in}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "stable", "4081.1.0", store.StatusComplete)
	put("b", "stable", "4081.2.0", store.StatusError)
	put("c", "beta", "4081.2.0", store.StatusComplete)
	tests := []struct {
		name   string
		filter store.InstanceFilter
		want   string
	}{
		{"all", store.InstanceFilter{}, "abc"},
		{"app", store.InstanceFilter{AppID: "{" + appID + "}"}, "abc"},
		{"other app", store.InstanceFilter{AppID: "other"}, ""},
		{"group", store.InstanceFilter{Group: "stable"}, "ab"},
		{"version", store.InstanceFilter{Version: "4081.2.0"}, "bc"},
		{"status", store.InstanceFilter{Status: store.StatusComplete}, "ac"},
		{"all filters", store.InstanceFilter{AppID: appID, Group: "stable", Version: "4081.2.0", Status: store.StatusError}, "b"},
		{"limit", store.InstanceFilter{Limit: 2}, "ab"},
		{"page after a", store.InstanceFilter{AfterAppID: appID, AfterMachineID: "a", Limit: 1}, "b"},
		{"page after b, app in braces", store.InstanceFilter{AfterAppID: "{" + appID + "}", AfterMachineID: "b"}, "c"},
		{"page after the last", store.InstanceFilter{AfterAppID: appID, AfterMachineID: "c"}, ""},
		{"page after a with a filter", store.InstanceFilter{Status: store.StatusComplete, AfterAppID: appID, AfterMachineID: "a"}, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			for _, in := range must(s.ListInstances(ctx, tt.filter))(t) {
				got += in.MachineID
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// testCheckinConcurrentMixed runs many check-ins at once (a group-committing store puts
// them in shared transactions) where every third one fails: the failures write nothing,
// the others everything.
func testCheckinConcurrentMixed(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	const n = 60
	boom := errors.New("refused")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := fmt.Sprintf("mixed%d", i)
			errs[i] = s.Checkin(ctx, appID, m, func(cur *store.Instance) (*store.InstanceUpdate, error) {
				if i%3 == 0 {
					return nil, boom
				}
				return &store.InstanceUpdate{Instance: instance(m, t0),
					History: []store.StatusChange{{Status: store.StatusUndefined, Version: "4081.1.0", At: t0}},
					Events:  []store.Event{{AppID: appID, MachineID: m, Type: 3, Result: 1, Version: "4081.1.0", At: t0}}}, nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		m := fmt.Sprintf("mixed%d", i)
		d, gerr := s.GetInstances(ctx, m, 0)
		ev, _ := s.ListEvents(ctx, appID, m, 0)
		if i%3 == 0 {
			if !errors.Is(err, boom) || !errors.Is(gerr, store.ErrNotFound) || len(ev) != 0 {
				t.Errorf("%s: err %v, instance err %v, %d events: want the refusal and nothing written", m, err, gerr, len(ev))
			}
			continue
		}
		if err != nil || gerr != nil || len(d[0].History) != 1 || len(ev) != 1 {
			t.Errorf("%s: err %v, instance err %v, %+v, %d events", m, err, gerr, d, len(ev))
		}
	}
}
