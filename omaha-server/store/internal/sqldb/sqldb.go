// Package sqldb is the SQL both omaha-server stores run: one implementation of store.Store
// over database/sql, parameterised by a Dialect (SQLite through modernc.org/sqlite,
// PostgreSQL through pgx's database/sql driver). Queries use $N placeholders, which both
// drivers accept, and only SQL both databases understand (ON CONFLICT upserts, RETURNING).
//
// Connections: writes go to the writer pool and reads to the reader pool; the SQLite store
// gives the writer pool a single connection so writes serialise in the process instead of
// contending for the database lock, and PostgreSQL uses one pool for both. Every store
// method is one transaction.
//
// Only the packages store/sqlite and store/postgres import it.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Dialect is what differs between the databases.
type Dialect struct {
	// Name prefixes error messages ("sqlite", "postgres").
	Name string
	// IDColumn is the DDL of an auto-increment BIGINT primary key.
	IDColumn string
	// BlobType is the DDL type of a byte string.
	BlobType string
	// MigrationLock, when set, is run first in each migration transaction so that several
	// processes starting together migrate one after the other.
	MigrationLock string
	// LockRow is appended to the SELECT of the row a check-in is about to rewrite
	// (" FOR UPDATE" on PostgreSQL; SQLite's single writer needs nothing).
	LockRow string
	// ReadTxOptions are the options of read-only multi-statement transactions.
	ReadTxOptions *sql.TxOptions
	// GroupCommit batches concurrent check-ins into one transaction (for a single writer
	// connection; see groupcommit.go).
	GroupCommit bool
	// BinaryCollate follows a text column compared by byte order (for prefix ranges);
	// SQLite's default is already binary.
	BinaryCollate string
	// IsUniqueViolation reports whether err is a unique-constraint violation.
	IsUniqueViolation func(error) bool
	// ChainedLogs keeps an instance's status history and events as chains (migration 4)
	// instead of indexing them by instance. For a single writer that pays a WAL frame for
	// every page it dirties (SQLite); PostgreSQL keeps the indexes, where an index insert
	// costs less than the extra row version a chain head costs it.
	ChainedLogs bool
	// ClockMS is SQL that reads the database's clock in milliseconds since the Unix epoch,
	// for the TUF lease (every replica must judge an expiry by one clock); "" means the
	// store's clock, for a database inside the server's own process.
	ClockMS string
	// OneServer: one server process owns the database (SQLite), so it always takes the
	// TUF signing lease (see store.TUF).
	OneServer bool

	// CountShards is how many rows each instance count is spread over (see counts.go):
	// 1 (or 0) for a single writer, more where concurrent writers would queue for one row.
	CountShards int
}

// DB implements store.Store.
type DB struct {
	w, r  *sql.DB
	d     Dialect
	now   func() time.Time
	stmts statements

	batches    chan *checkinReq // nil without group commit
	writerDone chan struct{}

	noCounts atomic.Bool // see SetCounting

	observer atomic.Pointer[func(store.Activity)] // ObserveActivity's function
}

type statements struct {
	selInstance, upsertInstance, insHistory, insEvent *sql.Stmt
	insNewInstance, upsertCount                       *sql.Stmt
}

// Open migrates the database and prepares the statements of the check-in path. w and r
// may be the same pool; DB closes both. now is the clock (time.Now in production).
func Open(ctx context.Context, w, r *sql.DB, d Dialect, now func() time.Time) (*DB, error) {
	db := &DB{w: w, r: r, d: d, now: now}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = w.PrepareContext(ctx, q)
		return s
	}
	db.stmts = statements{
		selInstance: prep(`SELECT ` + instanceColumns + `, last_history_id, last_event_id FROM instances
			WHERE app_id = $1 AND machine_id = $2` + d.LockRow),
		upsertInstance: prep(`INSERT INTO instances (` + instanceColumns + `, last_history_id, last_event_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
			ON CONFLICT (machine_id, app_id) DO UPDATE SET
			boot_id = excluded.boot_id, alias = excluded.alias, version = excluded.version,
			aleph_version = excluded.aleph_version, oem = excluded.oem, oem_version = excluded.oem_version,
			board = excluded.board, track = excluded.track, group_name = excluded.group_name, ip = excluded.ip,
			last_check = excluded.last_check, status = excluded.status, status_at = excluded.status_at,
			update_version = excluded.update_version, last_error_code = excluded.last_error_code,
			last_history_id = excluded.last_history_id, last_event_id = excluded.last_event_id,
			rev = instances.rev + 1`),
		insHistory: prep(`INSERT INTO instance_status_history (app_id, machine_id, status, version, error_code, created_at, prev_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`),
		insEvent: prep(`INSERT INTO events (app_id, machine_id, type, result, error_code, previous_version, version, created_at, prev_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`),
		insNewInstance: prep(`INSERT INTO instances (` + instanceColumns + `, last_history_id, last_event_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
			ON CONFLICT (machine_id, app_id) DO NOTHING`),
		upsertCount: prep(upsertCount),
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: preparing statements: %w", d.Name, err)
	}
	if d.GroupCommit {
		db.startGroupCommit()
	}
	return db, nil
}

