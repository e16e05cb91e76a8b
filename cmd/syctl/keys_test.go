package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// syctl runs the command in-process and returns stdout, stderr and the error.
func syctl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustSyctl(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := syctl(t, args...)
	if err != nil {
		t.Fatalf("syctl %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestKeysInit(t *testing.T) {
	t.Setenv("SYCTL_PASSPHRASE", "")
	os.Unsetenv("SYCTL_PASSPHRASE")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		rootFiles []string
		threshold int
		insecure  bool
	}{
		{name: "default", args: []string{"--passphrase-file", pwFile}, rootFiles: []string{"root"}, threshold: 1},
		{name: "2 of 3 ecdsa", args: []string{"--passphrase-file", pwFile, "--root-keys", "3", "--root-threshold", "2", "--type", "ecdsa"}, rootFiles: []string{"root-1", "root-2", "root-3"}, threshold: 2},
		{name: "insecure rsa", args: []string{"--insecure-no-passphrase", "--type", "rsa"}, rootFiles: []string{"root"}, threshold: 1, insecure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && !tt.insecure {
				t.Skip("scrypt-encrypts and decrypts every key (slow under -race); TestKeysInitPassphraseFromEnv covers encryption in -short mode")
			}
			dir := filepath.Join(t.TempDir(), "keys")
			_, stderr, err := syctl(t, append([]string{"keys", "init", "--dir", dir}, tt.args...)...)
			if err != nil {
				t.Fatal(err, stderr)
			}
			if tt.insecure != strings.Contains(stderr, "UNENCRYPTED") {
				t.Errorf("insecure warning: %q", stderr)
			}
			pass := keys.PassphraseFile(pwFile)
			for _, name := range append(tt.rootFiles, "targets", "snapshot", "timestamp", "payload") {
				pem, err := os.ReadFile(filepath.Join(dir, name+".key"))
				if err != nil {
					t.Fatal(err)
				}
				if encrypted := bytes.Contains(pem, []byte("ENCRYPTED")); encrypted == tt.insecure {
					t.Errorf("%s.key encrypted = %v", name, encrypted)
				}
				if _, err := keys.LoadPrivateKey(filepath.Join(dir, name+".key"), pass); err != nil {
					t.Errorf("%s.key: %v", name, err)
				}
				if !tt.insecure && name == "targets" {
					if _, err := keys.LoadPrivateKey(filepath.Join(dir, name+".key"), keys.StaticPassphrase([]byte("wrong"))); !errors.Is(err, keys.ErrBadPassphrase) {
						t.Errorf("%s.key with a wrong passphrase: %v", name, err)
					}
				}
				if fi, err := os.Stat(filepath.Join(dir, name+".key")); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s.key mode: %v %v", name, fi.Mode(), err)
				}
				if _, err := keys.LoadPublicKey(filepath.Join(dir, name+".pub")); err != nil {
					t.Errorf("%s.pub: %v", name, err)
				}
			}
			data, err := os.ReadFile(filepath.Join(dir, "1.root.json"))
			if err != nil {
				t.Fatal(err)
			}
			root, err := repo.ParseRoot(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := repo.VerifyRootUpdate(nil, root); err != nil {
				t.Fatal(err)
			}
			if got := root.Signed.Roles[tuf.RoleRoot]; got.Threshold != tt.threshold || len(got.KeyIDs) != len(tt.rootFiles) {
				t.Errorf("root role %+v", got)
			}
			if root.Signed.Expires.Nanosecond() != 0 || root.Signed.Expires.Location().String() != "UTC" {
				t.Errorf("expires %v", root.Signed.Expires)
			}
			// The payload key is no TUF key.
			pk, _ := keys.LoadPublicKey(filepath.Join(dir, "payload.pub"))
			id, _ := tuf.KeyID(pk.CryptoPublicKey())
			if _, ok := root.Signed.Keys[id]; ok {
				t.Error("payload key listed in the root")
			}
			// A second init into the same directory refuses to overwrite anything.
			if _, _, err := syctl(t, append([]string{"keys", "init", "--dir", dir}, tt.args...)...); err == nil {
				t.Error("second keys init succeeded")
			}
		})
	}
}

func TestKeysInitRefuses(t *testing.T) {
	os.Unsetenv("SYCTL_PASSPHRASE")
	tests := []struct {
		name string
		args []string
	}{
		{"no dir", []string{"keys", "init", "--insecure-no-passphrase"}},
		{"threshold above keys", []string{"keys", "init", "--dir", t.TempDir(), "--root-keys", "2", "--root-threshold", "3", "--insecure-no-passphrase"}},
		{"bad type", []string{"keys", "init", "--dir", t.TempDir(), "--type", "dsa", "--insecure-no-passphrase"}},
		{"no passphrase source", []string{"keys", "init", "--dir", t.TempDir()}},
		{"unknown subcommand", []string{"keys", "rotate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := syctl(t, tt.args...); err == nil {
				t.Fatal("succeeded")
			}
		})
	}
}

func TestKeysInitPassphraseFromEnv(t *testing.T) {
	t.Setenv("SYCTL_PASSPHRASE", "from the environment")
	dir := t.TempDir()
	mustSyctl(t, "keys", "init", "--dir", dir)
	if _, err := keys.LoadPrivateKey(filepath.Join(dir, "targets.key"), keys.StaticPassphrase([]byte("from the environment"))); err != nil {
		t.Fatal(err)
	}
	// The encrypted targets key signs with the passphrase from the environment, and not
	// without one.
	repoDir := filepath.Join(dir, "repo")
	mustSyctl(t, "tuf", "init", "--repo", repoDir, "--root", filepath.Join(dir, "1.root.json"))
	mustSyctl(t, "tuf", "add-target", "--repo", repoDir, "--name", "b/p", "--length", "1", "--sha256", strings.Repeat("0", 64), "--version", "1", "--board", "b")
	if _, _, err := syctl(t, "tuf", "sign-targets", "--repo", repoDir, "--key", filepath.Join(dir, "targets.key"), "--insecure-no-passphrase"); err == nil {
		t.Fatal("an encrypted key loaded with --insecure-no-passphrase")
	}
	mustSyctl(t, "tuf", "sign-targets", "--repo", repoDir, "--key", filepath.Join(dir, "targets.key"))
	os.Unsetenv("SYCTL_PASSPHRASE")
	if _, _, err := syctl(t, "tuf", "sign-targets", "--repo", repoDir, "--key", filepath.Join(dir, "targets.key")); err == nil {
		t.Fatal("an encrypted key loaded without a passphrase")
	}
}
