package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Rollout counters. A counted check-in (RolloutCheckin) runs, in one transaction:
//
//  1. lock the group row (FOR UPDATE on PostgreSQL; SQLite's single writer already
//     serialises), so grants in one group are taken one at a time by every replica;
//  2. end the group's open attempts older than the policy's timeout as timed-out;
//  3. read the grants in the period and the attempts in flight from the group's counter
//     rows (rolloutcounters.go), which every attempt write below keeps in step;
//  4. decide, write the instance, then the rollout write: a grant opens an attempt (a
//     re-serve of the version the host already has open does not), an outcome ends the
//     host's latest attempt;
//  5. when an attempt failed (or timed out), apply policy.Halt to the group's recent ended
//     attempts at that release since the last resume, and halt the group when it trips.
//

// RolloutCheckin implements store.Store.
func (db *DB) RolloutCheckin(ctx context.Context, appID, machineID string, groupID int64,
	decide func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error)) error {
	appID = store.NormalizeAppID(appID)
	// A halt is the one activity entry a check-in writes; the recorder stays empty (and
	// publishes nothing) otherwise.
	rec := &recorder{db: db}
	run := func(ctx context.Context, tx *sql.Tx) ([]CountDelta, error) {
		rec.reset()
		return db.rolloutTx(ctx, tx, rec, appID, machineID, groupID, decide)
	}
	var err error
	if db.batches != nil {
		err = db.groupRun(ctx, run)
	} else {
		err = db.wrap("counted check-in", db.inTx(ctx, func(tx *sql.Tx) error {
			counts, err := run(ctx, tx)
			if err != nil {
				return err
			}
			return db.applyCounts(ctx, tx, counts)
		}))
	}
	if err == nil {
		rec.publish()
	}
	return err
}

func (db *DB) rolloutTx(ctx context.Context, tx *sql.Tx, rec *recorder, appID, machineID string, groupID int64,
	decide func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error)) ([]CountDelta, error) {
	g, err := lockGroup(ctx, tx, db.d, `g.id = $1`, groupID)
	if err != nil {
		return nil, db.wrap("counted check-in: reading the group", err)
	}
	now := db.now()
	p := g.Policy
	period := time.Duration(p.Period)
	if p.MaxPerPeriod <= 0 {
		period = 0
	}
	c, err := db.readCounters(ctx, tx, g.ID, period, now)
	if err != nil {
		return nil, db.wrap("counted check-in: reading the counters", err)
	}
	if err := db.timeOut(ctx, tx, rec, c, &g, now); err != nil {
		return nil, db.wrap("counted check-in: timeouts", err)
	}
	r := &store.Rollout{Group: g}
	if p.MaxPerPeriod > 0 {
		if r.Counters.GrantedInPeriod, err = c.grantedInPeriod(ctx, tx, period, now); err != nil {
			return nil, db.wrap("counted check-in: counting grants", err)
		}
	}
	if p.MaxInFlight > 0 {
		r.Counters.InFlight = int(c.inFlight + c.dInFlight)
	}
	var w *store.RolloutWrite
	var counts []CountDelta
	for {
		cur, heads, err := db.readInstance(ctx, tx, appID, machineID)
		if err != nil {
			return nil, err
		}
		var upd *store.InstanceUpdate
		if upd, w, err = decide(cur, r); err != nil {
			return nil, err
		}
		counts, err = db.writeInstance(ctx, tx, appID, machineID, cur, upd, heads)
		if !errors.Is(err, errRowAppeared) {
			if err != nil {
				return nil, err
			}
			break
		}
	}
	if w != nil && w.Outcome != "" {
		if err := db.endAttempt(ctx, tx, rec, c, &g, appID, machineID, w.Outcome, w.OutcomeVersion, now); err != nil {
			return nil, db.wrap("counted check-in: recording the outcome", err)
		}
	}
	if w != nil && w.Grant != "" {
		if err := db.grant(ctx, tx, c, g.ID, appID, machineID, w.Grant, now); err != nil {
			return nil, db.wrap("counted check-in: recording the grant", err)
		}
	}
	if err := c.flush(ctx, tx, period, now); err != nil {
		return nil, db.wrap("counted check-in: writing the counters", err)
	}
	return counts, nil
}

// timeOut ends the group's open attempts granted before now minus the policy's timeout,
// and checks the halt for each release that had one.
func (db *DB) timeOut(ctx context.Context, tx *sql.Tx, rec *recorder, c *counters, g *store.Group, now time.Time) error {
	if g.Policy.Timeout <= 0 {
		return nil
	}
	cutoff := ms(now.Add(-time.Duration(g.Policy.Timeout)))
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT version FROM rollout_attempts WHERE group_id = $1 AND outcome = $2 AND granted_at < $3`,
		g.ID, store.OutcomePending, cutoff)
	if err != nil {
		return err
	}
	var versions []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		versions = append(versions, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(versions) == 0 {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE rollout_attempts SET outcome = $1, ended_at = $2 WHERE group_id = $3 AND outcome = $4 AND granted_at < $5`,
		store.OutcomeTimedOut, ms(now), g.ID, store.OutcomePending, cutoff)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	c.dInFlight -= n
	for _, v := range versions {
		if err := db.checkHalt(ctx, tx, rec, g, v, now); err != nil {
			return err
		}
	}
	return nil
}

