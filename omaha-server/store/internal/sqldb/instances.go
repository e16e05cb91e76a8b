package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// InstanceColumns are the instances columns ScanInstance reads, in order.
const InstanceColumns = instanceColumns

// ScanInstance reads one row of InstanceColumns (followed by extra destinations).
func ScanInstance(s interface{ Scan(...any) error }, extra ...any) (store.Instance, error) {
	return scanInstance(s, extra...)
}

const instanceColumns = `app_id, machine_id, boot_id, alias, version, aleph_version, oem, oem_version, board, track,
	group_name, ip, first_check, last_check, status, status_at, update_version, last_error_code`

func scanInstance(s scanner, extra ...any) (store.Instance, error) {
	var in store.Instance
	var first, last, statusAt int64
	var status string
	err := s.Scan(append([]any{&in.AppID, &in.MachineID, &in.BootID, &in.Alias, &in.Version, &in.AlephVersion, &in.OEM, &in.OEMVersion,
		&in.Board, &in.Track, &in.Group, &in.IP, &first, &last, &status, &statusAt, &in.UpdateVersion, &in.LastErrorCode}, extra...)...)
	in.FirstCheck, in.LastCheck, in.StatusAt, in.Status = fromMS(first), fromMS(last), fromMS(statusAt), store.Status(status)
	return in, err
}

// Checkin implements store.Store. With Dialect.GroupCommit the check-in joins the writer
// goroutine's next batch (see groupcommit.go); otherwise it is its own transaction.
func (db *DB) Checkin(ctx context.Context, appID, machineID string, decide func(cur *store.Instance) (*store.InstanceUpdate, error)) error {
	appID = store.NormalizeAppID(appID)
	if db.batches != nil {
		return db.groupRun(ctx, func(ctx context.Context, tx *sql.Tx) ([]CountDelta, error) {
			return db.checkinTx(ctx, tx, appID, machineID, decide)
		})
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.wrap("check-in", err)
	}
	defer tx.Rollback()
	counts, err := db.checkinTx(ctx, tx, appID, machineID, decide)
	if err != nil {
		return err
	}
	if err := db.applyCounts(ctx, tx, counts); err != nil {
		return err
	}
	return db.wrap("check-in: commit", tx.Commit())
}

// checkinTx is one check-in's reads and writes inside tx; it returns the changes to the
// instance counts for the caller to write before the commit (applyCounts).
func (db *DB) checkinTx(ctx context.Context, tx *sql.Tx, appID, machineID string, decide func(cur *store.Instance) (*store.InstanceUpdate, error)) ([]CountDelta, error) {
	for {
		cur, heads, err := db.readInstance(ctx, tx, appID, machineID)
		if err != nil {
			return nil, err
		}
		upd, err := decide(cur)
		if err != nil {
			return nil, err
		}
		counts, err := db.writeInstance(ctx, tx, appID, machineID, cur, upd, heads)
		if !errors.Is(err, errRowAppeared) {
			return counts, err
		}
	}
}

// errRowAppeared: a row for an instance read as new was inserted meanwhile by another
// transaction (PostgreSQL: a row not there yet has no lock to take); nothing was written,
// and the caller reads the row again, now locked, and decides again.
var errRowAppeared = errors.New("instance row appeared meanwhile")

// chainHeads are an instance row's newest status-history and event ids, the heads of its
// two chains (migration 4); zero when it has none.
type chainHeads struct{ history, event int64 }

// readInstance reads (and on PostgreSQL locks) one instance row and its chain heads; nil
// when there is none.
func (db *DB) readInstance(ctx context.Context, tx *sql.Tx, appID, machineID string) (*store.Instance, chainHeads, error) {
	var h chainHeads
	in, err := scanInstance(tx.StmtContext(ctx, db.stmts.selInstance).QueryRowContext(ctx, appID, machineID), &h.history, &h.event)
	switch {
	case err == nil:
		return &in, h, nil
	case errors.Is(err, sql.ErrNoRows):
		return nil, chainHeads{}, nil
	default:
		return nil, chainHeads{}, db.wrap("check-in: reading instance", err)
	}
}

