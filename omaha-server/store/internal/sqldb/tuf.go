package sqldb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// maxLeaseHolder bounds a lease holder's name (a replica's host name and a random suffix).
const maxLeaseHolder = 200

// clockMS reads the database's clock (the store's without Dialect.ClockMS) inside tx, so
// that every replica judges a lease's expiry by the same clock.
func (db *DB) clockMS(ctx context.Context, tx *sql.Tx) (int64, error) {
	if db.d.ClockMS == "" {
		return ms(db.now()), nil
	}
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT `+db.d.ClockMS).Scan(&v)
	return v, err
}

// TUFCurrent implements store.TUF.
func (db *DB) TUFCurrent(ctx context.Context) (store.TUFFile, error) {
	f := store.TUFFile{Role: "timestamp"}
	err := db.r.QueryRowContext(ctx, `SELECT version, data FROM tuf_current WHERE id = 1`).Scan(&f.Version, &f.Data)
	return f, db.wrap("reading the current TUF timestamp", err)
}

// GetTUFFile implements store.TUF.
func (db *DB) GetTUFFile(ctx context.Context, role string, version int64) ([]byte, error) {
	var data []byte
	err := db.r.QueryRowContext(ctx, `SELECT data FROM tuf_metadata WHERE role = $1 AND version = $2`, role, version).Scan(&data)
	return data, db.wrap(fmt.Sprintf("reading TUF %s version %d", role, version), err)
}

func validTUFFile(f store.TUFFile) error {
	switch {
	case f.Role != "root" && f.Role != "targets" && f.Role != "snapshot" && f.Role != "timestamp":
		return fmt.Errorf("TUF role %q is not root, targets, snapshot or timestamp: %w", f.Role, store.ErrInvalid)
	case f.Version < 1:
		return fmt.Errorf("TUF %s version %d is not positive: %w", f.Role, f.Version, store.ErrInvalid)
	case len(f.Data) == 0 || len(f.Data) > store.MaxTUFFile:
		return fmt.Errorf("TUF %s version %d has %d bytes (1 to %d): %w", f.Role, f.Version, len(f.Data), store.MaxTUFFile, store.ErrInvalid)
	}
	return nil
}

// CommitTUF implements store.TUF. The lease row is read locked first, so a lease taken
// by another replica while this transaction runs waits for it, and a lease taken before
// fails it.
func (db *DB) CommitTUF(ctx context.Context, c store.TUFCommit) error {
	if err := db.checkCommit(c); err != nil {
		return db.errorf("committing TUF metadata: %w", err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		now, err := db.clockMS(ctx, tx)
		if err != nil {
			return err
		}
		if c.Fence != 0 {
			var fence, expires int64
			if err := tx.QueryRowContext(ctx, `SELECT fence, expires_at FROM tuf_lease WHERE id = 1`+db.d.LockRow).Scan(&fence, &expires); err != nil {
				return err
			}
			if fence != c.Fence || expires <= now {
				return fmt.Errorf("the signing lease is at fence %d and expires at %s, the write holds fence %d: %w",
					fence, fromMS(expires).Format(time.RFC3339Nano), c.Fence, store.ErrStale)
			}
		}
		for _, f := range c.Files {
			if c.Fence != 0 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO tuf_metadata (role, version, data, created_at) VALUES ($1, $2, $3, $4)`,
					f.Role, f.Version, f.Data, now); err != nil {
					if db.d.IsUniqueViolation(err) {
						return fmt.Errorf("TUF %s version %d exists: %w", f.Role, f.Version, store.ErrConflict)
					}
					return err
				}
				continue
			}
			// Without a lease: insert if absent, and the same bytes are no conflict.
			if _, err := tx.ExecContext(ctx, `INSERT INTO tuf_metadata (role, version, data, created_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (role, version) DO NOTHING`, f.Role, f.Version, f.Data, now); err != nil {
				return err
			}
			var have []byte
			if err := tx.QueryRowContext(ctx, `SELECT data FROM tuf_metadata WHERE role = $1 AND version = $2`, f.Role, f.Version).Scan(&have); err != nil {
				return err
			}
			if !bytes.Equal(have, f.Data) {
				return fmt.Errorf("TUF %s version %d exists with other bytes: %w", f.Role, f.Version, store.ErrConflict)
			}
		}
		if c.Timestamp == nil {
			return nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE tuf_current SET version = $1, data = $2, updated_at = $3 WHERE id = 1 AND version = $4`,
			c.Timestamp.Version, c.Timestamp.Data, now, c.PrevTimestamp)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("the current TUF timestamp is no longer version %d: %w", c.PrevTimestamp, store.ErrStale)
		}
		return nil
	})
	return db.wrap("committing TUF metadata", err)
}

func (db *DB) checkCommit(c store.TUFCommit) error {
	if c.Fence < 0 {
		return fmt.Errorf("fence %d: %w", c.Fence, store.ErrInvalid)
	}
	for _, f := range c.Files {
		if err := validTUFFile(f); err != nil {
			return err
		}
		if f.Role == "timestamp" {
			return fmt.Errorf("a timestamp is committed as the current one, not as a file: %w", store.ErrInvalid)
		}
	}
	if c.Timestamp == nil {
		return nil
	}
	switch {
	case c.Fence == 0:
		return fmt.Errorf("a timestamp needs the signing lease: %w", store.ErrInvalid)
	case c.Timestamp.Role != "timestamp":
		return fmt.Errorf("the current timestamp has role %q: %w", c.Timestamp.Role, store.ErrInvalid)
	case c.Timestamp.Version <= c.PrevTimestamp:
		return fmt.Errorf("timestamp version %d does not follow %d: %w", c.Timestamp.Version, c.PrevTimestamp, store.ErrInvalid)
	}
	return validTUFFile(*c.Timestamp)
}

// AcquireTUFLease implements store.TUF: a locked read of the lease row by the database's
// clock, then an UPDATE conditional on the fence read.
func (db *DB) AcquireTUFLease(ctx context.Context, holder string, ttl time.Duration, steal bool) (store.TUFLease, error) {
	switch {
	case holder == "" || len(holder) > maxLeaseHolder || !printable(holder):
		return store.TUFLease{}, db.errorf("taking the TUF lease: the holder must be 1 to %d printable bytes: %w", maxLeaseHolder, store.ErrInvalid)
	case ttl < time.Millisecond:
		return store.TUFLease{}, db.errorf("taking the TUF lease: duration %s is too short: %w", ttl, store.ErrInvalid)
	}
	var l store.TUFLease
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		now, err := db.clockMS(ctx, tx)
		if err != nil {
			return err
		}
		var cur string
		var fence, expires int64
		if err := tx.QueryRowContext(ctx, `SELECT holder, fence, expires_at FROM tuf_lease WHERE id = 1`+db.d.LockRow).Scan(&cur, &fence, &expires); err != nil {
			return err
		}
		live := expires > now
		if live && cur != holder && !steal && !db.d.OneServer {
			l = store.TUFLease{Holder: cur, Fence: fence, Expires: fromMS(expires)}
			return fmt.Errorf("%w: %s has it until %s", store.ErrLeaseHeld, cur, l.Expires.Format(time.RFC3339Nano))
		}
		next := fence
		if !live || cur != holder {
			next++
		}
		until := now + ttl.Milliseconds()
		res, err := tx.ExecContext(ctx, `UPDATE tuf_lease SET holder = $1, fence = $2, expires_at = $3 WHERE id = 1 AND fence = $4`,
			holder, next, until, fence)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("the lease moved while taking it: %w", store.ErrStale)
		}
		l = store.TUFLease{Holder: holder, Fence: next, Expires: fromMS(until)}
		return nil
	})
	if errors.Is(err, store.ErrLeaseHeld) {
		return l, db.errorf("taking the TUF lease: %w", err)
	}
	return l, db.wrap("taking the TUF lease", err)
}

// ReleaseTUFLease implements store.TUF.
func (db *DB) ReleaseTUFLease(ctx context.Context, holder string, fence int64) error {
	_, err := db.w.ExecContext(ctx, `UPDATE tuf_lease SET expires_at = 0 WHERE id = 1 AND holder = $1 AND fence = $2`, holder, fence)
	return db.wrap("releasing the TUF lease", err)
}