// grant opens an attempt unless the host already has one open at that version; an open
// attempt at another version is superseded.
func (db *DB) grant(ctx context.Context, tx *sql.Tx, c *counters, groupID int64, appID, machineID, version string, now time.Time) error {
	var id int64
	var open string
	err := tx.QueryRowContext(ctx, `SELECT id, version FROM rollout_attempts WHERE group_id = $1 AND machine_id = $2 AND outcome = $3
		ORDER BY id DESC LIMIT 1`, groupID, machineID, store.OutcomePending).Scan(&id, &open)
	switch {
	case err == nil && open == version:
		return nil
	case err == nil:
		res, err := tx.ExecContext(ctx, `UPDATE rollout_attempts SET outcome = $1, ended_at = $2 WHERE group_id = $3 AND machine_id = $4 AND outcome = $5`,
			store.OutcomeSuperseded, ms(now), groupID, machineID, store.OutcomePending)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		c.dInFlight -= n
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO rollout_attempts (group_id, app_id, machine_id, version, outcome, granted_at, ended_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0)`, groupID, appID, machineID, version, store.OutcomePending, ms(now))
	if err != nil {
		return err
	}
	c.dInFlight++
	c.granted(now)
	return nil
}

// endAttempt records how the host's latest attempt ended: a success ends an open attempt;
// a failure or rollback ends the latest attempt that has not failed yet (a rollback
// reported after the host's 3/1 turns that success into a failure). With no attempt on
// record, one is written already ended.
func (db *DB) endAttempt(ctx context.Context, tx *sql.Tx, rec *recorder, c *counters, g *store.Group, appID, machineID, outcome, version string, now time.Time) error {
	failure := outcome == store.OutcomeFailed || outcome == store.OutcomeRolledBack
	q := `SELECT id, version, outcome FROM rollout_attempts WHERE group_id = $1 AND machine_id = $2 AND outcome = $3 ORDER BY id DESC LIMIT 1`
	args := []any{g.ID, machineID, store.OutcomePending}
	if failure {
		q = `SELECT id, version, outcome FROM rollout_attempts WHERE group_id = $1 AND machine_id = $2 AND outcome IN ($3, $4) ORDER BY id DESC LIMIT 1`
		args = append(args, store.OutcomeSucceeded)
	}
	var id int64
	var v, was string
	err := tx.QueryRowContext(ctx, q, args...).Scan(&id, &v, &was)
	switch {
	case err == nil:
		if _, err := tx.ExecContext(ctx, `UPDATE rollout_attempts SET outcome = $1, ended_at = $2 WHERE id = $3`, outcome, ms(now), id); err != nil {
			return err
		}
		if was == store.OutcomePending && outcome != store.OutcomePending {
			c.dInFlight--
		}
		version = v
	case errors.Is(err, sql.ErrNoRows):
		if !failure || version == "" {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rollout_attempts (group_id, app_id, machine_id, version, outcome, granted_at, ended_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, g.ID, appID, machineID, version, outcome, ms(now)); err != nil {
			return err
		}
		c.granted(now)
	default:
		return err
	}
	if failure {
		return db.checkHalt(ctx, tx, rec, g, version, now)
	}
	return nil
}

// checkHalt applies policy.Halt to the last HaltOf ended attempts at version since the
// group's last resume, and halts the group when it trips, recording the halt with its
// reason (actor "system") in the same transaction.
func (db *DB) checkHalt(ctx context.Context, tx *sql.Tx, rec *recorder, g *store.Group, version string, now time.Time) error {
	p := g.Policy
	if p.HaltFailures <= 0 || g.Halted() {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT outcome FROM rollout_attempts WHERE group_id = $1 AND version = $2 AND ended_at >= $3 AND ended_at > 0
		AND outcome <> $4 ORDER BY ended_at DESC, id DESC LIMIT $5`, g.ID, version, ms(g.ResumedAt), store.OutcomeSuperseded, p.HaltOf)
	if err != nil {
		return err
	}
	var recent []policy.Outcome
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return err
		}
		recent = append(recent, outcomeOf(o))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	halt, reason := policy.Halt(p, version, recent)
	if !halt {
		return nil
	}
	g.HaltReason, g.HaltedAt = reason, fromMS(ms(now))
	if _, err := tx.ExecContext(ctx, `UPDATE app_groups SET halt_reason = $1, halted_at = $2, version = version + 1, updated_at = $2 WHERE id = $3`,
		reason, ms(now), g.ID); err != nil {
		return err
	}
	after, err := json.Marshal(struct {
		HaltReason string `json:"halt_reason"`
		Version    string `json:"release_version"`
	}{reason, version})
	if err != nil {
		return err
	}
	// The actor is the server, whoever's request carried the check-in.
	if err := rec.add(ctx, tx, store.Activity{At: g.HaltedAt, Actor: store.SystemActor, Action: store.ActionGroupHalt, AppID: g.AppID,
		Subject: "group/" + g.Name, Before: json.RawMessage(`{"halt_reason":""}`), After: after, Reason: reason}); err != nil {
		return err
	}
	return bumpGeneration(ctx, tx)
}

