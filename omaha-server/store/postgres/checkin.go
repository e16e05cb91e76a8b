package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/internal/sqldb"
)

// optimisticAttempts (at least 2: the first may be a guess from the cache) is how often a check-in tries the lock-free path before it takes the
// row lock (SELECT … FOR UPDATE in a transaction), which always makes progress. One host
// has one request in flight, so a race is rare outside tests that hammer one row.
const optimisticAttempts = 3

// The check-in statements run on the pgx pool with generic plans (planned once per
// connection, not per call: see postgres.go), so each must have exactly one good plan
// whatever the tables held when it was first planned. They find the row through the
// primary key (machine_id, app_id) on machine_id alone and test app_id as an expression
// (app_id || ”), which no index matches: a generic plan made on a near-empty table once
// chose instances_group_status_version on app_id and then read every instance of the app
// for each check-in.
const (
	byKey          = `machine_id = $2 AND app_id || '' = $1`
	selInstanceRev = `SELECT ` + sqldb.InstanceColumns + `, rev FROM instances WHERE ` + byKey
	insInstance    = `INSERT INTO instances (` + sqldb.InstanceColumns + `, rev)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		ON CONFLICT (machine_id, app_id) DO NOTHING`
	updInstance = `UPDATE instances SET boot_id = $3, alias = $4, version = $5, aleph_version = $6, oem = $7,
		oem_version = $8, board = $9, track = $10, group_name = $11, ip = $12, first_check = $13, last_check = $14,
		status = $15, status_at = $16, update_version = $17, last_error_code = $18, rev = $19
		WHERE ` + byKey + ` AND rev = $20`
	// The guarded inserts write only when the row carries this write's revision, that is
	// when the instance write above them in the same batch succeeded.
	insHistoryGuarded = `INSERT INTO instance_status_history (app_id, machine_id, status, version, error_code, created_at)
		SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM instances WHERE ` + byKey + ` AND rev = $7)`
	insEventGuarded = `INSERT INTO events (app_id, machine_id, type, result, error_code, previous_version, version, created_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM instances WHERE ` + byKey + ` AND rev = $9)`
	// The count upserts are guarded the same way (see sqldb's counts.go): they move the
	// host from the key of the row the check-and-set replaced (the revision proves it was
	// exactly the row decide saw) to its new key, in the lock order of every writer.
	upsertCountGuarded = `INSERT INTO instance_counts (app_id, group_name, version, status, shard, count)
		SELECT $1, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM instances WHERE ` + byKey + ` AND rev = $8)
		ON CONFLICT (app_id, group_name, version, status, shard) DO UPDATE SET count = instance_counts.count + excluded.count`
)

