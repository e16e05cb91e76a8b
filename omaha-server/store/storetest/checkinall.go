package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// oemAppID is the second application of the multi-app cases; it sorts after appID, so a
// failure of its write comes after appID's was written in the same transaction.
const oemAppID = "oem-extension"

// seedTwoApps adds to seed an application oemAppID with a group "stable", and gives both
// groups a counted policy when counted is set. It returns the two groups.
func seedTwoApps(t *testing.T, s store.Store, counted bool) (store.Group, store.Group) {
	t.Helper()
	ctx := context.Background()
	seed(t, s)
	must(s.CreateApp(ctx, store.App{ID: oemAppID, Name: "OEM"}))(t)
	must(s.CreateGroup(ctx, store.Group{AppID: oemAppID, Name: "stable", Track: "stable", UpdatesEnabled: true}))(t)
	var gs [2]store.Group
	for i, app := range []string{appID, oemAppID} {
		gs[i] = must(s.UpdateGroup(ctx, app, "stable", func(g *store.Group) error {
			if counted {
				g.Policy = policy.Policy{MaxInFlight: 1000}
			}
			return nil
		}))(t)
	}
	return gs[0], gs[1]
}

func instanceOf(app, machine string, at time.Time) store.Instance {
	in := instance(machine, at)
	in.AppID = app
	return in
}

// testCheckinAll: a request's apps (one counted, one plain) are written together; when
// the later one fails after the earlier one was written in the transaction, neither is,
// nor the earlier one's grant.
func testCheckinAll(t *testing.T, s store.Store) {
	ctx := context.Background()
	g, _ := seedTwoApps(t, s, false)
	g = must(s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error {
		g.Policy = policy.Policy{MaxInFlight: 10}
		return nil
	}))(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	boom := errors.New("the second write failed")
	calls := 0
	apps := func(fail bool) []store.AppCheckin {
		return []store.AppCheckin{
			// Listed first, written second (the transaction takes apps in lock order).
			{AppID: oemAppID, MachineID: "m1", Decide: func(cur *store.Instance) (*store.InstanceUpdate, error) {
				if fail {
					return nil, boom
				}
				return &store.InstanceUpdate{Instance: instanceOf(oemAppID, "m1", t0),
					Events: []store.Event{{AppID: oemAppID, MachineID: "m1", Type: 3, Result: 2, At: t0}}}, nil
			}},
			{AppID: "{" + appID + "}", MachineID: "m1", GroupID: g.ID, Rollout: func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
				calls++
				in := instanceOf(appID, "m1", t0)
				in.Status, in.UpdateVersion = store.StatusUpdateGranted, "4081.2.0"
				return &store.InstanceUpdate{Instance: in,
					Events: []store.Event{{AppID: appID, MachineID: "m1", Type: 3, Result: 2, At: t0}}}, &store.RolloutWrite{Grant: "4081.2.0"}, nil
			}},
		}
	}
	wantErr(t, s.CheckinAll(ctx, apps(true)), boom)
	if calls == 0 {
		t.Fatal("the counted app was not decided before the failing one")
	}
	if _, err := s.GetInstances(ctx, "m1", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a failed request: instances of m1: %v, want none", err)
	}
	if st := must(s.RolloutStatus(ctx, appID, "stable", ""))(t); st.Granted != 0 {
		t.Fatalf("after a failed request: %+v, want no grant", st)
	}
	checkCounts(t, s, "failed request")

	if err := s.CheckinAll(ctx, apps(false)); err != nil {
		t.Fatal(err)
	}
	d := must(s.GetInstances(ctx, "m1", 0))(t)
	if len(d) != 2 || d[0].AppID != appID || d[1].AppID != oemAppID || d[0].Status != store.StatusUpdateGranted {
		t.Fatalf("instances of m1: %+v", d)
	}
	for _, app := range []string{appID, oemAppID} {
		if ev := must(s.ListEvents(ctx, app, "m1", 10))(t); len(ev) != 1 {
			t.Fatalf("%s: %d events, want 1", app, len(ev))
		}
	}
	if st := must(s.RolloutStatus(ctx, appID, "stable", ""))(t); st.Granted != 1 || st.InFlight != 1 {
		t.Fatalf("rollout %+v, want one grant in flight", st)
	}
	checkCounts(t, s, "two-app request")

	err := s.CheckinAll(ctx, []store.AppCheckin{{AppID: appID, MachineID: "m1"}})
	wantErr(t, err, store.ErrInvalid)
}

// testCheckinAllConcurrent: many requests, each carrying the same two counted groups'
// apps in either order for a few shared machines, all commit (no deadlock between the
// group rows, the instance rows or the counts), and every grant is counted once.
func testCheckinAllConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	ga, gb := seedTwoApps(t, s, true)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	const workers, rounds, machines = 8, 12, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				machine := fmt.Sprintf("m%d", (w+r)%machines)
				app := func(id string, g store.Group) store.AppCheckin {
					return store.AppCheckin{AppID: id, MachineID: machine, GroupID: g.ID,
						Rollout: func(cur *store.Instance, ro *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
							in := instanceOf(id, machine, t0)
							if cur != nil {
								in = *cur
							}
							in.LastErrorCode++ // counts the writes: none may be lost
							return &store.InstanceUpdate{Instance: in}, &store.RolloutWrite{Grant: "4081.2.0"}, nil
						}}
				}
				apps := []store.AppCheckin{app(appID, ga), app(oemAppID, gb)}
				if w%2 == 1 {
					apps[0], apps[1] = apps[1], apps[0]
				}
				errs <- s.CheckinAll(ctx, apps)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var writes int64
	for m := range machines {
		for _, d := range must(s.GetInstances(ctx, fmt.Sprintf("m%d", m), 0))(t) {
			writes += d.LastErrorCode
		}
	}
	if writes != 2*workers*rounds {
		t.Fatalf("%d instance writes recorded, want %d", writes, 2*workers*rounds)
	}
	for _, app := range []string{appID, oemAppID} {
		if st := must(s.RolloutStatus(ctx, app, "stable", ""))(t); st.InFlight != machines || st.Granted != machines {
			t.Fatalf("%s: %+v, want %d grants in flight (a re-grant counts once)", app, st, machines)
		}
	}
	checkCounts(t, s, "concurrent two-app requests")
}
