package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/internal/sqldb"
)

// TestChainsFromIndexedLogs opens a database that an older release left (migrations 1–3:
// status history and events indexed by instance), with two hosts' rows interleaved, and
// checks that migration 4 links them into chains: both read back whole and newest first,
// the instance indexes are gone, and a new check-in links on from the migrated head.
func TestChainsFromIndexedLogs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	if err := sqldb.MigrateTo(ctx, raw, dialect, 3); err != nil {
		t.Fatal(err)
	}
	const app = "e96281a6-d1af-4bde-9a0a-97b76e56dc57"
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	hosts := []string{"m1", "m2"}
	for _, m := range hosts {
		exec(`INSERT INTO instances (app_id, machine_id, boot_id, alias, version, aleph_version, oem, oem_version, board, track,
			group_name, ip, first_check, last_check, status, status_at, update_version, last_error_code)
			VALUES ($1, $2, '', '', '4081.1.0', '', '', '', 'amd64-usr', 'stable', 'stable', '10.0.0.1', 0, 0, 'complete', 0, '', 0)`, app, m)
	}
	for r := range 5 {
		for _, m := range hosts {
			exec(`INSERT INTO instance_status_history (app_id, machine_id, status, version, error_code, created_at)
				VALUES ($1, $2, 'complete', $3, 0, $4)`, app, m, fmt.Sprintf("%s.%d", m, r), r)
			exec(`INSERT INTO events (app_id, machine_id, type, result, error_code, previous_version, version, created_at)
				VALUES ($1, $2, 3, $3, 0, '', '', $4)`, app, m, r, r)
		}
	}

	st, err := Open(ctx, path, func() time.Time { return time.UnixMilli(1000) })
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer raw.Close()
	for _, m := range hosts {
		ev, err := st.ListEvents(ctx, app, m, 0)
		if err != nil || len(ev) != 5 {
			t.Fatalf("%s: %d events, %v", m, len(ev), err)
		}
		for i, e := range ev {
			if e.MachineID != m || e.Result != 4-i {
				t.Fatalf("%s: event %d = %+v, want result %d", m, i, e, 4-i)
			}
		}
		d, err := st.GetInstances(ctx, m, 3)
		if err != nil || len(d) != 1 {
			t.Fatalf("%s: %+v, %v", m, d, err)
		}
		if h := d[0].History; len(h) != 3 || h[0].Version != m+".4" || h[2].Version != m+".2" {
			t.Fatalf("%s: history %+v", m, h)
		}
	}
	var n int
	if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master
		WHERE name IN ('events_instance', 'instance_status_history_instance')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d instance indexes left (%v)", n, err)
	}
	err = st.Checkin(ctx, app, "m1", func(cur *store.Instance) (*store.InstanceUpdate, error) {
		return &store.InstanceUpdate{Instance: *cur, Events: []store.Event{{AppID: app, MachineID: "m1", Type: 3, Result: 9}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := st.ListEvents(ctx, app, "m1", 2); err != nil || len(ev) != 2 || ev[0].Result != 9 || ev[1].Result != 4 {
		t.Errorf("after a new check-in: %+v, %v", ev, err)
	}
}
