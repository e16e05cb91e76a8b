package sqldb

import (
	"cmp"
	"context"
	"database/sql"
	"slices"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Instance counts (migration 8). instance_counts holds, per application, how many
// instances are in each (group, version, status): the dashboard's status counts and the
// instances gauge read it instead of scanning a million instance rows. Every write of an
// instance row keeps it in the same transaction, so it is exact at every commit:
//
//   - a check-in (Checkin, RolloutCheckin, and PostgreSQL's lock-free Checkin, whose
//     guarded upserts write only when its check-and-set won) moves one from the row's
//     old key to its new one, or adds one for a new row, and writes nothing when the key
//     did not change (most check-ins);
//   - retention (Prune) takes one off for each instance it deletes, summed per key, at
//     the end of its batch, and then removes keys whose count reached 0 (a key that stays
//     at 0 is also never read: readers skip count 0).
//
// Each change is an upsert of count + delta, which PostgreSQL applies to the latest
// committed row (no lost update under READ COMMITTED) and which re-inserts a key a
// concurrent delete removed. The rows a transaction changes are taken in one order, by
// key as Go compares strings, after its instance rows: two check-ins that move hosts
// A → B and B → A both lock A first, so neither waits for a row the other holds while
// holding one it wants (a deadlock PostgreSQL would end by failing one of them).

// countKey is one row of instance_counts.
type countKey struct{ app, group, version, status string }

func keyOf(in *store.Instance) countKey {
	return countKey{in.AppID, in.Group, in.Version, string(in.Status)}
}

func (k countKey) compare(o countKey) int {
	return cmp.Or(cmp.Compare(k.app, o.app), cmp.Compare(k.group, o.group), cmp.Compare(k.version, o.version), cmp.Compare(k.status, o.status))
}

// CountDelta is one change to instance_counts.
type CountDelta struct {
	key   countKey
	Delta int64
}

// Args are the delta's statement arguments: application, group, version, status, delta.
func (d CountDelta) Args() []any {
	return []any{d.key.app, d.key.group, d.key.version, d.key.status, d.Delta}
}

// CountChanges returns the changes to instance_counts that rewriting the instance row cur
// (nil: a new row) as next makes, in lock order: none when the key stays.
func CountChanges(cur, next *store.Instance) []CountDelta {
	n := keyOf(next)
	if cur == nil {
		return []CountDelta{{n, 1}}
	}
	c := keyOf(cur)
	if c == n {
		return nil
	}
	if c.compare(n) < 0 {
		return []CountDelta{{c, -1}, {n, 1}}
	}
	return []CountDelta{{n, 1}, {c, -1}}
}

// sortedDeltas turns per-key sums into deltas in lock order, leaving out zero sums.
func sortedDeltas(sums map[countKey]int64) []CountDelta {
	out := make([]CountDelta, 0, len(sums))
	for k, d := range sums {
		if d != 0 {
			out = append(out, CountDelta{k, d})
		}
	}
	slices.SortFunc(out, func(a, b CountDelta) int { return a.key.compare(b.key) })
	return out
}

// upsertCount is the statement that adds $5 to the count of ($1, $2, $3, $4).
const upsertCount = `INSERT INTO instance_counts (app_id, group_name, version, status, count) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (app_id, group_name, version, status) DO UPDATE SET count = instance_counts.count + excluded.count`

// applyCounts writes deltas (in lock order) inside tx, unless counting is off.
func (db *DB) applyCounts(ctx context.Context, tx *sql.Tx, deltas []CountDelta) error {
	if len(deltas) == 0 || !db.Counting() {
		return nil
	}
	s := tx.StmtContext(ctx, db.stmts.upsertCount)
	for _, d := range deltas {
		if _, err := s.ExecContext(ctx, d.Args()...); err != nil {
			return db.wrap("updating the instance counts", err)
		}
	}
	return nil
}

// SetCounting turns the maintenance of instance_counts on (the default) or off. Off is
// only for benchmarks measuring what it costs: the counts are wrong from then on.
func (db *DB) SetCounting(on bool) { db.noCounts.Store(!on) }

// Counting reports whether check-ins maintain instance_counts.
func (db *DB) Counting() bool { return !db.noCounts.Load() }

// pruneZeroCounts removes the keys whose count is 0 (retention left them so), in lock
// order within one transaction; a check-in that counts one of them again meanwhile
// re-inserts it (the upsert), or keeps it (the delete rechecks count = 0).
func (db *DB) pruneZeroCounts(ctx context.Context) error {
	rows, err := db.r.QueryContext(ctx, `SELECT app_id, group_name, version, status FROM instance_counts WHERE count = 0`)
	if err != nil {
		return err
	}
	var keys []countKey
	for rows.Next() {
		var k countKey
		if err := rows.Scan(&k.app, &k.group, &k.version, &k.status); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(keys) == 0 {
		return err
	}
	slices.SortFunc(keys, countKey.compare)
	for len(keys) > 0 {
		batch := keys[:min(len(keys), pruneBatch)]
		keys = keys[len(batch):]
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			for _, k := range batch {
				if _, err := tx.ExecContext(ctx, `DELETE FROM instance_counts WHERE app_id = $1 AND group_name = $2 AND version = $3
					AND status = $4 AND count = 0`, k.app, k.group, k.version, k.status); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
