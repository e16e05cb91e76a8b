package sqldb

import (
	"context"
	"database/sql"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// StatusCounts implements store.Store: the sums of the application's rows of
// instance_counts (see counts.go), as many as it has (group, version, status) keys times
// shards, whatever its fleet's size.
func (db *DB) StatusCounts(ctx context.Context, appID string) ([]store.StatusCount, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT group_name, status, version, SUM(count) FROM instance_counts WHERE app_id = $1
		GROUP BY group_name, status, version HAVING SUM(count) > 0 ORDER BY group_name, status, version`, store.NormalizeAppID(appID))
	if err != nil {
		return nil, db.wrap("counting statuses", err)
	}
	defer rows.Close()
	out := []store.StatusCount{}
	for rows.Next() {
		var c store.StatusCount
		var status string
		if err := rows.Scan(&c.Group, &status, &c.Version, &c.Count); err != nil {
			return nil, db.wrap("counting statuses", err)
		}
		c.Status = store.Status(status)
		out = append(out, c)
	}
	return out, db.wrap("counting statuses", rows.Err())
}

// SearchInstances implements store.Store. The query picks one indexed lookup: an IP
// address matches ip, a version matches version, anything else is a machine id prefix
// (the primary key's range) or an alias prefix (the partial alias index).
func (db *DB) SearchInstances(ctx context.Context, appID, query string, limit int) ([]store.Instance, error) {
	appID = store.NormalizeAppID(appID)
	query = strings.TrimSpace(query)
	if limit <= 0 || limit > MaxInstanceLimit {
		limit = DefaultInstanceLimit
	}
	var lookups []struct {
		where string
		args  []any
	}
	add := func(where string, args ...any) {
		lookups = append(lookups, struct {
			where string
			args  []any
		}{where, args})
	}
	switch {
	case query == "":
		add(`1 = 1`)
	default:
		if _, err := netip.ParseAddr(query); err == nil {
			add(`ip = $1`, query)
		}
		if _, err := omaha.ParseVersion(query); err == nil {
			add(`version = $1`, query)
		}
		// A prefix range: every string that starts with query sorts between query and
		// query followed by the highest code point.
		hi := query + "\U0010FFFF"
		c := db.d.BinaryCollate
		add(`machine_id`+c+` >= $1 AND machine_id`+c+` < $2`, query, hi)
		add(`alias <> '' AND alias`+c+` >= $1 AND alias`+c+` < $2`, query, hi)
	}
	seen := map[[2]string]bool{}
	out := []store.Instance{}
	for _, l := range lookups {
		if len(out) >= limit {
			break
		}
		args := append(l.args, appID, limit-len(out))
		q := `SELECT ` + instanceColumns + ` FROM instances WHERE ` + l.where +
			` AND ($` + itoa(len(l.args)+1) + ` = '' OR app_id = $` + itoa(len(l.args)+1) + `) LIMIT $` + itoa(len(l.args)+2)
		rows, err := db.r.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, db.wrap("searching instances", err)
		}
		for rows.Next() {
			in, err := scanInstance(rows)
			if err != nil {
				rows.Close()
				return nil, db.wrap("searching instances", err)
			}
			k := [2]string{in.AppID, in.MachineID}
			if !seen[k] {
				seen[k] = true
				out = append(out, in)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, db.wrap("searching instances", err)
		}
	}
	return out, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// SampleVersions implements store.Store: one row per (application, version) at the
// given time, summed from instance_counts.
func (db *DB) SampleVersions(ctx context.Context, at, keepSince time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO version_samples (app_id, at, version, count)
			SELECT app_id, $1, version, SUM(count) FROM instance_counts GROUP BY app_id, version HAVING SUM(count) > 0
			ON CONFLICT (app_id, at, version) DO UPDATE SET count = excluded.count`, ms(at)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO group_version_samples (app_id, group_name, at, version, count)
			SELECT app_id, group_name, $1, version, COUNT(*) FROM instances GROUP BY app_id, group_name, version
			ON CONFLICT (app_id, group_name, at, version) DO UPDATE SET count = excluded.count`, ms(at)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_version_samples WHERE at < $1`, ms(keepSince)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM version_samples WHERE at < $1`, ms(keepSince))
		return err
	})
	return db.wrap("sampling versions", err)
}

// VersionTimeline implements store.Store.
func (db *DB) VersionTimeline(ctx context.Context, appID string, since time.Time) ([]store.VersionSample, error) {
	return db.timeline(ctx, `SELECT at, version, count FROM version_samples WHERE app_id = $1 AND at >= $2 ORDER BY at, version`,
		store.NormalizeAppID(appID), ms(since))
}

// GroupVersionTimeline implements store.Store.
func (db *DB) GroupVersionTimeline(ctx context.Context, appID, group string, since time.Time) ([]store.VersionSample, error) {
	return db.timeline(ctx, `SELECT at, version, count FROM group_version_samples WHERE app_id = $1 AND group_name = $2 AND at >= $3 ORDER BY at, version`,
		store.NormalizeAppID(appID), group, ms(since))
}

func (db *DB) timeline(ctx context.Context, query string, args ...any) ([]store.VersionSample, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, db.wrap("reading the version timeline", err)
	}
	defer rows.Close()
	out := []store.VersionSample{}
	for rows.Next() {
		var s store.VersionSample
		var at int64
		if err := rows.Scan(&at, &s.Version, &s.Count); err != nil {
			return nil, db.wrap("reading the version timeline", err)
		}
		s.At = fromMS(at)
		out = append(out, s)
	}
	return out, db.wrap("reading the version timeline", rows.Err())
}
