package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Rollout counter rows (migration 12). A counted check-in used to COUNT rollout_attempts
// for its caps; it now reads one row per group and a few bucket rows, kept in the same
// transaction as the attempt writes, with the group row locked (every writer of a group's
// attempts holds it), so they are exact across replicas:
//
//   - rollout_counters.in_flight is the group's attempts with outcome pending: +1 for each
//     grant, -1 for each attempt a supersede, an outcome or a timeout ends;
//   - rollout_grants holds, per bucket of bucket_ms milliseconds (granted_at / bucket_ms),
//     how many attempts were granted in it (a grant, or an ended attempt written for a
//     host with none on record, whose granted_at is its end).
//
// Grants in the period (granted_at > now - period) are the sum of the buckets wholly inside
// it plus a count of the attempts in the one bucket the period's start cuts, so the
// sliding window stays exact; that count reads at most one bucket's grants, a 1/64 of the
// period. The width follows the policy's period (period/64); when it changes (a policy
// edit), or when the row says -1 (migration 12, or retention deleted some of the group's
// attempts), the check-in rebuilds the group's rows from rollout_attempts (one COUNT over
// the period and one over the attempts in flight), then goes on with the rows. Buckets
// older than the period are deleted by the grant that opens a new bucket.

// bucketsPerPeriod is how many buckets a period is split into.
const bucketsPerPeriod = 64

// counters is a group's counter row as a counted check-in read it, and the changes that
// check-in makes, written back by flush.
type counters struct {
	groupID  int64
	bucketMS int64 // 0: no buckets kept (the policy caps no period)
	inFlight int64

	dInFlight int64
	dGrants   map[int64]int64 // by bucket
}

// bucketWidth is the bucket width for a period, 0 for none.
func bucketWidth(period time.Duration) int64 {
	if period <= 0 {
		return 0
	}
	return max(1, (period.Milliseconds()+bucketsPerPeriod-1)/bucketsPerPeriod)
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// readCounters reads (rebuilding when needed) the counter row of group g, locked by the
// caller's transaction, for a policy with the given period.
func (db *DB) readCounters(ctx context.Context, tx *sql.Tx, groupID int64, period time.Duration, now time.Time) (*counters, error) {
	c := &counters{groupID: groupID}
	want := bucketWidth(period)
	err := tx.QueryRowContext(ctx, `SELECT in_flight, bucket_ms FROM rollout_counters WHERE group_id = $1`, groupID).Scan(&c.inFlight, &c.bucketMS)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		c.bucketMS = -1
	case err != nil:
		return nil, err
	}
	if c.bucketMS == want {
		return c, nil
	}
	// Rebuild: the attempts in flight, and the grants of the buckets the period touches.
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM rollout_attempts WHERE group_id = $1 AND outcome = $2`,
		groupID, store.OutcomePending).Scan(&c.inFlight); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM rollout_grants WHERE group_id = $1`, groupID); err != nil {
		return nil, err
	}
	if want > 0 {
		from := floorDiv(ms(now)-period.Milliseconds(), want) * want
		if _, err := tx.ExecContext(ctx, `INSERT INTO rollout_grants (group_id, bucket, grants)
			SELECT group_id, granted_at / CAST($2 AS BIGINT), COUNT(*) FROM rollout_attempts WHERE group_id = $1 AND granted_at >= $3
			GROUP BY group_id, granted_at / CAST($2 AS BIGINT)`, groupID, want, from); err != nil {
			return nil, err
		}
	}
	c.bucketMS = want
	_, err = tx.ExecContext(ctx, `INSERT INTO rollout_counters (group_id, in_flight, bucket_ms) VALUES ($1, $2, $3)
		ON CONFLICT (group_id) DO UPDATE SET in_flight = excluded.in_flight, bucket_ms = excluded.bucket_ms`, groupID, c.inFlight, want)
	return c, err
}

// grantedInPeriod is the number of grants with granted_at > now - period.
func (c *counters) grantedInPeriod(ctx context.Context, tx *sql.Tx, period time.Duration, now time.Time) (int, error) {
	start := ms(now) - period.Milliseconds()
	cut := floorDiv(start, c.bucketMS)
	var whole, partial int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(grants), 0) FROM rollout_grants WHERE group_id = $1 AND bucket > $2`,
		c.groupID, cut).Scan(&whole); err != nil {
		return 0, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM rollout_attempts WHERE group_id = $1 AND granted_at > $2 AND granted_at < $3`,
		c.groupID, start, (cut+1)*c.bucketMS).Scan(&partial); err != nil {
		return 0, err
	}
	return whole + partial, nil
}

// granted notes an attempt granted at at.
func (c *counters) granted(at time.Time) {
	if c.bucketMS <= 0 {
		return
	}
	if c.dGrants == nil {
		c.dGrants = map[int64]int64{}
	}
	c.dGrants[floorDiv(ms(at), c.bucketMS)]++
}

