// Package auth issues and checks the bearer tokens of omaha-server's admin API.
//
// A token is 32 random bytes, written as "syt_" followed by their unpadded base64url;
// only the hex SHA-256 of the whole string is stored, so a stolen database does not yield
// usable tokens, and a lookup is one indexed equality on the hash. Roles: admin may do
// everything, viewer only reads (GET and HEAD). The Omaha endpoint and payload downloads
// need no token.
//
// Lifecycle: a token has a name, an optional expiry, and may be revoked (it keeps its row).
// Every request reads the token from the store (store.Store.LookupToken), with no cache in
// this process, so a revoke or an expiry holds at once on every replica sharing the
// database; the lookup also records the token's last use, at most once a minute.
//
// Secrecy: a token is shown once, when it is created. Nothing here puts one in an error,
// a log line or a help text; the error for an unknown token does not repeat it.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Prefix starts every token, so they are recognisable in a secret scanner.
const Prefix = "syt_"

// Errors callers branch on: ErrUnauthenticated maps to 401, ErrForbidden to 403.
var (
	ErrUnauthenticated = errors.New("auth: missing or unknown bearer token")
	ErrForbidden       = errors.New("auth: this token's role may not do that")
)

// NewToken returns a fresh token and the hash to store.
func NewToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	token = Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Hash(token), nil
}

// Hash returns the stored form of a token.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Lookup is the part of the store auth reads.
type Lookup interface {
	LookupToken(ctx context.Context, hash string) (store.Token, error)
}

// Authorize checks the request's bearer token and that its role may use the request's
// method. It returns the token.
func Authorize(ctx context.Context, l Lookup, r *http.Request) (store.Token, error) {
	tok, ok := Bearer(r)
	if !ok {
		return store.Token{}, ErrUnauthenticated
	}
	t, err := l.LookupToken(ctx, Hash(tok))
	if errors.Is(err, store.ErrNotFound) {
		return store.Token{}, ErrUnauthenticated
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("auth: %w", err)
	}
	if !Allowed(t.Role, r.Method) {
		return t, fmt.Errorf("%w: %s may not %s", ErrForbidden, t.Role, r.Method)
	}
	return t, nil
}

// Bearer returns the request's bearer token when it has one of this package's form.
func Bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(tok, Prefix) {
		return "", false
	}
	return tok, true
}

// ParseExpiry reads when a new token should expire: "" for never, a duration from now
// ("720h", "90m"), a date ("2027-01-31", midnight UTC) or an RFC 3339 time. The result is
// after now or an error.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	var at time.Time
	if d, err := time.ParseDuration(s); err == nil {
		at = now.Add(d)
	} else if t, err := time.Parse(time.DateOnly, s); err == nil {
		at = t
	} else if t, err := time.Parse(time.RFC3339, s); err == nil {
		at = t
	} else {
		return time.Time{}, fmt.Errorf("auth: expiry %q: want a duration (720h), a date (2027-01-31) or an RFC 3339 time", s)
	}
	if !at.After(now) {
		return time.Time{}, fmt.Errorf("auth: expiry %q is not in the future", s)
	}
	return at.UTC(), nil
}

// Allowed reports whether role may use an HTTP method.
func Allowed(role store.Role, method string) bool {
	switch role {
	case store.RoleAdmin:
		return true
	case store.RoleViewer:
		return method == http.MethodGet || method == http.MethodHead
	}
	return false
}
