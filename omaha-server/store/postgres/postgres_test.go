package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/pgtest"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/storetest"
)

var cluster = pgtest.NewShared(pgtest.Options{})

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

func open(t *testing.T, url string) *postgres.Store {
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, cluster.DB(t)) })
}

func TestTwoProcessesMigrateOneDatabase(t *testing.T) {
	url := cluster.DB(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	if _, err := a.CreateApp(ctx, store.App{ID: "x", Name: "X"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetApp(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	ga, _ := a.Generation(ctx)
	gb, _ := b.Generation(ctx)
	if ga != gb {
		t.Errorf("generations differ: %d, %d", ga, gb)
	}
}

func TestBadURL(t *testing.T) {
	if _, err := postgres.Open(context.Background(), "postgres://127.0.0.1:1/none?connect_timeout=1", postgres.Options{}); err == nil {
		t.Fatal("no error for an unreachable database")
	}
}

// TestStaleRowCacheAcrossReplicas: two stores on one database play two replicas; each
// check-in increments a counter in the row. A replica's cached copy goes stale when the
// other one writes, and no increment may be lost.
func TestStaleRowCacheAcrossReplicas(t *testing.T) {
	url := cluster.DB(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	incr := func(s *postgres.Store) {
		t.Helper()
		err := s.Checkin(ctx, "app", "m", func(cur *store.Instance) (*store.InstanceUpdate, error) {
			in := store.Instance{AppID: "app", MachineID: "m", Status: store.StatusUndefined}
			if cur != nil {
				in = *cur
			}
			in.LastErrorCode++
			return &store.InstanceUpdate{Instance: in, Events: []store.Event{{AppID: "app", MachineID: "m", Type: 1, Result: 1}}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	order := []*postgres.Store{a, a, b, a, b, b, a, a, b}
	for _, s := range order {
		incr(s)
	}
	d, err := b.GetInstances(ctx, "m", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := d[0].LastErrorCode; got != int64(len(order)) {
		t.Errorf("counter %d after %d increments across two replicas", got, len(order))
	}
	ev, _ := a.ListEvents(ctx, "app", "m", 100)
	if len(ev) != len(order) {
		t.Errorf("%d events stored, want %d (one per check-in, none from a lost attempt)", len(ev), len(order))
	}
}

// TestStatementsPlannedPerCall checks that both pools plan each statement for its
// parameters: a generic plan fixed while the tables were small kept scanning instances for
// every check-in once the fleet had grown.
func TestStatementsPlannedPerCall(t *testing.T) {
	s := open(t, cluster.DB(t))
	pool, sqlPool, err := postgres.PlanCacheModes(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if pool != "force_custom_plan" || sqlPool != "force_custom_plan" {
		t.Fatalf("plan_cache_mode %q (check-in pool) and %q (database/sql pool), want force_custom_plan", pool, sqlPool)
	}
}
