package auth_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/omaha-server/store/storetest"
)

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Time
		bad      bool
	}{
		{name: "never", in: ""},
		{name: "duration", in: "720h", want: now.Add(720 * time.Hour)},
		{name: "date", in: "2027-01-31", want: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)},
		{name: "rfc3339", in: "2026-12-03T13:00:00+01:00", bad: true},
		{name: "rfc3339 future", in: "2026-12-03T14:00:00+01:00", want: time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)},
		{name: "negative", in: "-1h", bad: true},
		{name: "zero", in: "0s", bad: true},
		{name: "past date", in: "2020-01-01", bad: true},
		{name: "garbage", in: "next tuesday", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.ParseExpiry(tt.in, now)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseExpiry(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("ParseExpiry(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestAuthorizeRevokedAndExpired: a revoked token and an expired one are refused as
// unknown at once, and the error never repeats the token.
func TestAuthorizeRevokedAndExpired(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	revoked, revokedHash, _ := auth.NewToken()
	expiring, expiringHash, _ := auth.NewToken()
	rt, err := s.CreateToken(ctx, store.Token{Hash: revokedHash, Name: "r", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateToken(ctx, store.Token{Hash: expiringHash, Name: "e", Role: store.RoleAdmin, ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	try := func(tok string) error {
		r := httptest.NewRequest("GET", "/api/v1/apps", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, err := auth.Authorize(ctx, s, r)
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("error %q repeats the token", err)
		}
		return err
	}
	for _, tok := range []string{revoked, expiring} {
		if err := try(tok); err != nil {
			t.Fatalf("live token refused: %v", err)
		}
	}
	if _, err := s.RevokeToken(ctx, rt.ID); err != nil {
		t.Fatal(err)
	}
	if err := try(revoked); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("revoked token: %v, want %v", err, auth.ErrUnauthenticated)
	}
	clock.Advance(time.Hour)
	if err := try(expiring); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("expired token: %v, want %v", err, auth.ErrUnauthenticated)
	}
}
