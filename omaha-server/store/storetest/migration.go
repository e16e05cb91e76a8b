package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Migration5Tokens are the rows TokensAfterMigration6 expects: what `INSERT INTO tokens
// (hash, role, description, created_at)` wrote before migration 6 (names, expiry, use
// and revocation) existed.
var Migration5Tokens = []struct{ Hash, Role, Description string }{
	{strings.Repeat("ab", 32), "admin", "deploy pipeline"},
	{strings.Repeat("cd", 32), "viewer", strings.Repeat("d", 100)},
	{strings.Repeat("ef", 32), "viewer", ""},
}

// TokensAfterMigration6 checks a store opened on a database that held Migration5Tokens
// when it was at migration 5: each token keeps working, is named after the first
// MaxTokenName characters of its description, and never expires.
func TokensAfterMigration6(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	ts, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != len(Migration5Tokens) {
		t.Fatalf("%d tokens after migration, want %d", len(ts), len(Migration5Tokens))
	}
	for i, old := range Migration5Tokens {
		want := old.Description
		if len(want) > store.MaxTokenName {
			want = want[:store.MaxTokenName]
		}
		got := ts[i]
		if got.Name != want || got.Description != old.Description || string(got.Role) != old.Role ||
			!got.ExpiresAt.IsZero() || !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
			t.Errorf("token %d after migration: %+v, want name %q", i, got, want)
		}
		if _, err := s.LookupToken(ctx, old.Hash); err != nil {
			t.Errorf("token %d stopped working: %v", i, err)
		}
	}
}

// Migration6Instances writes instances into a database at migration 6 the way a release
// before the instance counts did (rows of instances only), for CountsAfterMigration8:
// 30 hosts of appID over two groups, three versions and two statuses, and 2 of another
// application.
func Migration6Instances(ctx context.Context, db *sql.DB) error {
	for i := range 32 {
		app, group := appID, []string{"stable", "beta"}[i%2]
		if i >= 30 {
			app = "other"
		}
		version := []string{"1.0.0", "2.0.0", "3.0.0"}[i%3]
		status := []store.Status{store.StatusComplete, store.StatusError}[i%5/4]
		if _, err := db.ExecContext(ctx, `INSERT INTO instances (app_id, machine_id, boot_id, alias, version, aleph_version, oem,
			oem_version, board, track, group_name, ip, first_check, last_check, status, status_at, update_version, last_error_code)
			VALUES ($1, $2, '', '', $3, '', '', '', 'amd64-usr', $4, $4, '10.0.0.1', 1000, 1000, $5, 1000, '', 0)`,
			app, fmt.Sprintf("m%02d", i), version, group, string(status)); err != nil {
			return err
		}
	}
	return nil
}

// CountsAfterMigration8 checks a store opened on a database that held Migration6Instances
// at migration 6: migration 8 counted them, and the counts move with the next check-in.
func CountsAfterMigration8(t *testing.T, s store.Store) {
	t.Helper()
	got := statusCounts(t, s, appID)
	if n := sum(got); n != 30 {
		t.Errorf("%d instances counted after the migration, want 30: %v", n, got)
	}
	checkCounts(t, s, "after migration 8")
	if n := sum(statusCounts(t, s, "other")); n != 2 {
		t.Errorf("other application: %d counted, want 2", n)
	}
	err := s.Checkin(context.Background(), appID, "m00", func(cur *store.Instance) (*store.InstanceUpdate, error) {
		// PostgreSQL's first attempt may guess a new host (nil); its insert then loses.
		in := instance("m00", time.UnixMilli(1000))
		if cur != nil {
			in = *cur
		}
		in.Status = store.StatusDownloading
		return &store.InstanceUpdate{Instance: in}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, s, "a check-in after migration 8")
}

func sum(m map[countKey]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// Migration10Attempts writes a counted group's rollout attempts into a database at
// migration 10 the way a release before the counter rows did (rows of rollout_attempts
// only), for CountersAfterMigration12: 3 open, 2 succeeded and 1 timed out, granted an
// hour apart from 1,700,000,000,000 ms on.
func Migration10Attempts(ctx context.Context, db *sql.DB) error {
	stmts := []string{
		`INSERT INTO apps (id, name, created_at) VALUES ('` + appID + `', 'Flatcar', 1000)`,
		`INSERT INTO app_groups (app_id, name, track, updates_enabled, created_at, updated_at, policy)
			VALUES ('` + appID + `', 'stable', 'stable', TRUE, 1000, 1000, '{"max_per_period":100,"period":"3h","max_in_flight":10}')`,
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	for i, outcome := range []string{store.OutcomePending, store.OutcomeSucceeded, store.OutcomePending, store.OutcomeTimedOut, store.OutcomeSucceeded, store.OutcomePending} {
		granted := int64(1_700_000_000_000) + int64(i)*3_600_000
		ended := granted + 60_000
		if outcome == store.OutcomePending {
			ended = 0
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO rollout_attempts (group_id, app_id, machine_id, version, outcome, granted_at, ended_at)
			SELECT id, app_id, $1, '4081.2.0', $2, $3, $4 FROM app_groups`, fmt.Sprintf("m%d", i), outcome, granted, ended); err != nil {
			return err
		}
	}
	return nil
}

// CountersAfterMigration12 checks a store opened on a database that held
// Migration10Attempts at migration 10, with its clock at 1,700,000,000,000 ms + 6 h:
// migration 12 counted the open attempts, and the first counted check-in reads 3 in
// flight and the 2 grants of the last 3 hours (at +4 h and +5 h; the one at +3 h is on
// the period's edge, outside).
func CountersAfterMigration12(t *testing.T, s store.Store) {
	t.Helper()
	checkRolloutCounters(t, s, "after migration 12")
	g := must(s.GetGroup(context.Background(), appID, "stable"))(t)
	var seen policy.Counters
	err := s.RolloutCheckin(context.Background(), appID, "new", g.ID, func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
		seen = r.Counters
		return &store.InstanceUpdate{Instance: instance("new", time.UnixMilli(1_700_000_000_000))}, &store.RolloutWrite{Grant: "4081.2.0"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != (policy.Counters{GrantedInPeriod: 2, InFlight: 3}) {
		t.Errorf("counters after migration 12: %+v, want 2 granted in the period and 3 in flight", seen)
	}
	checkRolloutCounters(t, s, "a grant after migration 12")
}
