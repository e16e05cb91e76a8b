package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// countKey is what StatusCounts counts by.
type countKey struct {
	group, version string
	status         store.Status
}

// statusCounts reads StatusCounts as a map, failing on a key listed twice or a count
// that is not positive (keys at zero are left out).
func statusCounts(t *testing.T, s store.Store, app string) map[countKey]int {
	t.Helper()
	got := map[countKey]int{}
	for _, c := range must(s.StatusCounts(context.Background(), app))(t) {
		k := countKey{c.Group, c.Version, c.Status}
		if _, dup := got[k]; dup || c.Count <= 0 {
			t.Errorf("StatusCounts lists %+v (twice, or not positive)", c)
		}
		got[k] = c.Count
	}
	return got
}

// countedInstances counts the application's instances by listing every one of them: what
// a COUNT(*) GROUP BY over the instances would say.
func countedInstances(t *testing.T, s store.Store, app string) map[countKey]int {
	t.Helper()
	want := map[countKey]int{}
	f := store.InstanceFilter{AppID: app, Limit: 500}
	for {
		page := must(s.ListInstances(context.Background(), f))(t)
		for _, in := range page {
			want[countKey{in.Group, in.Version, in.Status}]++
		}
		if len(page) < f.Limit {
			return want
		}
		f.AfterAppID, f.AfterMachineID = page[len(page)-1].AppID, page[len(page)-1].MachineID
	}
}

func checkCounts(t *testing.T, s store.Store, step string) {
	t.Helper()
	got, want := statusCounts(t, s, appID), countedInstances(t, s, appID)
	if !maps.Equal(got, want) {
		t.Errorf("%s: StatusCounts\n%v\nwant (counted over the instances)\n%v", step, got, want)
	}
}

