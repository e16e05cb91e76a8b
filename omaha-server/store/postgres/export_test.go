package postgres

import "context"

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
		"history": insHistoryGuarded, "event": insEventGuarded}
}
