package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/pgtest"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/omaha-server/store/storetest"
)

var cluster = pgtest.NewShared(pgtest.Options{})

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

// syncBuffer is a log sink several handlers write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts the admin API over st, logging at debug level into logs.
func serve(t *testing.T, st store.Store, logs io.Writer) string {
	r := mux.NewRouter()
	adminapi.New(adminapi.Config{Store: st, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}).Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

// token stores a fresh token and returns its value.
func token(t *testing.T, st store.Store, role store.Role) (string, store.Token) {
	v, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := st.CreateToken(context.Background(), store.Token{Hash: hash, Name: string(role), Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return v, tok
}

// call sends one request and returns the status and body.
func call(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestTokensAPI: a viewer may neither list, create nor revoke (403); an admin creates a
// token whose value is answered once and works at once, lists it without value or hash,
// revokes it and it stops working; bad input is 400 and writes nothing; revoking one's
// own token needs ?confirm=self. No token value reaches the log.
func TestTokensAPI(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs syncBuffer
	base := serve(t, st, &logs) + "/api/v1/tokens"
	admin, adminTok := token(t, st, store.RoleAdmin)
	viewer, _ := token(t, st, store.RoleViewer)

	for _, c := range []struct{ method, url, body string }{
		{"GET", base, ""},
		{"POST", base, `{"name":"x","role":"admin"}`},
		{"DELETE", base + "/1", ""},
	} {
		if code, body := call(t, c.method, c.url, viewer, c.body); code != http.StatusForbidden {
			t.Errorf("viewer %s %s: %d %s, want 403", c.method, c.url, code, body)
		}
	}
	if code, _ := call(t, "GET", base, auth.Prefix+"unknown", ""); code != http.StatusUnauthorized {
		t.Errorf("unknown token listed tokens: %d", code)
	}

	bad := []string{
		`{"role":"admin"}`,
		`{"name":"x","role":"root"}`,
		`{"name":"x","role":"admin","expires_at":"2020-01-01T00:00:00Z"}`,
		`{"name":"` + strings.Repeat("n", store.MaxTokenName+1) + `","role":"admin"}`,
		`{"name":"x","role":"admin","secret":"x"}`,
		`not json`,
	}
	for _, b := range bad {
		if code, body := call(t, "POST", base, admin, b); code != http.StatusBadRequest {
			t.Errorf("POST %s: %d %s, want 400", b, code, body)
		}
	}
	if ts, _ := st.ListTokens(ctx); len(ts) != 2 {
		t.Fatalf("bad input wrote tokens: %+v", ts)
	}

	exp := clock.Now().Add(720 * time.Hour)
	in, _ := json.Marshal(adminapi.TokenInput{Name: "ci", Role: store.RoleViewer, ExpiresAt: &exp})
	code, body := call(t, "POST", base, admin, string(in))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var created adminapi.CreatedToken
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Value, auth.Prefix) || created.Token.Name != "ci" || !created.Token.ExpiresAt.Equal(exp) {
		t.Fatalf("created %+v", created)
	}
	if code, _ := call(t, "GET", base, created.Value, ""); code != http.StatusForbidden {
		t.Errorf("new viewer token: %d, want 403 (known, but a viewer)", code)
	}

	code, body = call(t, "GET", base, admin, "")
	if code != http.StatusOK {
		t.Fatalf("list: %d %s", code, body)
	}
	if strings.Contains(body, created.Value) || strings.Contains(body, auth.Hash(created.Value)) || strings.Contains(body, adminTok.Hash) || strings.Contains(body, `"hash"`) {
		t.Errorf("the list shows a value or a hash: %s", body)
	}
	var list []store.Token
	json.Unmarshal([]byte(body), &list)
	if len(list) != 3 || list[2].Name != "ci" || list[2].LastUsedAt.IsZero() || list[0].LastUsedAt.IsZero() {
		t.Fatalf("list = %+v (want 3, the new one and the admin used)", list)
	}

	code, body = call(t, "DELETE", base+"/"+itoa(created.Token.ID), admin, "")
	if code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if code, _ := call(t, "GET", base, created.Value, ""); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", code)
	}
	if code, _ := call(t, "DELETE", base+"/"+itoa(created.Token.ID), admin, ""); code != http.StatusNotFound {
		t.Errorf("second revoke: %d, want 404", code)
	}
	if code, _ := call(t, "DELETE", base+"/x", admin, ""); code != http.StatusBadRequest {
		t.Errorf("revoke x: %d, want 400", code)
	}

	// One's own token: refused without the confirmation, revoked with it.
	if code, body := call(t, "DELETE", base+"/"+itoa(adminTok.ID), admin, ""); code != http.StatusConflict || !strings.Contains(body, "confirm=self") {
		t.Errorf("self-revoke without confirm: %d %s, want 409", code, body)
	}
	if code, _ := call(t, "GET", base, admin, ""); code != http.StatusOK {
		t.Fatalf("the refused self-revoke revoked: %d", code)
	}
	if code, body := call(t, "DELETE", base+"/"+itoa(adminTok.ID)+"?confirm=self", admin, ""); code != http.StatusOK {
		t.Fatalf("self-revoke with confirm: %d %s", code, body)
	}
	if code, _ := call(t, "GET", base, admin, ""); code != http.StatusUnauthorized {
		t.Errorf("self-revoked token: %d, want 401", code)
	}

	out := logs.String()
	if !strings.Contains(out, "token created") || !strings.Contains(out, "token revoked") {
		t.Errorf("no log line for the create and revoke:\n%s", out)
	}
	for _, secret := range []string{admin, viewer, created.Value, auth.Hash(created.Value), adminTok.Hash} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds a token or its hash %q:\n%s", secret, out)
		}
	}
}

