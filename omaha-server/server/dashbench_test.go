package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/dashboard"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// The fleet of BenchmarkDashboardQueries. fleetBenchVersion keys the cached database
// under build/bench/ (together with the schema's migration count, so a new migration
// rebuilds it too): bump it when the fleet's shape changes.
const (
	fleetBenchVersion = "dashboard-fleet-v1"
	fleetSize         = 1_000_000
	fleetBudget       = 200 * time.Millisecond
	// fleetSampleEvery and fleetSampleDays shape version_samples: the default sampling
	// interval over the default retention.
	fleetSampleEvery = 10 * time.Minute
	fleetSampleDays  = 90
	// fleetRareVersion runs on fleetRareEvery-th host only: a version search that the
	// version index must find without walking the fleet.
	fleetRareVersion = "3975.2.2"
	fleetRareEvery   = 10_000
)

// fleetNow is the fleet's "now": last checks and samples lie before it, and the
// dashboard's clock is set to it, so the cached file gives the same answers on any day.
var fleetNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

var (
	fleetGroups   = []string{"stable", "beta", "alpha", "edge"}
	fleetVersions = []string{"4081.2.0", "4081.3.0", "4116.0.0", "4116.0.1", "4152.0.0"}
	fleetStatuses = []store.Status{store.StatusComplete, store.StatusUndefined, store.StatusUpdateGranted, store.StatusDownloading,
		store.StatusDownloaded, store.StatusInstalled, store.StatusError, store.StatusRolledBack}
)

// splitmix is a fixed pseudo-random sequence: the fleet is the same in every build.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func fleetMachineID(i int) string {
	return fmt.Sprintf("%016x%016x", splitmix(uint64(i)), splitmix(uint64(i)+1<<40))
}

func fleetAlias(i int) string { return fmt.Sprintf("node-%07d", i) }

func fleetIP(i int) string { return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255) }

// fleetHost is host i's group, version and status: 60% stable, 25% beta, 10% alpha, 5%
// edge; most hosts complete or idle, a few granted, downloading, failed or rolled back.
func fleetHost(i int) (group, version string, status store.Status) {
	r := splitmix(uint64(i) + 1<<50)
	switch g := r % 100; {
	case g < 60:
		group = fleetGroups[0]
	case g < 85:
		group = fleetGroups[1]
	case g < 95:
		group = fleetGroups[2]
	default:
		group = fleetGroups[3]
	}
	version = fleetVersions[(r>>8)%uint64(len(fleetVersions))]
	if i%fleetRareEvery == 0 {
		version = fleetRareVersion
	}
	switch s := (r >> 16) % 100; {
	case s < 55:
		status = store.StatusComplete
	case s < 85:
		status = store.StatusUndefined
	default:
		status = fleetStatuses[2+int(s%uint64(len(fleetStatuses)-2))]
	}
	return group, version, status
}

