package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Migration5Tokens are the rows TokensAfterMigration6 expects: what `INSERT INTO tokens
// (hash, role, description, created_at)` wrote before migration 6 (names, expiry, use
// and revocation) existed.
var Migration5Tokens = []struct{ Hash, Role, Description string }{
	{strings.Repeat("ab", 32), "admin", "deploy pipeline"},
	{strings.Repeat("cd", 32), "viewer", strings.Repeat("d", 100)},
	{strings.Repeat("ef", 32), "viewer", ""},
}

// TokensAfterMigration6 checks a store opened on a database that held Migration5Tokens
// when it was at migration 5: each token keeps working, is named after the first
// MaxTokenName characters of its description, and never expires.
func TokensAfterMigration6(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	ts, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != len(Migration5Tokens) {
		t.Fatalf("%d tokens after migration, want %d", len(ts), len(Migration5Tokens))
	}
	for i, old := range Migration5Tokens {
		want := old.Description
		if len(want) > store.MaxTokenName {
			want = want[:store.MaxTokenName]
		}
		got := ts[i]
		if got.Name != want || got.Description != old.Description || string(got.Role) != old.Role ||
			!got.ExpiresAt.IsZero() || !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
			t.Errorf("token %d after migration: %+v, want name %q", i, got, want)
		}
		if _, err := s.LookupToken(ctx, old.Hash); err != nil {
			t.Errorf("token %d stopped working: %v", i, err)
		}
	}
}