// Checkin implements store.Store without a row lock. The current row comes from the
// replica's row cache (see rowCache) or, on a miss, from one unlocked read; a miss for a
// host never seen is tried first as a new row. decide runs, and the writes go in one
// pipelined batch, which PostgreSQL runs as one implicit transaction. The instance write
// is a check-and-set on the row's revision token (a fresh random number per write); the
// history and event inserts are guarded by the new token, so when another writer (or
// another replica) got there first nothing of this attempt is written and the check-in
// starts over from a fresh read. After a few lost races it falls back to the locked
// transaction, whose writes change the token too. A host seen before thus costs one round
// trip, a new host one, a stale cache entry three.
func (s *Store) Checkin(ctx context.Context, appID, machineID string, decide func(cur *store.Instance) (*store.InstanceUpdate, error)) error {
	appID = store.NormalizeAppID(appID)
	key := rowKey{appID, machineID}
	cached, rev, hit := s.rows.get(key)
	for attempt := range optimisticAttempts {
		var cur *store.Instance
		switch {
		case attempt == 0 && hit:
			c := cached
			cur = &c
		case attempt == 0:
			// Assume a new host; a conflict sends the next attempt to the database.
		default:
			in, err := sqldb.ScanInstance(s.pool.QueryRow(ctx, selInstanceRev, appID, machineID), &rev)
			switch {
			case err == nil:
				cur = &in
			case errors.Is(err, pgx.ErrNoRows):
			default:
				return fmt.Errorf("postgres: check-in: reading instance: %w", err)
			}
		}
		upd, err := decide(cur)
		if err != nil {
			return err
		}
		if upd == nil {
			return nil
		}
		n := upd.Instance
		if n.AppID != appID || n.MachineID != machineID {
			return fmt.Errorf("postgres: check-in: the update is for %s/%s, not %s/%s: %w", n.AppID, n.MachineID, appID, machineID, store.ErrInvalid)
		}
		var buf [8]byte
		rand.Read(buf[:])
		next := int64(binary.LittleEndian.Uint64(buf[:]) >> 1)
		if cur != nil && next == rev {
			next++
		}
		args := []any{n.AppID, n.MachineID, n.BootID, n.Alias, n.Version, n.AlephVersion, n.OEM, n.OEMVersion, n.Board, n.Track,
			n.Group, n.IP, sqldb.MS(n.FirstCheck), sqldb.MS(n.LastCheck), string(n.Status), sqldb.MS(n.StatusAt), n.UpdateVersion,
			n.LastErrorCode, next}
		b := &pgx.Batch{}
		if cur == nil {
			b.Queue(insInstance, args...)
		} else {
			b.Queue(updInstance, append(args, rev)...)
		}
		for _, h := range upd.History {
			b.Queue(insHistoryGuarded, appID, machineID, string(h.Status), h.Version, h.ErrorCode, sqldb.MS(h.At), next)
		}
		for _, e := range upd.Events {
			b.Queue(insEventGuarded, appID, machineID, e.Type, e.Result, e.ErrorCode, e.PreviousVersion, e.Version, sqldb.MS(e.At), next)
		}
		if s.Counting() {
			for _, d := range s.CountChanges(cur, &n) {
				a := d.Args()
				b.Queue(upsertCountGuarded, a[0], machineID, a[1], a[2], a[3], a[4], a[5], next)
			}
		}
		won, err := runBatch(ctx, s, b)
		if err != nil {
			s.rows.drop(key)
			return fmt.Errorf("postgres: check-in: writing: %w", err)
		}
		if won {
			s.rows.put(key, n, next)
			return nil
		}
		s.rows.drop(key)
	}
	s.rows.drop(key)
	return s.DB.Checkin(ctx, appID, machineID, decide)
}

// runBatch sends the batch and reports whether its first statement wrote a row.
func runBatch(ctx context.Context, s *Store, b *pgx.Batch) (bool, error) {
	br := s.pool.SendBatch(ctx, b)
	ct, err := br.Exec()
	won := err == nil && ct.RowsAffected() == 1
	for i := 1; err == nil && i < b.Len(); i++ {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return won, err
}

// RolloutCheckin implements store.Store: the counted path is the locked transaction of
// store/internal/sqldb (the group row FOR UPDATE serialises a group's grants across
// replicas). Its instance write bumps the row's revision, so any replica's cached copy
// fails its next check-and-set; this replica's copy is dropped.
func (s *Store) RolloutCheckin(ctx context.Context, appID, machineID string, groupID int64,
	decide func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error)) error {
	s.rows.drop(rowKey{store.NormalizeAppID(appID), machineID})
	return s.DB.RolloutCheckin(ctx, appID, machineID, groupID, decide)
}

// CheckinAll implements store.Store: one plain app takes the lock-free path (Checkin);
// several apps, or a counted one, take the locked transaction of store/internal/sqldb,
// which writes them all or none. Their cached rows are dropped, as for RolloutCheckin.
func (s *Store) CheckinAll(ctx context.Context, apps []store.AppCheckin) error {
	if len(apps) == 1 && apps[0].Decide != nil && apps[0].Rollout == nil {
		return s.Checkin(ctx, apps[0].AppID, apps[0].MachineID, apps[0].Decide)
	}
	for _, a := range apps {
		s.rows.drop(rowKey{store.NormalizeAppID(a.AppID), a.MachineID})
	}
	return s.DB.CheckinAll(ctx, apps)
}