// schemaMigrations is how many migrations the store applies to a new database.
func schemaMigrations(tb testing.TB) int {
	path := filepath.Join(tb.TempDir(), "schema.db")
	st, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// moduleRoot is the directory holding go.mod, from the working directory up.
func moduleRoot(tb testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// fleetCatalog writes the fleet's application, releases, channels and groups through the
// store.
func fleetCatalog(ctx context.Context, st store.Store) error {
	if _, err := st.CreateApp(ctx, store.App{ID: omaha.FlatcarAppID, Name: "Flatcar"}); err != nil {
		return err
	}
	for _, v := range append([]string{fleetRareVersion}, fleetVersions...) {
		if _, err := st.CreateRelease(ctx, store.Release{AppID: store.FlatcarAppID, Version: v, Board: "amd64-usr",
			FileName: "flatcar_production_update.gz", Size: 1000, SHA256: benchSHA256, URL: "https://mirror.example/" + v + "/flatcar_production_update.gz"}); err != nil {
			return err
		}
	}
	for i, g := range fleetGroups {
		if _, err := st.CreateChannel(ctx, store.Channel{AppID: store.FlatcarAppID, Name: g}); err != nil {
			return err
		}
		if _, err := st.SetChannelRelease(ctx, store.FlatcarAppID, g, "amd64-usr", fleetVersions[len(fleetVersions)-1-i%2]); err != nil {
			return err
		}
		if _, err := st.CreateGroup(ctx, store.Group{AppID: store.FlatcarAppID, Name: g, Track: g, Channel: g, UpdatesEnabled: true}); err != nil {
			return err
		}
	}
	pct := 25
	_, err := st.UpdateGroup(ctx, store.FlatcarAppID, "stable", func(g *store.Group) error {
		g.Policy = policy.Policy{Percent: &pct}
		return nil
	})
	return err
}

// fleetRow is host i's instances row, in fleetColumns' order.
func fleetRow(i int) []any {
	group, version, status := fleetHost(i)
	alias := ""
	if i%4 == 0 {
		alias = fleetAlias(i)
	}
	week := int64(7 * 24 * time.Hour / time.Millisecond)
	last := fleetNow.UnixMilli() - int64(splitmix(uint64(i)+1<<55)%uint64(week))
	var code int64
	if status == store.StatusError {
		code = 2
	}
	// Every 20th host has one status-history row, id i/20+1, the head of its chain.
	var history int64
	if i%20 == 0 {
		history = int64(i/20 + 1)
	}
	return []any{store.FlatcarAppID, fleetMachineID(i), fleetMachineID(i + fleetSize), alias, version, "3602.2.3", "qemu", "",
		"amd64-usr", group, group, fleetIP(i), last - 90*24*3600*1000, last, string(status), last, "", code, history}
}

var fleetColumns = []string{"app_id", "machine_id", "boot_id", "alias", "version", "aleph_version", "oem", "oem_version", "board", "track",
	"group_name", "ip", "first_check", "last_check", "status", "status_at", "update_version", "last_error_code", "last_history_id"}

// fleetHistoryRow is the status-history row of host i (every 20th host has one), nil for none.
func fleetHistoryRow(i int) []any {
	if i%20 != 0 {
		return nil
	}
	_, version, status := fleetHost(i)
	return []any{int64(i/20 + 1), store.FlatcarAppID, fleetMachineID(i), string(status), version, int64(0), fleetNow.UnixMilli() - int64(i%1000)*1000}
}

// fleetSamples is the number of version samples per version, and fleetSampleRow sample i.
var fleetSamples = int(fleetSampleDays * 24 * time.Hour / fleetSampleEvery)

func fleetSampleRow(i int) []any {
	s, v := i/len(fleetVersions), i%len(fleetVersions)
	at := fleetNow.Add(-time.Duration(fleetSamples-1-s) * fleetSampleEvery).UnixMilli()
	// Each version's share rises and falls over the period (a release rolling in).
	share := max(0, 1-float64((s-(v*fleetSamples)/len(fleetVersions)))/float64(fleetSamples))
	return []any{store.FlatcarAppID, at, fleetVersions[v], int64(share * fleetSize / float64(len(fleetVersions)))}
}

// fleetCounts fills the instance counts from the bulk-loaded instances, as migration 8
// does.
const fleetCounts = `INSERT INTO instance_counts (app_id, group_name, version, status, shard, count)
	SELECT app_id, group_name, version, status, 0, COUNT(*) FROM instances GROUP BY app_id, group_name, version, status`

// fleetDB returns the path of the cached million-instance database, building it when it is
// missing: the catalog through the store, then the instances, a status history for every
// 20th host, and 90 days of version samples in bulk (big transactions, prepared
// statements) straight into the file the store created, which is renamed into place only
// when complete.
func fleetDB(b *testing.B) string {
	dir := filepath.Join(moduleRoot(b), "build", "bench")
	path := filepath.Join(dir, fmt.Sprintf("%s-m%d.db", fleetBenchVersion, schemaMigrations(b)))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	tmp := path + ".tmp"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, tmp, func() time.Time { return fleetNow })
	if err != nil {
		b.Fatal(err)
	}
	fail := func(err error) {
		if err != nil {
			st.Close()
			b.Fatal(err)
		}
	}
	fail(fleetCatalog(ctx, st))
	fail(st.Close())

	db, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=synchronous(OFF)&_pragma=journal_mode(WAL)&_pragma=cache_size(-262144)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// beta halted by itself (only a check-in trips a halt, so it is written here).
	if _, err := db.Exec(`UPDATE app_groups SET halt_reason = $1, halted_at = $2 WHERE name = 'beta'`,
		"3 of the last 20 attempts at 4152.0.0 failed", fleetNow.Add(-time.Hour).UnixMilli()); err != nil {
		b.Fatal(err)
	}
	const perTx = 100_000
	bulk := func(n int, query string, args func(i int) []any) {
		for lo := 0; lo < n; lo += perTx {
			tx, err := db.Begin()
			if err != nil {
				b.Fatal(err)
			}
			stmt, err := tx.Prepare(query)
			if err != nil {
				b.Fatal(err)
			}
			for i := lo; i < min(lo+perTx, n); i++ {
				if a := args(i); a != nil {
					if _, err := stmt.Exec(a...); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	bulk(fleetSize, `INSERT INTO instances (`+strings.Join(fleetColumns, ", ")+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`, fleetRow)
	bulk(fleetSize, `INSERT INTO instance_status_history (id, app_id, machine_id, status, version, error_code, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, fleetHistoryRow)
	bulk(fleetSamples*len(fleetVersions), `INSERT INTO version_samples (app_id, at, version, count) VALUES ($1, $2, $3, $4)`, fleetSampleRow)
	if _, err := db.Exec(fleetCounts); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	b.Logf("built %s in %s", path, time.Since(start).Round(time.Second))
	return path
}

// BenchmarkDashboardQueries times each query the dashboard makes against a fleet of a
// million instances on SQLite (built once into build/bench/), and the summary endpoint as
// a whole through server.NewDashboard. Each is reported in ms/op and as a ratio to the
// 200 ms budget (budget-ratio < 1 meets it); the point lookup GetInstances is the
// baseline the others are also reported against (ratio-to-lookup).
func BenchmarkDashboardQueries(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a million-instance fleet; skipped in -short mode")
	}
	path := fleetDB(b)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path, func() time.Time { return fleetNow })
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	benchDashboard(b, st, func() (int, error) {
		return scanCounts(raw.QueryRowContext(ctx, statusCountsByScan, store.FlatcarAppID))
	})
}

// statusCountsByScan is how StatusCounts counted before the instance counts (migration
// 8): a GROUP BY over the instances' covering index. The benchmarks run it as the
// reference the counts table is measured against, in the same run (ratio-to-scan).
const statusCountsByScan = `SELECT COALESCE(SUM(n), 0) FROM (SELECT group_name, status, version, COUNT(*) AS n FROM instances
	WHERE app_id = $1 GROUP BY group_name, status, version) AS c`

func scanCounts(row interface{ Scan(...any) error }) (int, error) {
	var n int
	err := row.Scan(&n)
	return n, err
}

// BenchmarkDashboardQueriesPostgres is BenchmarkDashboardQueries on PostgreSQL (a pgtest
// cluster): the same fleet, loaded with COPY into a fresh database each run (the catalog
// through the store, the rest in bulk, the instance counts as migration 8 fills them).
func BenchmarkDashboardQueriesPostgres(b *testing.B) {
	if testing.Short() {
		b.Skip("loads a million-instance fleet; skipped in -short mode")
	}
	ctx := context.Background()
	url := cluster.DB(b)
	st, err := postgres.Open(ctx, url, postgres.Options{Now: func() time.Time { return fleetNow }})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	if err := fleetCatalog(ctx, st); err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	load := func(table string, cols []string, n int, row func(i int) []any) {
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			for ; i < n; i++ {
				if r := row(i); r != nil {
					i++
					return r, nil
				}
			}
			return nil, nil
		})
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, src); err != nil {
			b.Fatalf("loading %s: %v", table, err)
		}
	}
	load("instances", fleetColumns, fleetSize, fleetRow)
	load("instance_status_history", []string{"id", "app_id", "machine_id", "status", "version", "error_code", "created_at"}, fleetSize, fleetHistoryRow)
	load("version_samples", []string{"app_id", "at", "version", "count"}, fleetSamples*len(fleetVersions), fleetSampleRow)
	for _, q := range []string{
		fleetCounts,
		`UPDATE app_groups SET halt_reason = '3 of the last 20 attempts at 4152.0.0 failed', halted_at = ` +
			fmt.Sprint(fleetNow.Add(-time.Hour).UnixMilli()) + ` WHERE name = 'beta'`,
		`VACUUM ANALYZE`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	b.Logf("loaded %d instances in %s", fleetSize, time.Since(start).Round(time.Second))
	benchDashboard(b, st, func() (int, error) { return scanCounts(conn.QueryRow(ctx, statusCountsByScan, store.FlatcarAppID)) })
}

// benchDashboard times the dashboard's queries on st; scan is the status count by a scan
// of the instances, the reference StatusCounts and the summary are also reported against.
func benchDashboard(b *testing.B, st store.Store, scan func() (int, error)) {
	ctx := context.Background()
	app := store.FlatcarAppID
	tok, hash, err := auth.NewToken()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateToken(ctx, store.Token{Hash: hash, Role: store.RoleViewer, Description: "dashboard benchmark"}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(server.NewDashboard(st, nil, func() time.Time { return fleetNow }))
	defer srv.Close()
	withHistory := fleetMachineID(20 * 4321)

	type query struct {
		name string
		run  func() (int, error)
		// want checks the result's size (a query that finds nothing measures nothing).
		want func(n int) bool
	}
	atLeast := func(k int) func(int) bool { return func(n int) bool { return n >= k } }
	exactly := func(k int) func(int) bool { return func(n int) bool { return n == k } }
	search := func(q string, limit int) func() (int, error) {
		return func() (int, error) {
			r, err := st.SearchInstances(ctx, app, q, limit)
			return len(r), err
		}
	}
	queries := []query{
		{"StatusCountsByScan", scan, exactly(fleetSize)},
		{"GetInstances", func() (int, error) {
			d, err := st.GetInstances(ctx, withHistory, 50)
			if len(d) == 1 {
				return len(d[0].History), err
			}
			return -1, err
		}, exactly(1)},
		{"StatusCounts", func() (int, error) {
			cs, err := st.StatusCounts(ctx, app)
			sum := 0
			for _, c := range cs {
				sum += c.Count
			}
			return sum, err
		}, exactly(fleetSize)},
		{"VersionTimeline", func() (int, error) {
			tl, err := st.VersionTimeline(ctx, app, fleetNow.Add(-30*24*time.Hour))
			return len(tl), err
		}, atLeast(30 * 24 * 6 * len(fleetVersions))},
		{"SearchMachineIDPrefix", search(fleetMachineID(777_777)[:6], 50), atLeast(1)},
		// node-01234…: hosts 123400 to 123499, every 4th has an alias.
		{"SearchAliasPrefix", search(fleetAlias(123_456)[:10], 50), exactly(25)},
		{"SearchIP", search(fleetIP(654_321), 50), atLeast(1)},
		{"SearchVersionCommon", search(fleetVersions[2], 50), exactly(50)},
		// Fewer hosts than the dashboard's largest page: every one of them must be found.
		{"SearchVersionRare", search(fleetRareVersion, 200), exactly(fleetSize / fleetRareEvery)},
		{"SearchNoMatch", search("zz-nobody", 50), exactly(0)},
		{"ListGroups", func() (int, error) {
			gs, err := st.ListGroups(ctx, app)
			return len(gs), err
		}, exactly(len(fleetGroups))},
		{"ListChannels", func() (int, error) {
			cs, err := st.ListChannels(ctx, app)
			return len(cs), err
		}, exactly(len(fleetGroups))},
		{"SummaryEndpoint", func() (int, error) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/dashboard/api/summary", nil)
			req.AddCookie(&http.Cookie{Name: dashboard.CookieName, Value: tok})
			resp, err := srv.Client().Do(req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return 0, fmt.Errorf("summary: HTTP %d", resp.StatusCode)
			}
			var s dashboard.Summary
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				return 0, err
			}
			return s.Fleet, nil
		}, exactly(fleetSize)},
	}
	var lookup, scanned float64
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			n, err := q.run()
			if err != nil {
				b.Fatal(err)
			}
			if !q.want(n) {
				b.Fatalf("%s: result size %d is not what the fleet holds", q.name, n)
			}
			start := time.Now()
			ops := 0
			for b.Loop() {
				if _, err := q.run(); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			per := float64(time.Since(start)) / float64(ops) / float64(time.Millisecond)
			if q.name == "GetInstances" {
				lookup = per
			}
			b.ReportMetric(per, "ms/op")
			b.ReportMetric(per/float64(fleetBudget/time.Millisecond), "budget-ratio")
			if lookup > 0 {
				b.ReportMetric(per/lookup, "ratio-to-lookup")
			}
			switch q.name {
			case "StatusCountsByScan":
				scanned = per
			case "StatusCounts", "SummaryEndpoint":
				b.ReportMetric(per/scanned, "ratio-to-scan")
			}
			if per > float64(fleetBudget/time.Millisecond) {
				b.Logf("OVER BUDGET: %s takes %.1f ms at %d instances (budget %s)", q.name, per, fleetSize, fleetBudget)
			}
		})
	}
}
