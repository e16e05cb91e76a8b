package postgres

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/switchyard-os/switchyard/omaha-server/store/internal/sqldb"
)

// PlanCacheModes reports plan_cache_mode on a connection of each of the store's pools.
func PlanCacheModes(ctx context.Context, s *Store) (pool, sqlPool string, err error) {
	if err = s.pool.QueryRow(ctx, "SHOW plan_cache_mode").Scan(&pool); err != nil {
		return "", "", err
	}
	err = s.sql.QueryRowContext(ctx, "SHOW plan_cache_mode").Scan(&sqlPool)
	return pool, sqlPool, err
}

// CheckinStatements are the statements the check-in pool runs, by name.
func CheckinStatements() map[string]string {
	return map[string]string{"select": selInstanceRev, "insert": insInstance, "update": updInstance,
		"history": insHistoryGuarded, "event": insEventGuarded, "count": upsertCountGuarded}
}

// MigrateTo applies migrations 1 to version to the database at url, as an older release
// would have left it.
func MigrateTo(ctx context.Context, url string, version int) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	if err := sqldb.MigrateTo(ctx, db, dialect, version); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
