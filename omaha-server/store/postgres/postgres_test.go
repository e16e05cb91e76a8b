package postgres_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

func open(t testing.TB, url string) *postgres.Store {
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

func TestTUF(t *testing.T) {
	storetest.RunTUF(t, func(t *testing.T) store.Store { return open(t, cluster.DB(t)) }, false)
}

func TestStoreClocked(t *testing.T) {
	storetest.RunClocked(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := postgres.Open(context.Background(), cluster.DB(t), postgres.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestTokensMigration6 opens a database an older release left (migrations 1–5) holding
// tokens, and checks that migration 6 names them and keeps them working.
func TestTokensMigration6(t *testing.T) {
	ctx := context.Background()
	url := cluster.DB(t)
	raw, err := postgres.MigrateTo(ctx, url, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, tok := range storetest.Migration5Tokens {
		if _, err := raw.ExecContext(ctx, `INSERT INTO tokens (hash, role, description, created_at) VALUES ($1, $2, $3, 1000)`,
			tok.Hash, tok.Role, tok.Description); err != nil {
			t.Fatal(err)
		}
	}
	storetest.TokensAfterMigration6(t, open(t, url))
}

// TestCountsMigration8 opens a database an older release left (migrations 1–6) holding
// instances, and checks that migration 8 counts them.
func TestCountsMigration8(t *testing.T) {
	ctx := context.Background()
	url := cluster.DB(t)
	raw, err := postgres.MigrateTo(ctx, url, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := storetest.Migration6Instances(ctx, raw); err != nil {
		t.Fatal(err)
	}
	storetest.CountsAfterMigration8(t, open(t, url))
}

// TestCountersMigration12 opens a database an older release left (migrations 1–10)
// holding rollout attempts, and checks that migration 12 counts them.
func TestCountersMigration12(t *testing.T) {
	ctx := context.Background()
	url := cluster.DB(t)
	raw, err := postgres.MigrateTo(ctx, url, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := storetest.Migration10Attempts(ctx, raw); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, url, postgres.Options{Now: func() time.Time { return time.UnixMilli(1_700_000_000_000 + 6*3_600_000) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CountersAfterMigration12(t, s)
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

// TestPlanCacheModes checks that the database/sql pool plans each statement for its
// parameters (a generic plan fixed while the tables were small can stay wrong) and that
// the check-in pool plans its statements once per connection.
func TestPlanCacheModes(t *testing.T) {
	s := open(t, cluster.DB(t))
	pool, sqlPool, err := postgres.PlanCacheModes(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if pool != "force_generic_plan" || sqlPool != "force_custom_plan" {
		t.Fatalf("plan_cache_mode %q (check-in pool) and %q (database/sql pool), want force_generic_plan and force_custom_plan", pool, sqlPool)
	}
}

// TestCheckinGenericPlans plans each check-in statement generically, as the check-in pool
// does, on an empty instances table, on a small one without statistics and on a large
// analysed one, and checks that every plan finds the row through the primary key: the
// plan made first is the one a connection keeps.
func TestCheckinGenericPlans(t *testing.T) {
	ctx := context.Background()
	url := cluster.DB(t)
	open(t, url) // migrates
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`SET plan_cache_mode = force_generic_plan`)
	addRows := func(from, to int) {
		exec(`INSERT INTO instances (app_id, machine_id, boot_id, alias, version, aleph_version, oem, oem_version, board, track,
			group_name, ip, first_check, last_check, status, status_at, update_version, last_error_code)
			SELECT 'app', 'm' || i, '', '', '1.0.0', '', '', '', 'amd64-usr', 'stable', 'stable', '10.0.0.1', 0, 0, 'complete', 0, '', 0
			FROM generate_series($1::int, $2::int) AS i`, from, to)
	}
	param := regexp.MustCompile(`\$(\d+)`)
	for _, state := range []string{"empty", "30 rows", "3,000 rows, analysed"} {
		switch state {
		case "30 rows":
			addRows(1, 30)
		case "3,000 rows, analysed":
			addRows(31, 3000)
			exec(`ANALYZE instances`)
		}
		for name, q := range postgres.CheckinStatements() {
			exec(`PREPARE p AS ` + q)
			n := 0
			for _, m := range param.FindAllStringSubmatch(q, -1) {
				v, _ := strconv.Atoi(m[1])
				n = max(n, v)
			}
			args := []string{"'app'", "'m7'"}
			for len(args) < n {
				args = append(args, "'0'")
			}
			rows, err := conn.Query(ctx, `EXPLAIN EXECUTE p(`+strings.Join(args, ", ")+`)`)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var plan []string
			for rows.Next() {
				var l string
				rows.Scan(&l)
				plan = append(plan, l)
			}
			rows.Close()
			exec(`DEALLOCATE p`)
			text := strings.Join(plan, "\n")
			if strings.Contains(text, "Seq Scan on instances") || regexp.MustCompile(`Index.* on instances_(group|version|ip|alias)`).MatchString(text) ||
				(name != "insert" && !strings.Contains(text, "using instances_pkey on instances")) {
				t.Errorf("%s, %s statement: generic plan not through the primary key:\n%s", state, name, text)
			}
		}
	}
}

// TestReplicas runs the several-replica cases with n stores (each its own pools and row
// cache, as n server processes) on one database.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T, n int) []store.Store {
		url := cluster.DB(t)
		stores := make([]store.Store, n)
		for i := range stores {
			stores[i] = open(t, url)
		}
		return stores
	})
}
