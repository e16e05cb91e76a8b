package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// counterChecker is implemented by stores that keep rollout counter rows: it compares
// them with counts over the attempts (store/internal/sqldb's CheckRolloutCounters).
type counterChecker interface {
	CheckRolloutCounters(ctx context.Context) error
}

func checkRolloutCounters(t *testing.T, s store.Store, step string) {
	t.Helper()
	c, ok := s.(counterChecker)
	if !ok {
		t.Fatalf("%T has no CheckRolloutCounters: the counter rows cannot be checked", s)
	}
	if err := c.CheckRolloutCounters(context.Background()); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// testRolloutCountersMixed: after every check-in of a mixed workload (grants, re-serves,
// successes, failures, timeouts, a policy edit that changes the bucket width, retention
// deleting attempts) the counter rows equal counts over the attempts, and the grants in
// the period a check-in reads equal the grants the test made in the sliding period.
func testRolloutCountersMixed(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	seed(t, s)
	period := time.Hour
	setPolicy := func() store.Group {
		return must(s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error {
			g.Policy = policy.Policy{MaxPerPeriod: 1000, Period: policy.Duration(period), MaxInFlight: 1000, Timeout: policy.Duration(30 * time.Minute)}
			return nil
		}))(t)
	}
	g := setPolicy()
	var grants []time.Time // when each attempt was granted (every grant goes to a new host)
	var open []string      // granted hosts, oldest first
	var compareFrom time.Time
	checkin := func(machine string, w store.RolloutWrite) {
		t.Helper()
		err := s.RolloutCheckin(ctx, appID, machine, g.ID, func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
			want := 0
			for _, at := range grants {
				if at.After(c.Now().Add(-period)) {
					want++
				}
			}
			if !c.Now().Before(compareFrom) && r.Counters.GrantedInPeriod != want {
				return nil, nil, fmt.Errorf("grants in the period read %d, want %d", r.Counters.GrantedInPeriod, want)
			}
			return &store.InstanceUpdate{Instance: instance(machine, c.Now())}, &w, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		switch {
		case i == 24:
			period = 2 * time.Hour // a new bucket width: the rows are rebuilt
			g = setPolicy()
		case i == 40:
			// Retention deletes ended attempts and attempts open since before the cutoff.
			cutoff := c.Now().Add(-40 * time.Minute)
			p := must(s.Prune(ctx, store.Retention{InstancesBefore: cutoff, EventsBefore: cutoff}))(t)
			if p.Attempts == 0 {
				t.Fatal("retention deleted no attempt: the case tests nothing")
			}
			// Which attempts granted before the cutoff went depends on how they ended: the
			// rows are still checked against the database after each step, and the grants
			// in the period are compared again once the period has moved past the cutoff.
			compareFrom = cutoff.Add(period + time.Millisecond)
		}
		switch i % 5 {
		case 0, 1:
			m := fmt.Sprintf("g%d", i)
			checkin(m, store.RolloutWrite{Grant: "4081.2.0"})
			grants = append(grants, c.Now())
			open = append(open, m)
		case 2:
			if len(open) > 0 {
				checkin(open[len(open)-1], store.RolloutWrite{Grant: "4081.2.0"}) // a re-serve: no new attempt
			}
		case 3:
			if len(open) > 0 {
				checkin(open[0], store.RolloutWrite{Outcome: store.OutcomeSucceeded})
				open = open[1:]
			}
		case 4:
			if len(open) > 0 {
				checkin(open[0], store.RolloutWrite{Outcome: store.OutcomeFailed, OutcomeVersion: "4081.2.0"})
				open = open[1:]
			}
			// A failure from a host with no attempt on record is written already ended.
			m := fmt.Sprintf("f%d", i)
			checkin(m, store.RolloutWrite{Outcome: store.OutcomeFailed, OutcomeVersion: "4081.2.0"})
			grants = append(grants, c.Now())
		}
		checkRolloutCounters(t, s, fmt.Sprintf("step %d", i))
		c.Advance(7*time.Minute + 13*time.Second)
	}
	// The period's edge: a grant read just inside the period (in the bucket its start
	// cuts), then just outside.
	checkin("edge", store.RolloutWrite{Grant: "4081.2.0"})
	grants = append(grants, c.Now())
	c.Advance(period - 10*time.Millisecond)
	checkin("edge-inside", store.RolloutWrite{})
	c.Advance(20 * time.Millisecond)
	checkin("edge-outside", store.RolloutWrite{})
	checkRolloutCounters(t, s, "the period's edge")
}

// ReplicaFactory returns n stores on one fresh database, as n replicas of a server would
// open it (a single-process store may return the same store n times).
type ReplicaFactory func(t *testing.T, n int) []store.Store

// RunReplicas runs the cases of several server processes on one database.
func RunReplicas(t *testing.T, newStores ReplicaFactory) {
	t.Run("RolloutCapsAcrossReplicas", func(t *testing.T) { testRolloutCapsAcrossReplicas(t, newStores(t, 3)) })
}

// testRolloutCapsAcrossReplicas: hosts check in concurrently through several stores on one
// database, each taking a grant when the counters it reads allow one and reporting
// success at its next check-in. The caps hold exactly: the grants in the period reach
// the cap and never pass it, and no check-in ever sees more in flight than the cap.
func testRolloutCapsAcrossReplicas(t *testing.T, stores []store.Store) {
	ctx := context.Background()
	s := stores[0]
	seed(t, s)
	const perPeriod, inFlight = 40, 4
	g := must(s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error {
		g.Policy = policy.Policy{MaxPerPeriod: perPeriod, Period: policy.Duration(24 * time.Hour), MaxInFlight: inFlight}
		return nil
	}))(t)
	const hosts, rounds = 24, 8
	var (
		mu      sync.Mutex
		granted int
		errs    []error
		wg      sync.WaitGroup
	)
	for h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[h%len(stores)]
			machine := fmt.Sprintf("h%d", h)
			at := time.UnixMilli(1_700_000_000_000).UTC()
			for range rounds {
				var got bool
				err := st.RolloutCheckin(ctx, appID, machine, g.ID, func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
					got = false
					if r.Counters.InFlight > inFlight || r.Counters.GrantedInPeriod > perPeriod {
						return nil, nil, fmt.Errorf("counters %+v past the caps", r.Counters)
					}
					in := instance(machine, at)
					if cur != nil && cur.Status == store.StatusUpdateGranted {
						in.Status = store.StatusComplete
						return &store.InstanceUpdate{Instance: in}, &store.RolloutWrite{Outcome: store.OutcomeSucceeded}, nil
					}
					if r.Counters.InFlight < inFlight && r.Counters.GrantedInPeriod < perPeriod {
						got = true
						in.Status, in.UpdateVersion = store.StatusUpdateGranted, "4081.2.0"
						return &store.InstanceUpdate{Instance: in}, &store.RolloutWrite{Grant: "4081.2.0"}, nil
					}
					return &store.InstanceUpdate{Instance: in}, nil, nil
				})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if got {
					granted++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	// Then the hosts check in one at a time, through every replica, until the period's cap
	// is reached: each grant ends at the host's next check-in, so nothing holds a place in
	// flight for good unless a counter ran high.
	for i := 0; i < 4*perPeriod && granted < perPeriod; i++ {
		st, machine := stores[i%len(stores)], fmt.Sprintf("h%d", i%hosts)
		got := false
		err := st.RolloutCheckin(ctx, appID, machine, g.ID, func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
			in := instance(machine, time.UnixMilli(1_700_000_000_000).UTC())
			if cur != nil && cur.Status == store.StatusUpdateGranted {
				in.Status = store.StatusComplete
				return &store.InstanceUpdate{Instance: in}, &store.RolloutWrite{Outcome: store.OutcomeSucceeded}, nil
			}
			got = false
			if r.Counters.InFlight < inFlight && r.Counters.GrantedInPeriod < perPeriod {
				got = true
				in.Status, in.UpdateVersion = store.StatusUpdateGranted, "4081.2.0"
				return &store.InstanceUpdate{Instance: in}, &store.RolloutWrite{Grant: "4081.2.0"}, nil
			}
			return &store.InstanceUpdate{Instance: in}, nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got {
			granted++
		}
	}
	st := must(s.RolloutStatus(ctx, appID, "stable", ""))(t)
	if granted != perPeriod || st.Granted != granted {
		t.Fatalf("%d grants made, %d recorded, want exactly the cap %d", granted, st.Granted, perPeriod)
	}
	checkRolloutCounters(t, s, "after the concurrent check-ins")
}