func outcomeOf(s string) policy.Outcome {
	switch s {
	case store.OutcomeFailed:
		return policy.Failed
	case store.OutcomeRolledBack:
		return policy.RolledBack
	case store.OutcomeTimedOut:
		return policy.TimedOut
	}
	return policy.Succeeded
}

// SetRolloutState implements store.Store.
func (db *DB) SetRolloutState(ctx context.Context, appID, name string, paused bool) (store.Group, error) {
	appID = store.NormalizeAppID(appID)
	var g store.Group
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		var err error
		if g, err = lockGroup(ctx, tx, db.d, `g.app_id = $1 AND g.name = $2`, appID, name); err != nil {
			return err
		}
		before, err := json.Marshal(groupView(g))
		if err != nil {
			return err
		}
		now := fromMS(ms(db.now()))
		g.Paused, g.Version, g.UpdatedAt = paused, g.Version+1, now
		if !paused {
			g.HaltReason, g.HaltedAt, g.ResumedAt = "", time.Time{}, now
		}
		if _, err := tx.ExecContext(ctx, `UPDATE app_groups SET paused = $1, halt_reason = $2, halted_at = $3, resumed_at = $4, version = $5, updated_at = $6
			WHERE id = $7`, g.Paused, g.HaltReason, ms(g.HaltedAt), ms(g.ResumedAt), g.Version, ms(now), g.ID); err != nil {
			return err
		}
		action := store.ActionGroupResume
		if paused {
			action = store.ActionGroupPause
		}
		e, err := groupEntry(action, before, g, "")
		if err != nil {
			return err
		}
		if err := rec.add(ctx, tx, e); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	return g, db.wrap(fmt.Sprintf("group %q: rollout state", name), err)
}

// RolloutStatus implements store.Store.
func (db *DB) RolloutStatus(ctx context.Context, appID, name, version string) (store.RolloutStatus, error) {
	appID = store.NormalizeAppID(appID)
	var st store.RolloutStatus
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		g, err := scanGroup(tx.QueryRowContext(ctx, groupSelect+` WHERE g.app_id = $1 AND g.name = $2`, appID, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("group %q: %w", name, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		st = store.RolloutStatus{Group: g.Name, Version: version, Paused: g.Paused, HaltReason: g.HaltReason, HaltedAt: g.HaltedAt}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM rollout_attempts WHERE group_id = $1`, g.ID).Scan(&n); err != nil {
			return err
		}
		st.Counted = g.Policy.Counted() || n > 0
		if st.Counted {
			rows, err := tx.QueryContext(ctx, `SELECT outcome, granted_at, COUNT(*) FROM rollout_attempts WHERE group_id = $1 AND ($2 = '' OR version = $2)
				GROUP BY outcome, granted_at`, g.ID, version)
			if err != nil {
				return err
			}
			defer rows.Close()
			var timeout int64
			if g.Policy.Timeout > 0 {
				timeout = ms(db.now().Add(-time.Duration(g.Policy.Timeout)))
			}
			for rows.Next() {
				var o string
				var granted int64
				var c int
				if err := rows.Scan(&o, &granted, &c); err != nil {
					return err
				}
				if o == store.OutcomeSuperseded {
					continue
				}
				st.Granted += c
				switch {
				case o == store.OutcomePending && timeout > 0 && granted < timeout:
					st.TimedOut += c
				case o == store.OutcomePending:
					st.InFlight += c
				case o == store.OutcomeSucceeded:
					st.Complete += c
				case o == store.OutcomeFailed:
					st.Failed += c
				case o == store.OutcomeRolledBack:
					st.RolledBack += c
				case o == store.OutcomeTimedOut:
					st.TimedOut += c
				}
			}
			return rows.Err()
		}
		rows, err := tx.QueryContext(ctx, `SELECT status, COUNT(*) FROM instances WHERE app_id = $1 AND group_name = $2 AND ($3 = '' OR update_version = $3)
			AND update_version <> '' GROUP BY status`, appID, g.Name, version)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			var c int
			if err := rows.Scan(&s, &c); err != nil {
				return err
			}
			st.Granted += c
			switch store.Status(s) {
			case store.StatusUpdateGranted, store.StatusDownloading, store.StatusDownloaded:
				st.InFlight += c
			case store.StatusInstalled, store.StatusComplete:
				st.Complete += c
			case store.StatusError:
				st.Failed += c
			case store.StatusRolledBack:
				st.RolledBack += c
			}
		}
		return rows.Err()
	})
	return st, db.wrap(fmt.Sprintf("group %q: rollout status", name), err)
}
