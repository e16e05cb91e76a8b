package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
