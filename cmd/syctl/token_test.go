package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
)

// TestTokenCommands runs syctl token create, list and revoke against a real server: the
// value is printed once and works, list shows no value or hash, a revoked token fails at
// once, a viewer may do none of it, and revoking the token in use needs --self.
func TestTokenCommands(t *testing.T) {
	e := newAdminEnv(t)
	out := e.must("token", "create", "--name", "ci", "--role", "viewer", "--expires", "720h")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	value := lines[len(lines)-1]
	if !strings.HasPrefix(value, auth.Prefix) || !strings.Contains(out, `"ci"`) || !strings.Contains(out, "expires ") {
		t.Fatalf("create printed %q", out)
	}
	if _, err := e.syctlAs(value, "app", "list"); err != nil {
		t.Fatalf("the new token does not work: %v", err)
	}

	list := e.must("token", "list")
	for _, want := range []string{"ID", "LAST USED", "ci", "viewer", "live"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	for _, secret := range []string{value, auth.Hash(value), e.adminTok, auth.Hash(e.adminTok)} {
		if strings.Contains(list, secret) || strings.Contains(e.must("token", "list", "--json"), secret) {
			t.Errorf("list shows a token or hash")
		}
	}

	for _, args := range [][]string{{"token", "list"}, {"token", "create", "--name", "x", "--role", "admin"}, {"token", "revoke", "1"}} {
		if _, err := e.syctlAs(e.viewerTok, args...); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("viewer %v: %v, want 403", args, err)
		}
	}
	for _, bad := range [][]string{
		{"token", "create", "--role", "admin"},
		{"token", "create", "--name", "x", "--role", "admin", "--expires", "yesterday"},
		{"token", "create", "--name", "x", "--role", "root"},
		{"token", "revoke", "x"},
		{"token", "revoke"},
		{"token", "show", "1"},
	} {
		if _, err := e.syctl(bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if n := strings.Count(strings.TrimSpace(e.must("token", "list")), "\n"); n != 3 {
		t.Errorf("bad input changed the tokens: %d rows", n)
	}

	// Token 3 is the one created above (1 and 2 are the environment's admin and viewer).
	if out := e.must("token", "revoke", "3"); !strings.Contains(out, `revoked viewer token 3 "ci"`) {
		t.Errorf("revoke printed %q", out)
	}
	if _, err := e.syctlAs(value, "app", "list"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("revoked token: %v, want 401", err)
	}
	if _, err := e.syctl("token", "revoke", "1"); err == nil || !strings.Contains(err.Error(), "--self") {
		t.Errorf("revoking the token in use without --self: %v", err)
	}
	e.must("token", "revoke", "1", "--self")
	if _, err := e.syctl("app", "list"); err == nil {
		t.Error("the self-revoked token still works")
	}
}

// TestTokenCreateExpiryClock: a relative --expires counts from the injected clock and the
// server stores that absolute time.
func TestTokenCreateExpiryClock(t *testing.T) {
	e := newAdminEnv(t)
	now := time.Now().Add(48 * time.Hour).Truncate(time.Second).UTC()
	var out, errb bytes.Buffer
	args := []string{"token", "create", "--name", "later", "--role", "viewer", "--expires", "1h", "--json",
		"--server", e.url, "--token", e.adminTok, "--cacert", e.cacert}
	if err := usage.Execute(context.Background(), newRoot(func() time.Time { return now }), args, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	want := now.Add(time.Hour).Format(time.RFC3339)
	if !strings.Contains(out.String(), want) {
		t.Errorf("created %s, want expiry %s", out.String(), want)
	}
}

// TestTokenNotInUsage: the token from $SYCTL_TOKEN is used but never printed by help
// texts or usage errors.
func TestTokenNotInUsage(t *testing.T) {
	e := newAdminEnv(t)
	t.Setenv("SYCTL_TOKEN", e.adminTok)
	for _, args := range [][]string{
		{"token", "list", "-h"},
		{"host", "list", "-h"},
		{"app", "list", "-h"},
		{"token", "list", "--bogus"},
		{"group", "policy", "show", "-h"},
	} {
		var out, errb bytes.Buffer
		run(context.Background(), args, &out, &errb)
		all := out.String() + errb.String()
		if strings.Contains(all, e.adminTok) {
			t.Errorf("%v printed the token:\n%s", args, all)
		}
		if args[len(args)-1] == "-h" && !strings.Contains(all, "$SYCTL_TOKEN") {
			t.Errorf("%v: usage does not say the token comes from $SYCTL_TOKEN:\n%s", args, all)
		}
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"token", "list", "--server", e.url, "--cacert", e.cacert}, &out, &errb); err != nil {
		t.Fatalf("token from $SYCTL_TOKEN not used: %v", err)
	}
}
