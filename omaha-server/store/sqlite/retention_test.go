package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	_ "modernc.org/sqlite"
)

// TestRetentionMillionEvents fills a database with 20,000 instances (a quarter not seen for
// 100 days) and 1,000,000 events (half older than 30 days), inserted in bulk, then prunes
// with 90-day instance and 30-day event retention and checks what is left.
func TestRetentionMillionEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("a million events: skipped in -short")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	st, err := sqlite.Open(ctx, path, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const instances, events = 20000, 1000000
	old, recent := now.Add(-100*24*time.Hour).UnixMilli(), now.Add(-time.Hour).UnixMilli()
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	// The rows are written as check-ins write them: each history row and event linked to
	// its instance's previous one, the instance row pointing at the newest. Event i belongs
	// to machine i%instances, so its predecessor is event i-instances.
	insI, _ := tx.Prepare(`INSERT INTO instances (app_id, machine_id, boot_id, alias, version, aleph_version, oem, oem_version, board, track,
		group_name, ip, first_check, last_check, status, status_at, update_version, last_error_code, last_history_id, last_event_id) VALUES
		('a', ?, '', '', '1.0.0', '', '', '', 'amd64-usr', 'stable', 'stable', '10.0.0.1', 0, ?, 'complete', 0, '', 0, ?, ?)`)
	insH, _ := tx.Prepare(`INSERT INTO instance_status_history (id, app_id, machine_id, status, version, error_code, created_at, prev_id)
		VALUES (?, 'a', ?, 'complete', '1.0.0', 0, ?, 0)`)
	insE, _ := tx.Prepare(`INSERT INTO events (id, app_id, machine_id, type, result, error_code, previous_version, version, created_at, prev_id)
		VALUES (?, 'a', ?, 3, 2, 0, '', '1.0.0', ?, ?)`)
	for i := range instances {
		last := recent
		if i%4 == 0 {
			last = old
		}
		m := fmt.Sprintf("m%06d", i)
		newestEvent := i + instances*(events/instances-1) + 1
		if _, err := insI.Exec(m, last, i+1, newestEvent); err != nil {
			t.Fatal(err)
		}
		if _, err := insH.Exec(i+1, m, last); err != nil {
			t.Fatal(err)
		}
	}
	for i := range events {
		at := recent
		if i%2 == 0 {
			at = now.Add(-40 * 24 * time.Hour).UnixMilli()
		}
		prev := 0
		if i >= instances {
			prev = i - instances + 1
		}
		if _, err := insE.Exec(i+1, fmt.Sprintf("m%06d", i%instances), at, prev); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := st.Prune(ctx, store.Retention{InstancesBefore: now.Add(-90 * 24 * time.Hour), EventsBefore: now.Add(-30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("pruned %+v in %s", p, took)
	count := func(q string) int {
		var n int
		if err := raw.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Event i belongs to machine i%20000: the pruned machines (index%4 == 0) own the events
	// with i%4 == 0, all of them old; the recent events (odd i) all belong to live ones.
	if got, want := count(`SELECT COUNT(*) FROM instances`), instances*3/4; got != want {
		t.Errorf("%d instances left, want %d", got, want)
	}
	if got, want := count(`SELECT COUNT(*) FROM events`), events/2; got != want {
		t.Errorf("%d events left, want %d (recent events of live instances)", got, want)
	}
	if got, want := count(`SELECT COUNT(*) FROM instance_status_history`), instances*3/4; got != want {
		t.Errorf("%d history rows left, want %d", got, want)
	}
	if p.Instances != instances/4 || p.Events != events/2 {
		t.Errorf("pruned %+v", p)
	}
	if took > 2*time.Minute {
		t.Errorf("retention took %s", took)
	}
	// A second run finds nothing.
	if p, err := st.Prune(ctx, store.Retention{InstancesBefore: now.Add(-90 * 24 * time.Hour), EventsBefore: now.Add(-30 * 24 * time.Hour)}); err != nil || p != (store.Pruned{}) {
		t.Errorf("second run: %+v, %v", p, err)
	}
}
