package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// ClockedFactory returns a fresh, empty store whose clock is now.
type ClockedFactory func(t *testing.T, now func() time.Time) store.Store

// Clock is a clock a test advances by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// RunClocked runs the cases that need the store's clock in hand: token expiry and the
// bounded recording of a token's last use.
func RunClocked(t *testing.T, newStore ClockedFactory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, c *Clock)
	}{
		{"TokenExpiry", testTokenExpiry},
		{"TokenLastUsed", testTokenLastUsed},
		{"ActivityRetention", testActivityRetention},
		{"ActivityHaltRolledBack", testActivityHaltRolledBack},
		{"RolloutCountersMixed", testRolloutCountersMixed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClock(time.UnixMilli(1_700_000_000_000).UTC())
			tt.fn(t, newStore(t, c.Now), c)
		})
	}
}

// testTokens: create with a name, refuse bad input without a write, look up, list
// (revoked ones too, no secret), revoke once.
func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	hash := strings.Repeat("ab", 32)
	tok := must(s.CreateToken(ctx, store.Token{Hash: hash, Name: "ci", Role: store.RoleViewer, Description: "the CI job"}))(t)
	if tok.ID == 0 || tok.Name != "ci" || tok.CreatedAt.IsZero() || !tok.ExpiresAt.IsZero() {
		t.Errorf("created %+v", tok)
	}
	bad := []store.Token{
		{Hash: hash, Name: "dup", Role: store.RoleAdmin},
		{Hash: strings.Repeat("cd", 32), Name: "root", Role: "root"},
		{Hash: "short", Name: "short", Role: store.RoleAdmin},
		{Hash: strings.Repeat("cd", 32), Name: strings.Repeat("n", store.MaxTokenName+1), Role: store.RoleAdmin},
		{Hash: strings.Repeat("cd", 32), Name: "line\nbreak", Role: store.RoleAdmin},
		{Hash: strings.Repeat("cd", 32), Name: "d", Description: strings.Repeat("d", store.MaxTokenDescription+1), Role: store.RoleAdmin},
		{Hash: strings.Repeat("cd", 32), Name: "past", Role: store.RoleAdmin, ExpiresAt: time.Unix(1_000_000_000, 0)},
	}
	for i, b := range bad {
		_, err := s.CreateToken(ctx, b)
		if i == 0 {
			wantErr(t, err, store.ErrConflict)
		} else {
			wantErr(t, err, store.ErrInvalid)
		}
	}
	got := must(s.LookupToken(ctx, hash))(t)
	if got.ID != tok.ID || got.Role != store.RoleViewer || got.Name != "ci" || got.Description != "the CI job" {
		t.Errorf("LookupToken = %+v", got)
	}
	_, err := s.LookupToken(ctx, strings.Repeat("00", 32))
	wantErr(t, err, store.ErrNotFound)

	admin := must(s.CreateToken(ctx, store.Token{Hash: strings.Repeat("ef", 32), Name: "alice", Role: store.RoleAdmin}))(t)
	list := must(s.ListTokens(ctx))(t)
	if len(list) != 2 || list[0].ID != tok.ID || list[1].ID != admin.ID || list[1].Name != "alice" {
		t.Fatalf("ListTokens = %+v", list)
	}

	revoked := must(s.RevokeToken(ctx, tok.ID))(t)
	if revoked.RevokedAt.IsZero() || revoked.Name != "ci" {
		t.Errorf("RevokeToken = %+v", revoked)
	}
	_, err = s.LookupToken(ctx, hash)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RevokeToken(ctx, tok.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RevokeToken(ctx, 99999)
	wantErr(t, err, store.ErrNotFound)
	if g := must(s.GetToken(ctx, tok.ID))(t); g.RevokedAt.IsZero() || g.State(time.Now()) != "revoked" {
		t.Errorf("GetToken after revoke = %+v", g)
	}
	_, err = s.GetToken(ctx, 99999)
	wantErr(t, err, store.ErrNotFound)
	if got := must(s.LookupToken(ctx, admin.Hash))(t); got.ID != admin.ID {
		t.Errorf("revoking one token touched another: %+v", got)
	}
	if list := must(s.ListTokens(ctx))(t); len(list) != 2 || list[0].RevokedAt.IsZero() || !list[1].RevokedAt.IsZero() {
		t.Errorf("ListTokens after revoke = %+v", list)
	}
}

// testTokenExpiry: a token works until its expiry and fails from that instant on; one
// without an expiry keeps working.
func testTokenExpiry(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	exp := c.Now().Add(time.Hour)
	tok := must(s.CreateToken(ctx, store.Token{Hash: strings.Repeat("ab", 32), Name: "short-lived", Role: store.RoleAdmin, ExpiresAt: exp}))(t)
	if !tok.ExpiresAt.Equal(exp) {
		t.Fatalf("expires %v, want %v", tok.ExpiresAt, exp)
	}
	forever := must(s.CreateToken(ctx, store.Token{Hash: strings.Repeat("cd", 32), Name: "forever", Role: store.RoleViewer}))(t)
	c.Advance(time.Hour - time.Millisecond)
	must(s.LookupToken(ctx, tok.Hash))(t)
	c.Advance(time.Millisecond)
	_, err := s.LookupToken(ctx, tok.Hash)
	wantErr(t, err, store.ErrNotFound)
	if !strings.Contains(err.Error(), "expired") {
		t.Errorf("error %q does not say expired", err)
	}
	c.Advance(24 * 365 * time.Hour)
	must(s.LookupToken(ctx, forever.Hash))(t)
	if got := must(s.GetToken(ctx, tok.ID))(t); got.State(c.Now()) != "expired" {
		t.Errorf("state %q, want expired", got.State(c.Now()))
	}
	// An expired token can still be revoked (to mark it dealt with).
	must(s.RevokeToken(ctx, tok.ID))(t)
}

// testTokenLastUsed: a lookup records its time, later ones within TokenUseInterval write
// nothing, and one after the interval writes again.
func testTokenLastUsed(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	tok := must(s.CreateToken(ctx, store.Token{Hash: strings.Repeat("ab", 32), Name: "busy", Role: store.RoleAdmin}))(t)
	if !tok.LastUsedAt.IsZero() {
		t.Fatalf("a new token was used at %v", tok.LastUsedAt)
	}
	first := c.Now()
	must(s.LookupToken(ctx, tok.Hash))(t)
	lastUsed := func() time.Time { return must(s.GetToken(ctx, tok.ID))(t).LastUsedAt }
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("last used %v, want %v", got, first)
	}
	c.Advance(store.TokenUseInterval - time.Second)
	must(s.LookupToken(ctx, tok.Hash))(t)
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("a use within %v wrote last used %v (want %v kept)", store.TokenUseInterval, got, first)
	}
	c.Advance(time.Second)
	must(s.LookupToken(ctx, tok.Hash))(t)
	if got, want := lastUsed(), first.Add(store.TokenUseInterval); !got.Equal(want) {
		t.Fatalf("last used %v, want %v", got, want)
	}
	if l := must(s.ListTokens(ctx))(t); len(l) != 1 || !l[0].LastUsedAt.Equal(first.Add(store.TokenUseInterval)) {
		t.Fatalf("ListTokens = %+v", l)
	}
}
