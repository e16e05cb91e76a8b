package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store/internal/sqldb"
	"github.com/switchyard-os/switchyard/omaha-server/store/storetest"
)

// TestTokensMigration6 opens a database an older release left (migrations 1–5) holding
// tokens, and checks that migration 6 names them and keeps them working.
func TestTokensMigration6(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := sqldb.MigrateTo(ctx, raw, dialect, 5); err != nil {
		t.Fatal(err)
	}
	for _, tok := range storetest.Migration5Tokens {
		if _, err := raw.ExecContext(ctx, `INSERT INTO tokens (hash, role, description, created_at) VALUES ($1, $2, $3, 1000)`,
			tok.Hash, tok.Role, tok.Description); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.TokensAfterMigration6(t, st)
}