// Close stops the group-commit writer and closes the pools. No Checkin may be running.
func (db *DB) Close() error {
	db.stopGroupCommit()
	for _, s := range []*sql.Stmt{db.stmts.selInstance, db.stmts.upsertInstance, db.stmts.insHistory, db.stmts.insEvent, db.stmts.insNewInstance, db.stmts.upsertCount} {
		if s != nil {
			s.Close()
		}
	}
	err := db.w.Close()
	if db.r != db.w {
		if rerr := db.r.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// inTx runs fn in a write transaction and commits when it returns nil.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// inReadTx runs fn in a read-only snapshot.
func (db *DB) inReadTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, db.d.ReadTxOptions)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

func (db *DB) errorf(format string, args ...any) error {
	return fmt.Errorf(db.d.Name+": "+format, args...)
}

// wrap maps driver errors onto the store's sentinels.
func (db *DB) wrap(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%s: %s: %w", db.d.Name, what, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %s: %w", db.d.Name, what, store.ErrNotFound)
	case db.d.IsUniqueViolation(err):
		return fmt.Errorf("%s: %s: %w", db.d.Name, what, store.ErrConflict)
	default:
		return fmt.Errorf("%s: %s: %w", db.d.Name, what, err)
	}
}

// MS is the stored form of a time: milliseconds since the Unix epoch, 0 for the zero time.
func MS(t time.Time) int64 { return ms(t) }

// FromMS is MS's inverse.
func FromMS(v int64) time.Time { return fromMS(v) }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// bumpGeneration increments the catalog generation inside a catalog write.
func bumpGeneration(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1`)
	return err
}

// Generation implements store.Store.
func (db *DB) Generation(ctx context.Context) (int64, error) {
	var g int64
	err := db.r.QueryRowContext(ctx, `SELECT generation FROM catalog_generation WHERE id = 1`).Scan(&g)
	return g, db.wrap("reading generation", err)
}

func requireApp(ctx context.Context, tx *sql.Tx, appID string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM apps WHERE id = $1`, appID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("application %q: %w", appID, store.ErrNotFound)
	}
	return err
}