// flush writes the check-in's changes; a bucket opened by it drops the buckets that have
// left the period.
func (c *counters) flush(ctx context.Context, tx *sql.Tx, period time.Duration, now time.Time) error {
	if c.dInFlight != 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE rollout_counters SET in_flight = in_flight + $1 WHERE group_id = $2`, c.dInFlight, c.groupID); err != nil {
			return err
		}
		c.inFlight += c.dInFlight
		c.dInFlight = 0
	}
	buckets := make([]int64, 0, len(c.dGrants))
	for b := range c.dGrants {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	opened := false
	for _, b := range buckets {
		var n int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO rollout_grants (group_id, bucket, grants) VALUES ($1, $2, $3)
			ON CONFLICT (group_id, bucket) DO UPDATE SET grants = rollout_grants.grants + excluded.grants RETURNING grants`,
			c.groupID, b, c.dGrants[b]).Scan(&n); err != nil {
			return err
		}
		opened = opened || n == c.dGrants[b]
	}
	c.dGrants = nil
	if opened {
		old := floorDiv(ms(now)-period.Milliseconds(), c.bucketMS)
		if _, err := tx.ExecContext(ctx, `DELETE FROM rollout_grants WHERE group_id = $1 AND bucket < $2`, c.groupID, old); err != nil {
			return err
		}
	}
	return nil
}

// invalidateCounters takes the open attempts retention deleted off their groups' counts
// in flight (open: by group, 0 for a group that lost only ended ones) and marks the
// groups' grant buckets for a rebuild by their next counted check-in.
func invalidateCounters(ctx context.Context, tx *sql.Tx, open map[int64]int64) error {
	groups := make([]int64, 0, len(open))
	for g := range open {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for _, g := range groups {
		if _, err := tx.ExecContext(ctx, `UPDATE rollout_counters SET in_flight = in_flight - $1, bucket_ms = -1 WHERE group_id = $2`, open[g], g); err != nil {
			return err
		}
	}
	return nil
}

// CheckRolloutCounters compares every group's counter rows with counts over its
// rollout_attempts and returns an error naming the first difference (the grant buckets of
// a row to be rebuilt, -1, are not compared). For tests and consistency checks: it reads,
// writes nothing.
func (db *DB) CheckRolloutCounters(ctx context.Context) error {
	return db.inReadTx(ctx, func(tx *sql.Tx) error {
		type row struct{ group, inFlight, width int64 }
		var rows []row
		rs, err := tx.QueryContext(ctx, `SELECT group_id, in_flight, bucket_ms FROM rollout_counters ORDER BY group_id`)
		if err != nil {
			return err
		}
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.group, &r.inFlight, &r.width); err != nil {
				rs.Close()
				return err
			}
			rows = append(rows, r)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		for _, r := range rows {
			var n int64
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM rollout_attempts WHERE group_id = $1 AND outcome = $2`, r.group, store.OutcomePending).Scan(&n); err != nil {
				return err
			}
			if n != r.inFlight {
				return fmt.Errorf("%s: group %d: %d in flight counted, %d attempts pending", db.d.Name, r.group, r.inFlight, n)
			}
			if r.width <= 0 {
				continue
			}
			// Every bucket row equals the count of its attempts (rows below the oldest one
			// kept were dropped as out of the period).
			bs, err := tx.QueryContext(ctx, `SELECT bucket, grants FROM rollout_grants WHERE group_id = $1 ORDER BY bucket`, r.group)
			if err != nil {
				return err
			}
			got := map[int64]int64{}
			first := int64(-1)
			for bs.Next() {
				var b, g int64
				if err := bs.Scan(&b, &g); err != nil {
					bs.Close()
					return err
				}
				if first < 0 {
					first = b
				}
				got[b] = g
			}
			bs.Close()
			if err := bs.Err(); err != nil {
				return err
			}
			if first < 0 {
				continue
			}
			as, err := tx.QueryContext(ctx, `SELECT granted_at / CAST($2 AS BIGINT), COUNT(*) FROM rollout_attempts WHERE group_id = $1 AND granted_at >= $3
				GROUP BY granted_at / CAST($2 AS BIGINT)`, r.group, r.width, first*r.width)
			if err != nil {
				return err
			}
			want := map[int64]int64{}
			for as.Next() {
				var b, c int64
				if err := as.Scan(&b, &c); err != nil {
					as.Close()
					return err
				}
				want[b] = c
			}
			as.Close()
			if err := as.Err(); err != nil {
				return err
			}
			for b, c := range want {
				if got[b] != c {
					return fmt.Errorf("%s: group %d: bucket %d holds %d grants, %d attempts granted in it", db.d.Name, r.group, b, got[b], c)
				}
			}
			for b, c := range got {
				if want[b] != c {
					return fmt.Errorf("%s: group %d: bucket %d holds %d grants, %d attempts granted in it", db.d.Name, r.group, b, c, want[b])
				}
			}
		}
		return nil
	})
}
