package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeTUFStoreDB: --tuf-store db keeps the repository in the database (no directory
// appears), refuses bad flags as usage errors, and imports a directory that holds a
// repository (tufhost's TestImportDir checks what is copied).
func TestServeTUFStoreDB(t *testing.T) {
	ctx := context.Background()
	k := makeTUFKeys(t)
	keyArgs := []string{"--tuf-root", k.rootFile, "--tuf-key", filepath.Join(k.dir, "snapshot.key"),
		"--tuf-key", filepath.Join(k.dir, "timestamp.key"), "--tuf-passphrase-file", k.passFile}
	data := t.TempDir()
	addr, log, stop := serveInBackground(t, append([]string{"--data-dir", data, "--listen", "127.0.0.1:0",
		"--tuf-store", "db", "--tuf-lease", "5s", "--tuf-sync-interval", "100ms"}, keyArgs...))
	resp, err := http.Get("http://" + addr + "/tuf/1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	stop()
	if resp.StatusCode != 200 || !bytes.Equal(root, k.rootData) {
		t.Fatalf("/tuf/1.root.json: %d, %d bytes\n%s", resp.StatusCode, len(root), log)
	}
	if _, err := os.Stat(filepath.Join(data, "tuf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--tuf-store db made a TUF directory: %v", err)
	}
	if !strings.Contains(log.String(), "TUF repository in the database") {
		t.Errorf("the log does not say where the repository is:\n%s", log)
	}

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"unknown store", []string{"--tuf-store", "s3"}},
		{"zero lease", []string{"--tuf-store", "db", "--tuf-lease", "0s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, append(tt.args, keyArgs...)...)
			if err := serve(ctx, args, io.Discard, io.Discard, nil); !errors.Is(err, errUsage) {
				t.Fatalf("serve %v = %v, want a usage error", tt.args, err)
			}
		})
	}

	// A directory repository (here: what a dir-mode server started) is imported once.
	old := t.TempDir()
	_, _, stopDir := serveInBackground(t, append([]string{"--data-dir", old, "--listen", "127.0.0.1:0"}, keyArgs...))
	stopDir()
	_, log, stop = serveInBackground(t, append([]string{"--data-dir", old, "--listen", "127.0.0.1:0", "--tuf-store", "db"}, keyArgs...))
	stop()
	if !strings.Contains(log.String(), "tuf repository imported from a directory into the database") {
		t.Fatalf("--tuf-store db over a directory repository did not import it:\n%s", log)
	}
}
