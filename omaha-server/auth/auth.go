// Package auth issues and checks the bearer tokens of omaha-server's admin API.
//
// A token is 32 random bytes, written as "syt_" followed by their unpadded base64url;
// only the hex SHA-256 of the whole string is stored, so a stolen database does not yield
// usable tokens, and a lookup is one indexed equality on the hash. Roles: admin may do
// everything, viewer only reads (GET and HEAD). The Omaha endpoint and payload downloads
// need no token.
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
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(strings.TrimSpace(tok), Prefix) {
		return store.Token{}, ErrUnauthenticated
	}
	t, err := l.LookupToken(ctx, Hash(strings.TrimSpace(tok)))
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
