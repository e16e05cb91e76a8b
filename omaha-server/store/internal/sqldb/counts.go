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
//     did not change (most check-ins); the changes are written last, before the commit,
//     and a group-committed batch (SQLite) sums its check-ins' changes and writes each
//     key once;
//   - retention (Prune) takes one off for each instance it deletes, summed per key, at
//     the end of its batch, and then removes keys whose count reached 0 (a key that stays
//     at 0 is also never read: readers skip count 0).
//
// A key's count is kept in shards, rows that differ in shard only, and is their sum: a
// host's changes go to the shard of its machine id (Dialect.CountShards), so concurrent
// check-ins of different hosts moving between the same keys mostly lock different rows.
// Without shards, every check-in of a rollout on PostgreSQL queued for the same few rows
// (measured: a third fewer check-ins per second with 16 in flight, every check-in a move;
// with 16 shards 10–30% fewer on a loaded machine). A shard's row may go
// below zero (migration 8 counted everything in shard 0); only the sum means anything.
//
// Each change is an upsert of count + delta, which PostgreSQL applies to the latest
// committed row (no lost update under READ COMMITTED) and which re-inserts a key a
// concurrent delete removed. The rows a transaction changes are taken in one order, by
// key as Go compares strings, after its instance rows: two check-ins that move hosts
// A → B and B → A both lock A first, so neither waits for a row the other holds while
// holding one it wants (a deadlock PostgreSQL would end by failing one of them).

// countKey is one row of instance_counts.
type countKey struct {
	app, group, version, status string
	shard                       int
}

// countKeyOf is in's row of instance_counts.
func (db *DB) countKeyOf(in *store.Instance) countKey {
	return countKey{in.AppID, in.Group, in.Version, string(in.Status), db.shardOf(in.MachineID)}
}

// shardOf is the shard a machine id's changes go to (FNV-1a).
func (db *DB) shardOf(machineID string) int {
	if db.d.CountShards <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(machineID); i++ {
		h = (h ^ uint32(machineID[i])) * 16777619
	}
	return int(h % uint32(db.d.CountShards))
}

func (k countKey) compare(o countKey) int {
	return cmp.Or(cmp.Compare(k.app, o.app), cmp.Compare(k.group, o.group), cmp.Compare(k.version, o.version),
		cmp.Compare(k.status, o.status), cmp.Compare(k.shard, o.shard))
}

// CountDelta is one change to instance_counts.
type CountDelta struct {
	key   countKey
	Delta int64
}

// Args are the delta's statement arguments: application, group, version, status, shard,
// delta.
func (d CountDelta) Args() []any {
	return []any{d.key.app, d.key.group, d.key.version, d.key.status, d.key.shard, d.Delta}
}

// CountChanges returns the changes to instance_counts that rewriting the instance row cur
// (nil: a new row) as next makes, in lock order: none when the key stays.
func (db *DB) CountChanges(cur, next *store.Instance) []CountDelta {
	n := db.countKeyOf(next)
	if cur == nil {
		return []CountDelta{{n, 1}}
	}
	c := db.countKeyOf(cur)
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

// upsertCount is the statement that adds $6 to the count of ($1, $2, $3, $4) in shard $5.
const upsertCount = `INSERT INTO instance_counts (app_id, group_name, version, status, shard, count) VALUES ($1, $2, $3, $4, $5, $6)
	ON CONFLICT (app_id, group_name, version, status, shard) DO UPDATE SET count = instance_counts.count + excluded.count`

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

// pruneZeroCounts removes the rows whose count is 0 (retention left them so), in lock
// order within one transaction; a check-in that counts one of them again meanwhile
// re-inserts it (the upsert), or keeps it (the delete rechecks count = 0).
func (db *DB) pruneZeroCounts(ctx context.Context) error {
	rows, err := db.r.QueryContext(ctx, `SELECT app_id, group_name, version, status, shard FROM instance_counts WHERE count = 0`)
	if err != nil {
		return err
	}
	var keys []countKey
	for rows.Next() {
		var k countKey
		if err := rows.Scan(&k.app, &k.group, &k.version, &k.status, &k.shard); err != nil {
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
					AND status = $4 AND shard = $5 AND count = 0`, k.app, k.group, k.version, k.status, k.shard); err != nil {
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