// writeInstance writes a check-in's status history and events, then the instance row cur
// (nil: none yet) becomes, and returns the changes to the instance counts. With ChainedLogs each
// history and event row links to the instance's previous one and the instance row takes
// the new chain heads; otherwise the heads stay zero. A new row is inserted first where
// another writer may insert it concurrently (LockRow set: PostgreSQL), so that the counts
// never count one host twice: errRowAppeared when it lost, before anything was written.
func (db *DB) writeInstance(ctx context.Context, tx *sql.Tx, appID, machineID string, cur *store.Instance, upd *store.InstanceUpdate, heads chainHeads) ([]CountDelta, error) {
	if upd == nil {
		return nil, nil
	}
	n := upd.Instance
	if n.AppID != appID || n.MachineID != machineID {
		return nil, db.errorf("check-in: the update is for %s/%s, not %s/%s: %w", n.AppID, n.MachineID, appID, machineID, store.ErrInvalid)
	}
	args := func() []any {
		return []any{n.AppID, n.MachineID, n.BootID, n.Alias, n.Version,
			n.AlephVersion, n.OEM, n.OEMVersion, n.Board, n.Track, n.Group, n.IP, ms(n.FirstCheck), ms(n.LastCheck),
			string(n.Status), ms(n.StatusAt), n.UpdateVersion, n.LastErrorCode, heads.history, heads.event}
	}
	inserted := false
	if cur == nil && db.d.LockRow != "" {
		res, err := tx.StmtContext(ctx, db.stmts.insNewInstance).ExecContext(ctx, args()...)
		if err != nil {
			return nil, db.wrap("check-in: writing instance", err)
		}
		if c, err := res.RowsAffected(); err != nil || c != 1 {
			return nil, errRowAppeared
		}
		inserted = true
	}
	chained := db.d.ChainedLogs // otherwise heads stay as read: zero
	if len(upd.History) > 0 {
		s := tx.StmtContext(ctx, db.stmts.insHistory)
		for _, h := range upd.History {
			var id int64
			if err := s.QueryRowContext(ctx, appID, machineID, string(h.Status), h.Version, h.ErrorCode, ms(h.At), heads.history).Scan(&id); err != nil {
				return nil, db.wrap("check-in: writing status history", err)
			}
			if chained {
				heads.history = id
			}
		}
	}
	if len(upd.Events) > 0 {
		s := tx.StmtContext(ctx, db.stmts.insEvent)
		for _, e := range upd.Events {
			var id int64
			if err := s.QueryRowContext(ctx, appID, machineID, e.Type, e.Result, e.ErrorCode, e.PreviousVersion, e.Version, ms(e.At), heads.event).Scan(&id); err != nil {
				return nil, db.wrap("check-in: writing event", err)
			}
			if chained {
				heads.event = id
			}
		}
	}
	if !inserted || chained {
		if _, err := tx.StmtContext(ctx, db.stmts.upsertInstance).ExecContext(ctx, args()...); err != nil {
			return nil, db.wrap("check-in: writing instance", err)
		}
	}
	return db.CountChanges(cur, &n), nil
}

// newestLogRows is the query for columns cols (of alias t) of the newest $3 rows of
// instance ($1 app, $2 machine) in table, its status history or events, newest first.
// Without ChainedLogs it reads the instance's index range. With them it walks the chain
// from the instances column head (migration 4): a step follows prev_id only from a row of
// that instance and only to a smaller id, so a chain broken by retention or pointing at a
// reused row id ends there, and the rows are joined with the instance's key again, since
// the head itself may point at a row that is gone.
func (db *DB) newestLogRows(table, head, cols string) string {
	if !db.d.ChainedLogs {
		return `SELECT ` + cols + ` FROM ` + table + ` t WHERE t.app_id = $1 AND t.machine_id = $2 ORDER BY t.id DESC LIMIT $3`
	}
	return `WITH RECURSIVE chain(id, n) AS (
		SELECT ` + head + `, 1 FROM instances WHERE app_id = $1 AND machine_id = $2
		UNION ALL
		SELECT t.prev_id, chain.n + 1 FROM chain JOIN ` + table + ` t ON t.id = chain.id
		WHERE chain.n < CAST($3 AS BIGINT) AND t.app_id = $1 AND t.machine_id = $2 AND t.prev_id < t.id AND t.prev_id > 0)
	SELECT ` + cols + ` FROM chain JOIN ` + table + ` t ON t.id = chain.id
	WHERE t.app_id = $1 AND t.machine_id = $2 ORDER BY t.id DESC LIMIT $3`
}

