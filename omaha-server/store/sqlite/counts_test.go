package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store/internal/sqldb"
	"github.com/switchyard-os/switchyard/omaha-server/store/storetest"
)

// TestCountsMigration8 opens a database an older release left (migrations 1–6) holding
// instances, and checks that migration 8 counts them.
func TestCountsMigration8(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := sqldb.MigrateTo(ctx, raw, dialect, 6); err != nil {
		t.Fatal(err)
	}
	if err := storetest.Migration6Instances(ctx, raw); err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.CountsAfterMigration8(t, st)
}

// TestCountersMigration12 opens a database an older release left (migrations 1–10)
// holding rollout attempts, and checks that migration 12 counts them.
func TestCountersMigration12(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := sqldb.MigrateTo(ctx, raw, dialect, 10); err != nil {
		t.Fatal(err)
	}
	if err := storetest.Migration10Attempts(ctx, raw); err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, path, func() time.Time { return time.UnixMilli(1_700_000_000_000 + 6*3_600_000) })
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.CountersAfterMigration12(t, st)
}