// testCounts: the counts follow new hosts, moves between groups, versions and statuses
// (plain and counted check-ins), a check-in that fails, and retention; other applications
// are counted apart, and a key that drops to zero is not listed.
func testCounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	must(s.CreateApp(ctx, store.App{ID: "other", Name: "Other"}))(t)
	g := must(s.GetGroup(ctx, appID, "stable"))(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	put := func(app, machine, group, version string, status store.Status, at time.Time) {
		t.Helper()
		err := s.Checkin(ctx, app, machine, func(cur *store.Instance) (*store.InstanceUpdate, error) {
			in := instance(machine, at)
			in.AppID, in.Group, in.Version, in.Status = app, group, version, status
			return &store.InstanceUpdate{Instance: in}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	expect := func(step string, want map[countKey]int) {
		t.Helper()
		if got := statusCounts(t, s, appID); !maps.Equal(got, want) {
			t.Errorf("%s: StatusCounts %v, want %v", step, got, want)
		}
		checkCounts(t, s, step)
	}
	put(appID, "a", "stable", "1.0.0", store.StatusUndefined, t0)
	put(appID, "b", "stable", "1.0.0", store.StatusUndefined, t0)
	put(appID, "c", "beta", "1.0.0", store.StatusComplete, t0.Add(time.Hour))
	put("other", "a", "stable", "1.0.0", store.StatusUndefined, t0)
	expect("new hosts", map[countKey]int{{"stable", "1.0.0", store.StatusUndefined}: 2, {"beta", "1.0.0", store.StatusComplete}: 1})
	if got := statusCounts(t, s, "other"); !maps.Equal(got, map[countKey]int{{"stable", "1.0.0", store.StatusUndefined}: 1}) {
		t.Errorf("other application: %v", got)
	}

	put(appID, "a", "stable", "1.0.0", store.StatusUndefined, t0) // same key: nothing moves
	put(appID, "b", "stable", "1.0.0", store.StatusDownloading, t0)
	put(appID, "c", "stable", "2.0.0", store.StatusComplete, t0.Add(time.Hour))
	expect("moves", map[countKey]int{{"stable", "1.0.0", store.StatusUndefined}: 1, {"stable", "1.0.0", store.StatusDownloading}: 1,
		{"stable", "2.0.0", store.StatusComplete}: 1})

	boom := errors.New("refused")
	err := s.Checkin(ctx, appID, "a", func(cur *store.Instance) (*store.InstanceUpdate, error) { return nil, boom })
	wantErr(t, err, boom)
	err = s.RolloutCheckin(ctx, appID, "b", g.ID, func(cur *store.Instance, _ *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
		in := *cur
		in.Version, in.Status = "2.0.0", store.StatusComplete
		return &store.InstanceUpdate{Instance: in}, &store.RolloutWrite{Outcome: store.OutcomeSucceeded}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.RolloutCheckin(ctx, appID, "d", g.ID, func(cur *store.Instance, _ *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
		in := instance("d", t0)
		in.Version = "1.0.0"
		return &store.InstanceUpdate{Instance: in}, &store.RolloutWrite{Grant: "2.0.0"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expect("counted check-ins", map[countKey]int{{"stable", "1.0.0", store.StatusUndefined}: 2, {"stable", "2.0.0", store.StatusComplete}: 2})

	// Retention takes a, b and d (last seen at t0) and keeps c.
	if p := must(s.Prune(ctx, store.Retention{InstancesBefore: t0.Add(time.Minute)}))(t); p.Instances != 4 {
		t.Errorf("pruned %+v, want 4 instances (3 here, 1 of the other application)", p)
	}
	expect("retention", map[countKey]int{{"stable", "2.0.0", store.StatusComplete}: 1})
	if got := statusCounts(t, s, "other"); len(got) != 0 {
		t.Errorf("other application after retention: %v", got)
	}
	put(appID, "a", "stable", "1.0.0", store.StatusUndefined, t0.Add(2*time.Hour))
	expect("back after retention", map[countKey]int{{"stable", "2.0.0", store.StatusComplete}: 1, {"stable", "1.0.0", store.StatusUndefined}: 1})
}

// testCountsConcurrent: many goroutines check in a small set of hosts at once, plain and
// counted, moving them back and forth between groups, versions and statuses (two
// check-ins often move two hosts between the same two keys in opposite directions, and
// several check in the same new host at once); some check-ins fail, and retention runs
// meanwhile. Afterwards the counts equal a count over the instances.
func testCountsConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	g := must(s.GetGroup(ctx, appID, "stable"))(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	const (
		workers  = 16
		hosts    = 24
		perGroup = 60
	)
	groups := []string{"stable", "beta"}
	versions := []string{"1.0.0", "2.0.0"}
	statuses := []store.Status{store.StatusUndefined, store.StatusDownloading, store.StatusComplete}
	boom := errors.New("refused")
	stop := make(chan struct{})
	var prunes sync.WaitGroup
	prunes.Add(1)
	var pruneErr error
	go func() {
		defer prunes.Done()
		// Hosts whose last check-in was "old" go; the others stay.
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Prune(ctx, store.Retention{InstancesBefore: t0.Add(time.Minute)}); err != nil {
				pruneErr = err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 14))
			for i := range perGroup {
				machine := fmt.Sprintf("host%02d", r.IntN(hosts))
				group, version, status := groups[r.IntN(2)], versions[r.IntN(2)], statuses[r.IntN(3)]
				at := t0.Add(time.Hour)
				if r.IntN(4) == 0 {
					at = t0 // retention may take it
				}
				fail := i%7 == 6
				next := func(cur *store.Instance) (*store.InstanceUpdate, error) {
					if fail {
						return nil, boom
					}
					in := instance(machine, at)
					if cur != nil {
						in = *cur
						in.LastCheck = at
					}
					in.Group, in.Version, in.Status = group, version, status
					return &store.InstanceUpdate{Instance: in,
						History: []store.StatusChange{{Status: status, Version: version, At: at}}}, nil
				}
				var err error
				if r.IntN(3) == 0 {
					err = s.RolloutCheckin(ctx, appID, machine, g.ID, func(cur *store.Instance, _ *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
						u, err := next(cur)
						return u, nil, err
					})
				} else {
					err = s.Checkin(ctx, appID, machine, next)
				}
				if (err != nil) != fail || (fail && !errors.Is(err, boom)) {
					errs <- fmt.Errorf("worker %d, check-in %d (fail %v): %v", w, i, fail, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	prunes.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if pruneErr != nil {
		t.Fatalf("retention: %v", pruneErr)
	}
	checkCounts(t, s, "after concurrent check-ins and retention")
	got := statusCounts(t, s, appID)
	keys := slices.Collect(maps.Keys(got))
	if len(keys) < 2 {
		t.Errorf("only %d keys counted: the test moved too little", len(keys))
	}
	// A final retention run that takes everything leaves no key listed.
	must(s.Prune(ctx, store.Retention{InstancesBefore: t0.Add(2 * time.Hour)}))(t)
	if got := statusCounts(t, s, appID); len(got) != 0 {
		t.Errorf("after retention took every instance: %v", got)
	}
}
