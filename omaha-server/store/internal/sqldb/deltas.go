package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// deltaSelect reads a delta with its release's key; callers add the WHERE clause.
const deltaSelect = `SELECT d.id, r.app_id, r.version, r.board, d.source_version, d.file_name, d.size, d.sha256, d.sha1,
	d.hosted, d.url, d.targets_metadata, d.created_at FROM delta_payloads d JOIN releases r ON r.id = d.release_id`

func scanDelta(s scanner) (store.Delta, error) {
	var d store.Delta
	var created int64
	if err := s.Scan(&d.ID, &d.AppID, &d.Version, &d.Board, &d.SourceVersion, &d.FileName, &d.Size, &d.SHA256, &d.SHA1,
		&d.Hosted, &d.URL, &d.TargetsMetadata, &created); err != nil {
		return d, err
	}
	d.CreatedAt = fromMS(created)
	d.HasTargetsMetadata = d.TargetsMetadata != nil
	return d, nil
}

// CreateDelta implements store.Store.
func (db *DB) CreateDelta(ctx context.Context, d store.Delta) (store.Delta, error) {
	d.AppID = store.NormalizeAppID(d.AppID)
	switch {
	case d.Version == "" || d.Board == "" || d.SourceVersion == "" || d.FileName == "":
		return store.Delta{}, db.errorf("creating delta: version, board, source version and file name are required: %w", store.ErrInvalid)
	case d.SourceVersion == d.Version:
		return store.Delta{}, db.errorf("creating delta: source version %s is the release's own: %w", d.SourceVersion, store.ErrInvalid)
	case d.Size <= 0:
		return store.Delta{}, db.errorf("creating delta: size must be positive: %w", store.ErrInvalid)
	case len(d.SHA256) != 64:
		return store.Delta{}, db.errorf("creating delta: sha256 must be 64 hex digits: %w", store.ErrInvalid)
	case !d.Hosted && d.URL == "":
		return store.Delta{}, db.errorf("creating delta: an external delta needs a URL: %w", store.ErrInvalid)
	}
	d.CreatedAt = fromMS(ms(db.now()))
	d.HasTargetsMetadata = d.TargetsMetadata != nil
	what := fmt.Sprintf("creating delta %s %s/%s from %s", d.AppID, d.Version, d.Board, d.SourceVersion)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var relID int64
		var relFile string
		err := tx.QueryRowContext(ctx, `SELECT id, file_name FROM releases WHERE app_id = $1 AND version = $2 AND board = $3`,
			d.AppID, d.Version, d.Board).Scan(&relID, &relFile)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("release %s for board %s: %w", d.Version, d.Board, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if relFile == d.FileName {
			return fmt.Errorf("file name %q is the release's full payload: %w", d.FileName, store.ErrConflict)
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO delta_payloads (release_id, source_version, file_name, size, sha256, sha1, hosted, url, targets_metadata, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			relID, d.SourceVersion, d.FileName, d.Size, d.SHA256, d.SHA1, d.Hosted, d.URL, d.TargetsMetadata, ms(d.CreatedAt)).Scan(&d.ID)
		if err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	return d, db.wrap(what, err)
}

// ListDeltas implements store.Store.
func (db *DB) ListDeltas(ctx context.Context, appID, version, board string) ([]store.Delta, error) {
	appID = store.NormalizeAppID(appID)
	var out []store.Delta
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM releases WHERE app_id = $1 AND version = $2 AND board = $3`, appID, version, board).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("release %s for board %s: %w", version, board, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, deltaSelect+` WHERE r.app_id = $1 AND r.version = $2 AND r.board = $3 ORDER BY d.source_version, d.id`,
			appID, version, board)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []store.Delta{}
		for rows.Next() {
			d, err := scanDelta(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, db.wrap(fmt.Sprintf("deltas of %s %s/%s", appID, version, board), err)
}

// listAllDeltas reads every delta without its targets metadata, for the catalog.
func listAllDeltas(ctx context.Context, tx *sql.Tx) ([]store.Delta, error) {
	rows, err := tx.QueryContext(ctx, `SELECT d.id, r.app_id, r.version, r.board, d.source_version, d.file_name, d.size, d.sha256, d.sha1,
		d.hosted, d.url, NULL, d.created_at FROM delta_payloads d JOIN releases r ON r.id = d.release_id ORDER BY d.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Delta
	for rows.Next() {
		d, err := scanDelta(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
