package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// TestBackupCommand: a token made in the store is in the backup, opened as a restored
// store; bad calls are usage errors and write nothing.
func TestBackupCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := runToken(ctx, []string{"create", "--data-dir", dir, "--role", "admin"}, &out, &errb, time.Now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	value := lines[len(lines)-1]

	dest := filepath.Join(t.TempDir(), "backup.db")
	out.Reset()
	if err := run(ctx, []string{"backup", "--data-dir", dir, "--to", dest}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "backed up") || !strings.Contains(out.String(), dest) {
		t.Fatalf("backup printed %q", out.String())
	}
	restored := filepath.Join(t.TempDir(), sqlite.FileName)
	data, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(restored, data, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, restored, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.LookupToken(ctx, auth.Hash(value)); err != nil {
		t.Fatalf("the restored store lacks the token: %v", err)
	}

	for _, bad := range [][]string{
		{"backup", "--data-dir", dir},
		{"backup", "--data-dir", dir, "--db", "postgres://x@127.0.0.1/db", "--to", filepath.Join(dir, "x.db")},
		{"backup", "--data-dir", dir, "--to", filepath.Join(dir, "y.db"), "extra"},
	} {
		if err := run(ctx, bad, &out, &errb); !errors.Is(err, usage.ErrUsage) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
	// An existing file is refused, not overwritten.
	if err := run(ctx, []string{"backup", "--data-dir", dir, "--to", dest}, &out, &errb); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over an existing file: %v", err)
	}
}
