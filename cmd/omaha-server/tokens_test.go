package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// TestTokenLifecycle: create with a name and an expiry counted from the injected clock,
// list without the value or its hash, revoke, and bad input refused before any write.
func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now().Add(24 * time.Hour).Truncate(time.Second).UTC()
	clock := func() time.Time { return now }
	tok := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := runToken(ctx, append(args, "--data-dir", dir), &out, &errb, clock)
		return out.String() + errb.String(), err
	}
	out, err := tok("create", "--role", "admin", "--name", "ci-deploy", "--expires", "720h")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	value := lines[len(lines)-1]
	if !strings.HasPrefix(value, auth.Prefix) || !strings.Contains(out, `"ci-deploy"`) {
		t.Fatalf("create printed %q", out)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.LookupToken(ctx, auth.Hash(value))
	st.Close()
	if err != nil || got.Name != "ci-deploy" || !got.ExpiresAt.Equal(now.Add(720*time.Hour)) {
		t.Fatalf("stored %+v, %v; want ci-deploy expiring %v", got, err, now.Add(720*time.Hour))
	}
	if _, err := tok("create", "--role", "viewer"); err != nil {
		t.Fatal(err)
	}

	for _, bad := range [][]string{
		{"create", "--role", "admin", "--expires", "-1h"},
		{"create", "--role", "admin", "--expires", "someday"},
		{"create", "--role", "admin", "--name", strings.Repeat("n", store.MaxTokenName+1)},
		{"revoke"},
		{"revoke", "x"},
		{"revoke", "1", "2"},
		{"list", "extra"},
		{"rename", "1"},
	} {
		if out, err := tok(bad...); err == nil {
			t.Errorf("%v: no error (%s)", bad, out)
		}
	}

	list, err := tok("list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ci-deploy", "viewer", "live", now.Add(720 * time.Hour).Format(time.RFC3339), "LAST USED"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, value) || strings.Contains(list, auth.Hash(value)) {
		t.Errorf("list shows the token or its hash:\n%s", list)
	}
	if strings.Count(strings.TrimSpace(list), "\n") != 2 {
		t.Errorf("bad input wrote tokens:\n%s", list)
	}

	if out, err := tok("revoke", "1"); err != nil || !strings.Contains(out, "ci-deploy") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if _, err := tok("revoke", "1"); err == nil {
		t.Error("a second revoke succeeded")
	}
	if list, _ := tok("list", "--json"); !strings.Contains(list, `"revoked_at"`) || strings.Contains(list, value) {
		t.Errorf("list --json after revoke:\n%s", list)
	}
	st, err = sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.LookupToken(ctx, auth.Hash(value)); err == nil {
		t.Error("the revoked token still looks up")
	}
}

// TestServeLogsNoToken runs the server at debug level and uses tokens every way there is
// (API create, list, revoke, a revoked token, a viewer's write, a dashboard sign-in with a
// good and a bad token): the log holds no token value and no token hash.
func TestServeLogsNoToken(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out bytes.Buffer
	if err := runToken(ctx, []string{"create", "--data-dir", dir, "--role", "admin", "--name", "ops"}, &out, io.Discard, time.Now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	admin := lines[len(lines)-1]
	addr, log, stop := serveInBackground(t, []string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "debug"})
	base := "http://" + addr
	c, err := adminclient.New(base, admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateToken(ctx, adminapi.TokenInput{Name: "viewer", Role: store.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := adminclient.New(base, created.Value, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.CreateApp(ctx, "x", "X"); !adminclient.IsStatus(err, http.StatusForbidden) {
		t.Errorf("viewer write: %v, want 403", err)
	}
	if _, err := c.ListTokens(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{created.Value, auth.Prefix + "not-a-token"} {
		resp, err := http.PostForm(base+"/login", url.Values{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := c.RevokeToken(ctx, created.Token.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.ListApps(ctx); !adminclient.IsStatus(err, http.StatusUnauthorized) {
		t.Errorf("revoked token: %v, want 401", err)
	}
	if _, err := c.RevokeToken(ctx, 1, false); !adminclient.IsStatus(err, http.StatusConflict) {
		t.Errorf("self-revoke without confirmation: %v, want 409", err)
	}
	stop()
	text := log.String()
	if !strings.Contains(text, "token revoked") {
		t.Fatalf("the log has no line for the revoke (is it the server's log?):\n%s", text)
	}
	for _, secret := range []string{admin, created.Value, auth.Hash(admin), auth.Hash(created.Value), auth.Prefix + "not-a-token"} {
		if strings.Contains(text, secret) {
			t.Errorf("the log holds %q:\n%s", secret, text)
		}
	}
}
