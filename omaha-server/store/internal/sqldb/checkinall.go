package sqldb

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// A multi-app request (CheckinAll) is one transaction: every app's instance write, its
// rollout write and any halt it trips commit together or not at all. The transaction
// takes its locks in one order, whatever the order of the request's apps:
//
//  1. the group rows of the counted apps, by id (PostgreSQL: FOR UPDATE), before any
//     instance row, as a single counted check-in does (group, then instance);
//  2. the instance rows, by (application, machine id);
//  3. the instance counts, summed over the apps, in their lock order (counts.go).
//
// So two requests carrying apps of the same groups in opposite orders wait for each other
// instead of deadlocking. On SQLite the transaction is one member of a group-committed
// batch like any check-in.

// CheckinAll implements store.Store.
func (db *DB) CheckinAll(ctx context.Context, apps []store.AppCheckin) error {
	items, err := checkinOrder(apps)
	if err != nil {
		return db.errorf("check-in: %w", err)
	}
	if len(items) == 1 && items[0].Rollout == nil {
		return db.Checkin(ctx, items[0].AppID, items[0].MachineID, items[0].Decide)
	}
	if len(items) == 1 {
		return db.RolloutCheckin(ctx, items[0].AppID, items[0].MachineID, items[0].GroupID, items[0].Rollout)
	}
	rec := &recorder{db: db}
	run := func(ctx context.Context, tx *sql.Tx) ([]CountDelta, error) {
		rec.reset()
		return db.checkinAllTx(ctx, tx, rec, items)
	}
	if db.batches != nil {
		err = db.groupRun(ctx, run)
	} else {
		err = db.wrap("check-in", db.inTx(ctx, func(tx *sql.Tx) error {
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

// checkinOrder returns apps with normalised application ids, in lock order; an app with
// neither or both of Decide and Rollout is store.ErrInvalid.
func checkinOrder(apps []store.AppCheckin) ([]store.AppCheckin, error) {
	items := make([]store.AppCheckin, len(apps))
	for i, a := range apps {
		if (a.Decide == nil) == (a.Rollout == nil) {
			return nil, fmt.Errorf("app %s of machine %q needs exactly one of Decide and Rollout: %w", a.AppID, a.MachineID, store.ErrInvalid)
		}
		a.AppID = store.NormalizeAppID(a.AppID)
		items[i] = a
	}
	slices.SortStableFunc(items, func(a, b store.AppCheckin) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.MachineID, b.MachineID))
	})
	return items, nil
}

// checkinAllTx runs items (in lock order) inside tx and returns their summed changes to
// the instance counts, in lock order.
func (db *DB) checkinAllTx(ctx context.Context, tx *sql.Tx, rec *recorder, items []store.AppCheckin) ([]CountDelta, error) {
	var groups []int64
	for _, a := range items {
		if a.Rollout != nil {
			groups = append(groups, a.GroupID)
		}
	}
	slices.Sort(groups)
	for _, id := range slices.Compact(groups) {
		if _, err := lockGroup(ctx, tx, db.d, `g.id = $1`, id); err != nil {
			return nil, db.wrap("check-in: locking the group", err)
		}
	}
	sums := map[countKey]int64{}
	for _, a := range items {
		var ds []CountDelta
		var err error
		if a.Rollout != nil {
			ds, err = db.rolloutTx(ctx, tx, rec, a.AppID, a.MachineID, a.GroupID, a.Rollout)
		} else {
			ds, err = db.checkinTx(ctx, tx, a.AppID, a.MachineID, a.Decide)
		}
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			sums[d.key] += d.Delta
		}
	}
	return sortedDeltas(sums), nil
}