// CreateApp implements store.Store.
func (db *DB) CreateApp(ctx context.Context, app store.App) (store.App, error) {
	app.ID = store.NormalizeAppID(app.ID)
	if app.ID == "" || strings.TrimSpace(app.Name) == "" {
		return store.App{}, db.errorf("creating application: id and name are required: %w", store.ErrInvalid)
	}
	app.CreatedAt = fromMS(ms(db.now()))
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO apps (id, name, created_at) VALUES ($1, $2, $3)`, app.ID, app.Name, ms(app.CreatedAt)); err != nil {
			return err
		}
		_, a, err := changes(nil, map[string]string{"name": app.Name})
		if err != nil {
			return err
		}
		if err := rec.add(ctx, tx, store.Activity{Action: store.ActionAppCreate, AppID: app.ID, Subject: "app/" + app.ID, After: a}); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	return app, db.wrap(fmt.Sprintf("creating application %q", app.ID), err)
}

// GetApp implements store.Store.
func (db *DB) GetApp(ctx context.Context, id string) (store.App, error) {
	var a store.App
	var created int64
	err := db.r.QueryRowContext(ctx, `SELECT id, name, created_at FROM apps WHERE id = $1`, store.NormalizeAppID(id)).Scan(&a.ID, &a.Name, &created)
	a.CreatedAt = fromMS(created)
	return a, db.wrap(fmt.Sprintf("application %q", id), err)
}

// ListApps implements store.Store.
func (db *DB) ListApps(ctx context.Context) ([]store.App, error) {
	var apps []store.App
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		apps, err = listApps(ctx, tx)
		return err
	})
	return apps, db.wrap("listing applications", err)
}

func listApps(ctx context.Context, tx *sql.Tx) ([]store.App, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, name, created_at FROM apps ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	apps := []store.App{}
	for rows.Next() {
		var a store.App
		var created int64
		if err := rows.Scan(&a.ID, &a.Name, &created); err != nil {
			return nil, err
		}
		a.CreatedAt = fromMS(created)
		apps = append(apps, a)
	}
	return apps, rows.Err()
}

const releaseColumns = `id, app_id, version, board, file_name, size, sha256, sha1, hosted, url, targets_metadata, created_at`

// releaseColumnsOf is releaseColumns qualified with a table alias.
func releaseColumnsOf(alias string) string {
	cols := strings.Split(releaseColumns, ", ")
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}

type scanner interface{ Scan(...any) error }

func scanRelease(s scanner, extra ...any) (store.Release, error) {
	var r store.Release
	var created int64
	dest := append([]any{&r.ID, &r.AppID, &r.Version, &r.Board, &r.FileName, &r.Size, &r.SHA256, &r.SHA1, &r.Hosted, &r.URL, &r.TargetsMetadata, &created}, extra...)
	if err := s.Scan(dest...); err != nil {
		return r, err
	}
	r.CreatedAt = fromMS(created)
	r.HasTargetsMetadata = r.TargetsMetadata != nil
	return r, nil
}

// CreateRelease implements store.Store.
func (db *DB) CreateRelease(ctx context.Context, r store.Release) (store.Release, error) {
	r.AppID = store.NormalizeAppID(r.AppID)
	switch {
	case r.Version == "" || r.Board == "" || r.FileName == "":
		return store.Release{}, db.errorf("creating release: version, board and file name are required: %w", store.ErrInvalid)
	case r.Size <= 0:
		return store.Release{}, db.errorf("creating release: size must be positive: %w", store.ErrInvalid)
	case len(r.SHA256) != 64:
		return store.Release{}, db.errorf("creating release: sha256 must be 64 hex digits: %w", store.ErrInvalid)
	case !r.Hosted && r.URL == "":
		return store.Release{}, db.errorf("creating release: an external release needs a URL: %w", store.ErrInvalid)
	}
	r.CreatedAt = fromMS(ms(db.now()))
	r.HasTargetsMetadata = r.TargetsMetadata != nil
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		if err := requireApp(ctx, tx, r.AppID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO releases (app_id, version, board, file_name, size, sha256, sha1, hosted, url, targets_metadata, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			r.AppID, r.Version, r.Board, r.FileName, r.Size, r.SHA256, r.SHA1, r.Hosted, r.URL, r.TargetsMetadata, ms(r.CreatedAt)).Scan(&r.ID)
		if err != nil {
			return err
		}
		_, a, err := changes(nil, struct {
			Version  string `json:"version"`
			Board    string `json:"board"`
			FileName string `json:"file_name"`
			Size     int64  `json:"size"`
			SHA256   string `json:"sha256"`
			Hosted   bool   `json:"hosted"`
			URL      string `json:"url,omitempty"`
			Targets  bool   `json:"targets_metadata"`
		}{r.Version, r.Board, r.FileName, r.Size, r.SHA256, r.Hosted, r.URL, r.HasTargetsMetadata})
		if err != nil {
			return err
		}
		if err := rec.add(ctx, tx, store.Activity{Action: store.ActionReleaseCreate, AppID: r.AppID, Subject: "release/" + r.Version + "/" + r.Board, After: a}); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	return r, db.wrap(fmt.Sprintf("creating release %s %s/%s", r.AppID, r.Version, r.Board), err)
}

// GetRelease implements store.Store.
func (db *DB) GetRelease(ctx context.Context, appID, version, board string) (store.Release, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE app_id = $1 AND version = $2 AND board = $3`,
		store.NormalizeAppID(appID), version, board)
	r, err := scanRelease(row)
	return r, db.wrap(fmt.Sprintf("release %s %s/%s", appID, version, board), err)
}

// ListReleases implements store.Store.
func (db *DB) ListReleases(ctx context.Context, appID string) ([]store.Release, error) {
	appID = store.NormalizeAppID(appID)
	var out []store.Release
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		if err := requireApp(ctx, tx, appID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE app_id = $1 ORDER BY created_at, id`, appID)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []store.Release{}
		for rows.Next() {
			r, err := scanRelease(rows)
			if err != nil {
				return err
			}
			r.TargetsMetadata = nil
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, db.wrap("listing releases", err)
}