// TestTokenExpiryAPI: an expired token is refused at the instant it expires.
func TestTokenExpiryAPI(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base := serve(t, st, io.Discard) + "/api/v1/tokens"
	v, hash, _ := auth.NewToken()
	if _, err := st.CreateToken(ctx, store.Token{Hash: hash, Name: "temp", Role: store.RoleAdmin, ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if code, _ := call(t, "GET", base, v, ""); code != http.StatusOK {
		t.Fatalf("before expiry: %d", code)
	}
	clock.Advance(time.Hour)
	if code, _ := call(t, "GET", base, v, ""); code != http.StatusUnauthorized {
		t.Fatalf("at expiry: %d, want 401", code)
	}
}

// TestRevokeAcrossReplicas: two server processes on one PostgreSQL database; a token
// revoked through one fails on the other at its next request.
func TestRevokeAcrossReplicas(t *testing.T) {
	url := cluster.DB(t)
	open := func() store.Store {
		s, err := postgres.Open(context.Background(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	baseA, baseB := serve(t, a, io.Discard)+"/api/v1/tokens", serve(t, b, io.Discard)+"/api/v1/tokens"
	admin, _ := token(t, a, store.RoleAdmin)
	victim, victimTok := token(t, a, store.RoleAdmin)
	for i := 0; i < 3; i++ { // warm whatever B might cache
		if code, _ := call(t, "GET", baseB, victim, ""); code != http.StatusOK {
			t.Fatalf("replica B refused a live token: %d", code)
		}
	}
	if code, body := call(t, "DELETE", baseA+"/"+itoa(victimTok.ID), admin, ""); code != http.StatusOK {
		t.Fatalf("revoke on A: %d %s", code, body)
	}
	if code, _ := call(t, "GET", baseB, victim, ""); code != http.StatusUnauthorized {
		t.Fatalf("replica B still accepts the token revoked on A: %d", code)
	}
	if code, _ := call(t, "GET", baseB, admin, ""); code != http.StatusOK {
		t.Fatalf("replica B refused the other token: %d", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
