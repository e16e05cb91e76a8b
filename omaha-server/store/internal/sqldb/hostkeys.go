package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Host keys (migration 5): one row per machine id. A pin inserts only when the machine id
// has no row (ON CONFLICT DO NOTHING) and reads back whichever row won, in one
// transaction; an enrollment upserts.

// maxMachineIDBytes bounds a stored machine id (the Omaha parser already bounds
// attribute values; this keeps the admin API's input to the same size).
const maxMachineIDBytes = 256

const hostKeyColumns = `machine_id, public_key, enrolled, created_at, updated_at`

func scanHostKey(row interface{ Scan(...any) error }) (store.HostKey, error) {
	var k store.HostKey
	var created, updated int64
	err := row.Scan(&k.MachineID, &k.PublicKey, &k.Enrolled, &created, &updated)
	k.CreatedAt, k.UpdatedAt = fromMS(created), fromMS(updated)
	return k, err
}

func (db *DB) checkHostKey(k store.HostKey) error {
	if k.MachineID == "" || len(k.MachineID) > maxMachineIDBytes {
		return db.errorf("host key: machine id must be 1 to %d bytes: %w", maxMachineIDBytes, store.ErrInvalid)
	}
	if k.PublicKey == "" || len(k.PublicKey) > 128 {
		return db.errorf("host key: public key must be 1 to 128 bytes: %w", store.ErrInvalid)
	}
	return nil
}

// GetHostKey implements store.Store.
func (db *DB) GetHostKey(ctx context.Context, machineID string) (store.HostKey, error) {
	k, err := scanHostKey(db.r.QueryRowContext(ctx, `SELECT `+hostKeyColumns+` FROM host_keys WHERE machine_id = $1`, machineID))
	return k, db.wrap(fmt.Sprintf("host key of %q", machineID), err)
}

// PinHostKey implements store.Store.
func (db *DB) PinHostKey(ctx context.Context, k store.HostKey) (store.HostKey, error) {
	if err := db.checkHostKey(k); err != nil {
		return store.HostKey{}, err
	}
	now := ms(db.now())
	var got store.HostKey
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO host_keys (`+hostKeyColumns+`) VALUES ($1, $2, $3, $4, $4)
			ON CONFLICT (machine_id) DO NOTHING`, k.MachineID, k.PublicKey, false, now); err != nil {
			return err
		}
		var err error
		got, err = scanHostKey(tx.QueryRowContext(ctx, `SELECT `+hostKeyColumns+` FROM host_keys WHERE machine_id = $1`, k.MachineID))
		return err
	})
	return got, db.wrap(fmt.Sprintf("pinning the host key of %q", k.MachineID), err)
}

// EnrollHostKey implements store.Store.
func (db *DB) EnrollHostKey(ctx context.Context, k store.HostKey) (store.HostKey, error) {
	if err := db.checkHostKey(k); err != nil {
		return store.HostKey{}, err
	}
	now := ms(db.now())
	var got store.HostKey
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		var before any
		old, err := scanHostKey(tx.QueryRowContext(ctx, `SELECT `+hostKeyColumns+` FROM host_keys WHERE machine_id = $1`, k.MachineID))
		switch {
		case err == nil:
			before = hostKeyView(old)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		got, err = scanHostKey(tx.QueryRowContext(ctx, `INSERT INTO host_keys (`+hostKeyColumns+`) VALUES ($1, $2, $3, $4, $4)
			ON CONFLICT (machine_id) DO UPDATE SET public_key = excluded.public_key, enrolled = excluded.enrolled,
			updated_at = excluded.updated_at RETURNING `+hostKeyColumns, k.MachineID, k.PublicKey, true, now))
		if err != nil {
			return err
		}
		b, a, err := changes(before, hostKeyView(got))
		if err != nil {
			return err
		}
		return rec.add(ctx, tx, store.Activity{Action: store.ActionHostKeyEnroll, Subject: "host/" + k.MachineID, Before: b, After: a})
	})
	return got, db.wrap(fmt.Sprintf("enrolling the host key of %q", k.MachineID), err)
}

// DeleteHostKey implements store.Store.
func (db *DB) DeleteHostKey(ctx context.Context, machineID string) error {
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		old, err := scanHostKey(tx.QueryRowContext(ctx, `DELETE FROM host_keys WHERE machine_id = $1 RETURNING `+hostKeyColumns, machineID))
		if err != nil {
			return err
		}
		b, _, err := changes(hostKeyView(old), nil)
		if err != nil {
			return err
		}
		return rec.add(ctx, tx, store.Activity{Action: store.ActionHostKeyRemove, Subject: "host/" + machineID, Before: b})
	})
	return db.wrap(fmt.Sprintf("deleting the host key of %q", machineID), err)
}

// ListHostKeys implements store.Store.
func (db *DB) ListHostKeys(ctx context.Context, after string, limit int) ([]store.HostKey, error) {
	if limit <= 0 || limit > store.MaxHostKeys {
		limit = store.MaxHostKeys
	}
	// Byte order on both databases, so that a page boundary means the same everywhere.
	c := db.d.BinaryCollate
	rows, err := db.r.QueryContext(ctx, `SELECT `+hostKeyColumns+` FROM host_keys WHERE machine_id`+c+` > $1
		ORDER BY machine_id`+c+` LIMIT $2`, after, limit)
	if err != nil {
		return nil, db.wrap("listing host keys", err)
	}
	defer rows.Close()
	out := []store.HostKey{}
	for rows.Next() {
		k, err := scanHostKey(rows)
		if err != nil {
			return nil, db.wrap("listing host keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing host keys", err)
	}
	return out, nil
}

// hostKeyView is what an activity entry shows of a host key.
func hostKeyView(k store.HostKey) any {
	return struct {
		PublicKey string `json:"public_key"`
		Enrolled  bool   `json:"enrolled"`
	}{k.PublicKey, k.Enrolled}
}
