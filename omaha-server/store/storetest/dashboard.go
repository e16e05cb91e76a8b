package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// testGroupVersionTimeline samples twice and reads the distribution of each group and of
// the application: a group's timeline holds only its own instances, and samples older
// than keepSince go from both tables.
func testGroupVersionTimeline(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	put := func(machine, group, version string) {
		t.Helper()
		in := instance(machine, t0)
		in.Group, in.Version = group, version
		if err := s.Checkin(ctx, appID, machine, func(*store.Instance) (*store.InstanceUpdate, error) {
			return &store.InstanceUpdate{Instance: in}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "stable", "4081.1.0")
	put("b", "stable", "4081.1.0")
	put("c", "beta", "4081.2.0")
	must(struct{}{}, s.SampleVersions(ctx, t0, t0.Add(-time.Hour)))(t)
	put("b", "stable", "4081.2.0")
	must(struct{}{}, s.SampleVersions(ctx, t0.Add(time.Minute), t0.Add(-time.Hour)))(t)
	str := func(ss []store.VersionSample) string {
		var out string
		for _, x := range ss {
			out += fmt.Sprintf("%d:%s=%d ", x.At.Sub(t0)/time.Minute, x.Version, x.Count)
		}
		return out
	}
	for _, tc := range []struct {
		name, group, want string
	}{
		{"stable", "stable", "0:4081.1.0=2 1:4081.1.0=1 1:4081.2.0=1 "},
		{"beta", "beta", "0:4081.2.0=1 1:4081.2.0=1 "},
		{"no such group", "nope", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := str(must(s.GroupVersionTimeline(ctx, "{"+appID+"}", tc.group, t0))(t)); got != tc.want {
				t.Errorf("GroupVersionTimeline(%s) = %q, want %q", tc.group, got, tc.want)
			}
		})
	}
	if got, want := str(must(s.VersionTimeline(ctx, appID, t0))(t)), "0:4081.1.0=2 0:4081.2.0=1 1:4081.1.0=1 1:4081.2.0=2 "; got != want {
		t.Errorf("VersionTimeline = %q, want %q", got, want)
	}
	// A sample an hour later drops the first one from both tables.
	must(struct{}{}, s.SampleVersions(ctx, t0.Add(61*time.Minute), t0.Add(30*time.Second)))(t)
	if got, want := str(must(s.GroupVersionTimeline(ctx, appID, "stable", t0.Add(-time.Hour)))(t)), "1:4081.1.0=1 1:4081.2.0=1 61:4081.1.0=1 61:4081.2.0=1 "; got != want {
		t.Errorf("after retention: %q, want %q", got, want)
	}
}

// testListInstancesByLastCheck pages through instances newest check first, with ties on
// the last check broken by machine id, and filters applied.
func testListInstancesByLastCheck(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	put := func(machine string, at time.Duration, status store.Status) {
		t.Helper()
		in := instance(machine, t0.Add(at))
		in.Status = status
		if err := s.Checkin(ctx, appID, machine, func(*store.Instance) (*store.InstanceUpdate, error) {
			return &store.InstanceUpdate{Instance: in}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", 0, store.StatusComplete)
	put("b", 3*time.Minute, store.StatusComplete)
	put("c", time.Minute, store.StatusError)
	put("d", 3*time.Minute, store.StatusComplete)
	put("e", 2*time.Minute, store.StatusComplete)
	walk := func(f store.InstanceFilter) string {
		t.Helper()
		f.ByLastCheck, f.Limit = true, 2
		var got string
		for range 10 {
			page := must(s.ListInstances(ctx, f))(t)
			for _, in := range page {
				got += in.MachineID
			}
			if len(page) < f.Limit {
				return got
			}
			last := page[len(page)-1]
			f.AfterAppID, f.AfterMachineID, f.AfterLastCheck = last.AppID, last.MachineID, last.LastCheck
			got += "|"
		}
		t.Fatal("paging did not end")
		return ""
	}
	if got, want := walk(store.InstanceFilter{AppID: appID}), "bd|ec|a"; got != want {
		t.Errorf("every instance by last check: %q, want %q", got, want)
	}
	if got, want := walk(store.InstanceFilter{AppID: appID, Status: store.StatusComplete}), "bd|ea|"; got != want {
		t.Errorf("complete instances by last check: %q, want %q", got, want)
	}
}