// DefaultInstanceLimit is how many instances ListInstances returns when the filter sets no
// limit; MaxInstanceLimit caps any limit.
const (
	DefaultInstanceLimit = 1000
	MaxInstanceLimit     = 100000
)

// ListInstances implements store.Store.
func (db *DB) ListInstances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, error) {
	var where []string
	var args []any
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
		}
	}
	add("app_id", store.NormalizeAppID(f.AppID))
	add("group_name", f.Group)
	add("version", f.Version)
	add("status", string(f.Status))
	if f.AfterAppID != "" || f.AfterMachineID != "" {
		args = append(args, store.NormalizeAppID(f.AfterAppID), f.AfterMachineID)
		a, m := len(args)-1, len(args)
		after := fmt.Sprintf("(app_id > $%d OR (app_id = $%d AND machine_id > $%d))", a, a, m)
		if f.ByLastCheck {
			args = append(args, ms(f.AfterLastCheck))
			c := len(args)
			after = fmt.Sprintf("(last_check < $%d OR (last_check = $%d AND %s))", c, c, after)
		}
		where = append(where, after)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultInstanceLimit
	}
	limit = min(limit, MaxInstanceLimit)
	q := `SELECT ` + instanceColumns + ` FROM instances`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	order := "app_id, machine_id"
	if f.ByLastCheck {
		order = "last_check DESC, app_id, machine_id"
	}
	q += fmt.Sprintf(` ORDER BY %s LIMIT $%d`, order, len(args))
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.wrap("listing instances", err)
	}
	defer rows.Close()
	out := []store.Instance{}
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, db.wrap("listing instances", err)
		}
		out = append(out, in)
	}
	return out, db.wrap("listing instances", rows.Err())
}

// GetInstances implements store.Store.
func (db *DB) GetInstances(ctx context.Context, machineID string, historyLimit int) ([]store.InstanceDetail, error) {
	if historyLimit <= 0 {
		historyLimit = 100
	}
	var out []store.InstanceDetail
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+instanceColumns+` FROM instances WHERE machine_id = $1 ORDER BY app_id`, machineID)
		if err != nil {
			return err
		}
		for rows.Next() {
			in, err := scanInstance(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, store.InstanceDetail{Instance: in, History: []store.StatusChange{}})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return fmt.Errorf("instance %q: %w", machineID, store.ErrNotFound)
		}
		for i := range out {
			q := db.newestLogRows("instance_status_history", "last_history_id", "t.status, t.version, t.error_code, t.created_at")
			rows, err := tx.QueryContext(ctx, q, out[i].AppID, machineID, historyLimit)
			if err != nil {
				return err
			}
			for rows.Next() {
				var h store.StatusChange
				var status string
				var at int64
				if err := rows.Scan(&status, &h.Version, &h.ErrorCode, &at); err != nil {
					rows.Close()
					return err
				}
				h.Status, h.At = store.Status(status), fromMS(at)
				out[i].History = append(out[i].History, h)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return out, db.wrap("reading instance", err)
}

// ListEvents implements store.Store.
func (db *DB) ListEvents(ctx context.Context, appID, machineID string, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = 100
	}
	q := db.newestLogRows("events", "last_event_id",
		"t.app_id, t.machine_id, t.type, t.result, t.error_code, t.previous_version, t.version, t.created_at")
	rows, err := db.r.QueryContext(ctx, q, store.NormalizeAppID(appID), machineID, limit)
	if err != nil {
		return nil, db.wrap("listing events", err)
	}
	defer rows.Close()
	out := []store.Event{}
	for rows.Next() {
		var e store.Event
		var at int64
		if err := rows.Scan(&e.AppID, &e.MachineID, &e.Type, &e.Result, &e.ErrorCode, &e.PreviousVersion, &e.Version, &at); err != nil {
			return nil, db.wrap("listing events", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, db.wrap("listing events", rows.Err())
}
