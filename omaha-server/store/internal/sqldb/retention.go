package sqldb

import (
	"context"
	"database/sql"
	"errors"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Retention runs in small batches, each its own short transaction, so that check-ins
// (which share the single SQLite writer) wait at most one batch, and a large backlog is
// worked off without one huge transaction.
const pruneBatch = 5000

// deleteLogRows is the statement, with its arguments, that deletes instance (app, machine)'s
// rows from table, its status history or events: the index range, or with ChainedLogs the
// chain that starts at id head (see migration 4 and newestLogRows).
func (db *DB) deleteLogRows(table, app, machine string, head int64) (string, []any) {
	if !db.d.ChainedLogs {
		return `DELETE FROM ` + table + ` WHERE app_id = $1 AND machine_id = $2`, []any{app, machine}
	}
	return `WITH RECURSIVE chain(id) AS (
		SELECT CAST($3 AS BIGINT)
		UNION ALL
		SELECT t.prev_id FROM chain JOIN ` + table + ` t ON t.id = chain.id
		WHERE t.app_id = $1 AND t.machine_id = $2 AND t.prev_id < t.id AND t.prev_id > 0)
	DELETE FROM ` + table + ` WHERE id IN (SELECT id FROM chain) AND app_id = $1 AND machine_id = $2`, []any{app, machine, head}
}

// Prune implements store.Store. Instances not seen since r.InstancesBefore go with their
// status history, events and rollout attempts (found by walking the primary key: no index
// on last_check, which every check-in would rewrite; the history and events by walking
// their chains from the deleted row's heads). Events older than r.EventsBefore go
// through events_created, and so do ended rollout attempts of that age; activity entries
// older than r.ActivityBefore go through activity_at; the status
// history of the instances that remain is kept as their summary.
func (db *DB) Prune(ctx context.Context, r store.Retention) (store.Pruned, error) {
	var p store.Pruned
	if !r.InstancesBefore.IsZero() {
		cutoff := ms(r.InstancesBefore)
		after := ""
		for {
			type key struct{ machine, app string }
			var batch []key
			rows, err := db.r.QueryContext(ctx, `SELECT machine_id, app_id, last_check FROM instances WHERE machine_id > $1
				ORDER BY machine_id, app_id LIMIT $2`, after, pruneBatch)
			if err != nil {
				return p, db.wrap("pruning instances", err)
			}
			n := 0
			for rows.Next() {
				var k key
				var last int64
				if err := rows.Scan(&k.machine, &k.app, &last); err != nil {
					rows.Close()
					return p, db.wrap("pruning instances", err)
				}
				n++
				after = k.machine
				if last < cutoff {
					batch = append(batch, k)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return p, db.wrap("pruning instances", err)
			}
			if len(batch) > 0 {
				err := db.inTx(ctx, func(tx *sql.Tx) error {
					// The counts go at the end, summed per key and in lock order (see
					// counts.go), after every instance row this transaction locks.
					counts := map[countKey]int64{}
					for _, k := range batch {
						// Checked again inside the write: the host may have come back.
						var heads chainHeads
						ck := countKey{app: k.app, shard: db.shardOf(k.machine)}
						err := tx.QueryRowContext(ctx, `DELETE FROM instances WHERE machine_id = $1 AND app_id = $2 AND last_check < $3
							RETURNING last_history_id, last_event_id, group_name, version, status`, k.machine, k.app, cutoff).Scan(
							&heads.history, &heads.event, &ck.group, &ck.version, &ck.status)
						if errors.Is(err, sql.ErrNoRows) {
							continue
						}
						if err != nil {
							return err
						}
						p.Instances++
						counts[ck]--
						for _, del := range []struct {
							table string
							head  int64
							n     *int64
						}{
							{"instance_status_history", heads.history, &p.History},
							{"events", heads.event, &p.Events},
						} {
							q, args := db.deleteLogRows(del.table, k.app, k.machine, del.head)
							res, err := tx.ExecContext(ctx, q, args...)
							if err != nil {
								return err
							}
							c, _ := res.RowsAffected()
							*del.n += c
						}
					}
					return db.applyCounts(ctx, tx, sortedDeltas(counts))
				})
				if err != nil {
					return p, db.wrap("pruning instances", err)
				}
			}
			if n < pruneBatch {
				break
			}
		}
		if err := db.pruneZeroCounts(ctx); err != nil {
			return p, db.wrap("pruning instance counts", err)
		}
	}
	type byAge struct {
		q        string // or, for rollout attempts, attempts: their condition
		attempts string
		cutoff   int64
		n        *int64
	}
	var dels []byAge
	if !r.InstancesBefore.IsZero() {
		// An attempt still open since before the instance cutoff belongs to a host that
		// vanished (or one that never finished): it no longer holds a place in flight.
		dels = append(dels, byAge{attempts: `ended_at = 0 AND granted_at < $1`, cutoff: ms(r.InstancesBefore), n: &p.Attempts})
	}
	if !r.EventsBefore.IsZero() {
		dels = append(dels,
			byAge{q: `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < $1 LIMIT $2)`, cutoff: ms(r.EventsBefore), n: &p.Events},
			byAge{attempts: `ended_at > 0 AND ended_at < $1`, cutoff: ms(r.EventsBefore), n: &p.Attempts})
	}
	if !r.ActivityBefore.IsZero() {
		dels = append(dels, byAge{q: `DELETE FROM activity WHERE id IN (SELECT id FROM activity WHERE at < $1 LIMIT $2)`, cutoff: ms(r.ActivityBefore), n: &p.Activity})
	}
	{
		for _, del := range dels {
			cutoff := del.cutoff
			for {
				var c int64
				err := db.inTx(ctx, func(tx *sql.Tx) error {
					if del.attempts != "" {
						var err error
						c, err = db.pruneAttempts(ctx, tx, del.attempts, cutoff)
						return err
					}
					res, err := tx.ExecContext(ctx, del.q, cutoff, pruneBatch)
					if err != nil {
						return err
					}
					c, err = res.RowsAffected()
					return err
				})
				if err != nil {
					return p, db.wrap("pruning events", err)
				}
				*del.n += c
				if c < pruneBatch {
					break
				}
				if err := ctx.Err(); err != nil {
					return p, db.wrap("pruning events", err)
				}
			}
		}
	}
	return p, nil
}

// pruneAttempts deletes up to pruneBatch rollout attempts matching cond ($1: cutoff) with
// their groups' rows locked first, in order of id as every counted check-in takes them,
// and, in the same transaction, takes the open ones off their groups' counts in flight
// and marks the groups' grant buckets for a rebuild (rolloutcounters.go).
func (db *DB) pruneAttempts(ctx context.Context, tx *sql.Tx, cond string, cutoff int64) (int64, error) {
	sel := `SELECT id FROM rollout_attempts WHERE ` + cond + ` LIMIT $2`
	rows, err := tx.QueryContext(ctx, `SELECT id FROM app_groups WHERE id IN (SELECT group_id FROM rollout_attempts WHERE id IN (`+sel+`)) ORDER BY id`+db.d.LockRow,
		cutoff, pruneBatch)
	if err != nil {
		return 0, err
	}
	for rows.Next() { // the rows are locked as they are read
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	rows, err = tx.QueryContext(ctx, `DELETE FROM rollout_attempts WHERE id IN (`+sel+`) RETURNING group_id, ended_at`, cutoff, pruneBatch)
	if err != nil {
		return 0, err
	}
	open := map[int64]int64{} // open attempts deleted, by group
	var n int64
	for rows.Next() {
		var group, ended int64
		if err := rows.Scan(&group, &ended); err != nil {
			rows.Close()
			return 0, err
		}
		n++
		d := open[group] // a group that lost only ended attempts is marked too
		if ended == 0 {
			d++
		}
		open[group] = d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return n, invalidateCounters(ctx, tx, open)
}
