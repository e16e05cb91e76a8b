package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

const tokenColumns = `id, hash, name, role, description, created_at, expires_at, last_used_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var role string
	var created, expires, used, revoked int64
	err := row.Scan(&t.ID, &t.Hash, &t.Name, &role, &t.Description, &created, &expires, &used, &revoked)
	t.Role, t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt = store.Role(role), fromMS(created), fromMS(expires), fromMS(used), fromMS(revoked)
	return t, err
}

// printable reports whether s has no control characters (a name or description is
// printed in tables and logs).
func printable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0
}

// CreateToken implements store.Store.
func (db *DB) CreateToken(ctx context.Context, t store.Token) (store.Token, error) {
	now := db.now()
	switch {
	case t.Role != store.RoleAdmin && t.Role != store.RoleViewer:
		return store.Token{}, db.errorf("creating token: role %q is neither admin nor viewer: %w", t.Role, store.ErrInvalid)
	case len(t.Hash) != 64:
		return store.Token{}, db.errorf("creating token: the hash must be a hex SHA-256: %w", store.ErrInvalid)
	case len(t.Name) > store.MaxTokenName || !printable(t.Name):
		return store.Token{}, db.errorf("creating token: the name must be at most %d printable bytes: %w", store.MaxTokenName, store.ErrInvalid)
	case len(t.Description) > store.MaxTokenDescription || !printable(t.Description):
		return store.Token{}, db.errorf("creating token: the description must be at most %d printable bytes: %w", store.MaxTokenDescription, store.ErrInvalid)
	case !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now):
		return store.Token{}, db.errorf("creating token: it would expire at %s, which is not in the future: %w", t.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"), store.ErrInvalid)
	}
	t.CreatedAt, t.ExpiresAt = fromMS(ms(now)), fromMS(ms(t.ExpiresAt))
	t.LastUsedAt, t.RevokedAt = fromMS(0), fromMS(0)
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO tokens (hash, name, role, description, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			t.Hash, t.Name, string(t.Role), t.Description, ms(t.CreatedAt), ms(t.ExpiresAt)).Scan(&t.ID); err != nil {
			return err
		}
		_, a, err := changes(nil, tokenView(t))
		if err != nil {
			return err
		}
		return rec.add(ctx, tx, store.Activity{Action: store.ActionTokenCreate, Subject: tokenSubject(t.ID), After: a})
	})
	return t, db.wrap("creating token", err)
}

// LookupToken implements store.Store. The read goes to the reader pool every time (no
// cache: a revoke elsewhere holds at once); the use is written only when the stored one
// is TokenUseInterval old, and the UPDATE's condition keeps racing replicas to one write.
func (db *DB) LookupToken(ctx context.Context, hash string) (store.Token, error) {
	now := db.now()
	t, err := scanToken(db.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if err != nil {
		return store.Token{}, db.wrap("looking up token", err)
	}
	if !t.Live(now) {
		return store.Token{}, db.errorf("looking up token: token %d is %s: %w", t.ID, t.State(now), store.ErrNotFound)
	}
	if now.Sub(t.LastUsedAt) >= store.TokenUseInterval {
		at := ms(now)
		cutoff := at - store.TokenUseInterval.Milliseconds()
		if _, err := db.w.ExecContext(ctx, `UPDATE tokens SET last_used_at = $1 WHERE id = $2 AND last_used_at <= $3`, at, t.ID, cutoff); err != nil {
			return store.Token{}, db.wrap("recording a token's use", err)
		}
		t.LastUsedAt = fromMS(at)
	}
	return t, nil
}

// GetToken implements store.Store.
func (db *DB) GetToken(ctx context.Context, id int64) (store.Token, error) {
	t, err := scanToken(db.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, db.errorf("token %d: %w", id, store.ErrNotFound)
	}
	return t, db.wrap("reading token", err)
}

// ListTokens implements store.Store.
func (db *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, db.wrap("listing tokens", err)
	}
	defer rows.Close()
	out := []store.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, db.wrap("listing tokens", err)
		}
		out = append(out, t)
	}
	return out, db.wrap("listing tokens", rows.Err())
}

// RevokeToken implements store.Store.
func (db *DB) RevokeToken(ctx context.Context, id int64) (store.Token, error) {
	var t store.Token
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0 RETURNING `+tokenColumns,
			ms(db.now()), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no unrevoked token %d: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		old := t
		old.RevokedAt = fromMS(0)
		b, a, err := changes(tokenView(old), tokenView(t))
		if err != nil {
			return err
		}
		return rec.add(ctx, tx, store.Activity{Action: store.ActionTokenRevoke, Subject: tokenSubject(t.ID), Before: b, After: a,
			Reason: "token " + strconv.Quote(t.Name)})
	})
	return t, db.wrap("revoking token", err)
}
