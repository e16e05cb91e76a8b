package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/client"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

func loadTestSigner(t *testing.T, path string) signature.Signer {
	t.Helper()
	k, err := keys.LoadPrivateKey(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.SigstoreSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTUFRoundTrip: keys init → tuf init → add-target → sign-targets → the server serves
// it → a host client refreshes and finds the target; then a 2-of-3 root rotation signed in
// two sittings reaches the same client.
func TestTUFRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyDir, repoDir := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	mustSyctl(t, "keys", "init", "--dir", keyDir, "--root-keys", "3", "--root-threshold", "2", "--insecure-no-passphrase")
	mustSyctl(t, "tuf", "init", "--repo", repoDir, "--root", filepath.Join(keyDir, "1.root.json"))

	payload := []byte(strings.Repeat("switchyard payload ", 1000))
	payloadPath := filepath.Join(dir, "payload.sy")
	if err := os.WriteFile(payloadPath, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	name := "amd64-usr/4230.2.0/payload.sy"
	partSum := strings.Repeat("ab", 32)
	mustSyctl(t, "tuf", "add-target", "--repo", repoDir, "--name", name, "--file", payloadPath,
		"--version", "4230.2.0", "--board", "amd64-usr", "--channel", "stable", "--channel", "beta",
		"--release-counter", "4230002", "--partition-size", "1073741824", "--partition-sha256", partSum,
		"--custom", "format=sy1", "--custom-int", "min_counter=4000000")
	if out := mustSyctl(t, "tuf", "status", "--repo", repoDir); !strings.Contains(out, name) || !strings.Contains(out, "none signed yet") {
		t.Fatalf("status: %s", out)
	}
	if _, _, err := syctl(t, "tuf", "sign-targets", "--repo", repoDir, "--key", filepath.Join(keyDir, "snapshot.key"), "--insecure-no-passphrase"); err == nil {
		t.Fatal("sign-targets with the snapshot key succeeded")
	}
	mustSyctl(t, "tuf", "sign-targets", "--repo", repoDir, "--key", filepath.Join(keyDir, "targets.key"), "--insecure-no-passphrase", "--expires", "30d")

	now := time.Now()
	clock := func() time.Time { return now }
	payloads := t.TempDir()
	if err := os.WriteFile(filepath.Join(payloads, hex.EncodeToString(sum[:])), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	host, err := tufhost.Open(ctx, tufhost.Config{
		Dir:         filepath.Join(dir, "server"),
		Keys:        []signature.Signer{loadTestSigner(t, filepath.Join(keyDir, "snapshot.key")), loadTestSigner(t, filepath.Join(keyDir, "timestamp.key"))},
		InitialRoot: readTestFile(t, filepath.Join(keyDir, "1.root.json")),
		Payloads:    tufhost.DirPayloads(payloads),
		Now:         clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	targetsData := readTestFile(t, filepath.Join(repoDir, repo.TargetsFile))
	pinned, err := host.Verify(tufhost.Upload{Targets: targetsData}, repo.Payload{Length: int64(len(payload)), SHA256: sum, Version: "4230.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if pinned[0].Name != name {
		t.Fatalf("pinned %+v", pinned)
	}
	if _, err := host.Publish(ctx, tufhost.Upload{Targets: targetsData}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/tuf/", http.StripPrefix("/tuf", host.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	hostDir := t.TempDir()
	rootPath := filepath.Join(hostDir, "root.json")
	if err := os.WriteFile(rootPath, readTestFile(t, filepath.Join(keyDir, "1.root.json")), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{MetadataURL: srv.URL + "/tuf/", TrustedRoot: rootPath, CacheDir: filepath.Join(hostDir, "cache"), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Find("amd64-usr", "4230.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.Length != int64(len(payload)) || got.SHA256 != sum || got.Custom.ReleaseCounter != 4230002 ||
		got.Custom.PartitionSize != 1<<30 || got.Custom.PartitionSHA256 != partSum || strings.Join(got.Custom.Channels, ",") != "stable,beta" ||
		got.Custom.Extra["format"] != "sy1" || got.Custom.Extra["min_counter"] != int64(4000000) {
		t.Fatalf("target %+v", got)
	}

	// Root rotation: replace root-3 by a new key and raise nothing else; root-1 signs
	// first, root-2 and the new key later.
	mustSyctl(t, "keys", "init", "--dir", filepath.Join(dir, "newkeys"), "--insecure-no-passphrase")
	newRoot := filepath.Join(dir, "newkeys", "root")
	out := mustSyctl(t, "tuf", "rotate-root", "--repo", repoDir, "--key", filepath.Join(keyDir, "root-1.key"),
		"--add-key", "root="+newRoot+".pub", "--revoke-key", "root="+filepath.Join(keyDir, "root-3.pub"), "--insecure-no-passphrase")
	if !strings.Contains(out, "sign-root") {
		t.Fatalf("rotate-root: %s", out)
	}
	if _, _, err := syctl(t, "tuf", "sign-root", "--repo", repoDir, "--key", filepath.Join(keyDir, "root-1.key"), "--insecure-no-passphrase"); err == nil {
		t.Fatal("signing twice with the same key succeeded")
	}
	if _, _, err := syctl(t, "tuf", "sign-root", "--repo", repoDir, "--key", filepath.Join(keyDir, "targets.key"), "--insecure-no-passphrase"); err == nil {
		t.Fatal("signing the root with the targets key succeeded")
	}
	out = mustSyctl(t, "tuf", "sign-root", "--repo", repoDir, "--key", filepath.Join(keyDir, "root-2.key"), "--key", newRoot+".key", "--insecure-no-passphrase")
	if !strings.Contains(out, "complete") {
		t.Fatalf("sign-root: %s", out)
	}
	root2 := readTestFile(t, filepath.Join(repoDir, repo.RootDir, "2.root.json"))
	if _, err := host.Publish(ctx, tufhost.Upload{Roots: [][]byte{root2}}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Refresh(ctx); err != nil || r.RootVersion != 2 {
		t.Fatalf("after rotation: %+v %v", r, err)
	}
	// The revoked root-3 cannot sign root 3 together with root-1 any more (2-of-2 left
	// from root 2's view needs root-2 or the new key).
	mustSyctl(t, "tuf", "rotate-root", "--repo", repoDir, "--key", filepath.Join(keyDir, "root-1.key"), "--insecure-no-passphrase")
	if _, _, err := syctl(t, "tuf", "sign-root", "--repo", repoDir, "--key", filepath.Join(keyDir, "root-3.key"), "--insecure-no-passphrase"); err == nil {
		t.Fatal("the revoked root key signed")
	}
}

func TestTUFRefuses(t *testing.T) {
	dir := t.TempDir()
	keyDir, repoDir := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	mustSyctl(t, "keys", "init", "--dir", keyDir, "--insecure-no-passphrase")
	mustSyctl(t, "tuf", "init", "--repo", repoDir, "--root", filepath.Join(keyDir, "1.root.json"))
	hash := strings.Repeat("0", 64)
	tests := []struct {
		name string
		args []string
	}{
		{"no repo", []string{"tuf", "status"}},
		{"not a repo", []string{"tuf", "status", "--repo", dir}},
		{"init twice", []string{"tuf", "init", "--repo", repoDir, "--root", filepath.Join(keyDir, "1.root.json")}},
		{"bad name", []string{"tuf", "add-target", "--repo", repoDir, "--name", "../x", "--length", "1", "--sha256", hash, "--version", "1", "--board", "b"}},
		{"no version", []string{"tuf", "add-target", "--repo", repoDir, "--name", "x", "--length", "1", "--sha256", hash, "--board", "b"}},
		{"bad sha", []string{"tuf", "add-target", "--repo", repoDir, "--name", "x", "--length", "1", "--sha256", "abc", "--version", "1", "--board", "b"}},
		{"file and sha", []string{"tuf", "add-target", "--repo", repoDir, "--name", "x", "--file", "f", "--length", "1", "--sha256", hash, "--version", "1", "--board", "b"}},
		{"bad custom", []string{"tuf", "add-target", "--repo", repoDir, "--name", "x", "--length", "1", "--sha256", hash, "--version", "1", "--board", "b", "--custom", "Bad Key=1"}},
		{"bad custom int", []string{"tuf", "add-target", "--repo", repoDir, "--name", "x", "--length", "1", "--sha256", hash, "--version", "1", "--board", "b", "--custom-int", "k=1.5"}},
		{"remove unknown", []string{"tuf", "remove-target", "--repo", repoDir, "--name", "x"}},
		{"sign without key", []string{"tuf", "sign-targets", "--repo", repoDir}},
		{"sign-root without rotation", []string{"tuf", "sign-root", "--repo", repoDir, "--key", filepath.Join(keyDir, "root.key"), "--insecure-no-passphrase"}},
		{"bad role", []string{"tuf", "rotate-root", "--repo", repoDir, "--threshold", "mirror=1", "--key", filepath.Join(keyDir, "root.key"), "--insecure-no-passphrase"}},
		{"threshold too high", []string{"tuf", "rotate-root", "--repo", repoDir, "--threshold", "root=2", "--key", filepath.Join(keyDir, "root.key"), "--insecure-no-passphrase"}},
		{"bad expiry", []string{"tuf", "sign-targets", "--repo", repoDir, "--key", filepath.Join(keyDir, "targets.key"), "--expires", "-1d"}},
		{"unknown command", []string{"tuf", "publish"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := syctl(t, tt.args...); err == nil {
				t.Fatal("succeeded")
			}
		})
	}
	// Nothing was staged or signed by the refused commands.
	if _, err := os.Stat(filepath.Join(repoDir, repo.StagedTargetsFile)); !os.IsNotExist(err) {
		t.Fatalf("staged targets exist: %v", err)
	}
}

// TestTUFAddDeltaTarget: --source-version pins a payload as a delta (the custom field hosts
// and the server read), signed into the targets metadata.
func TestTUFAddDeltaTarget(t *testing.T) {
	dir := t.TempDir()
	keyDir, repoDir := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	mustSyctl(t, "keys", "init", "--dir", keyDir, "--insecure-no-passphrase")
	mustSyctl(t, "tuf", "init", "--repo", repoDir, "--root", filepath.Join(keyDir, "1.root.json"))
	mustSyctl(t, "tuf", "add-target", "--repo", repoDir, "--name", "amd64-usr/4230.2.0/delta-4230.1.0.sy",
		"--length", "10", "--sha256", strings.Repeat("cd", 32), "--version", "4230.2.0", "--board", "amd64-usr",
		"--source-version", "4230.1.0")
	mustSyctl(t, "tuf", "sign-targets", "--repo", repoDir, "--key", filepath.Join(keyDir, "targets.key"), "--insecure-no-passphrase")
	var md struct {
		Signed struct {
			Targets map[string]struct {
				Custom map[string]any `json:"custom"`
			} `json:"targets"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(readTestFile(t, filepath.Join(repoDir, repo.TargetsFile)), &md); err != nil {
		t.Fatal(err)
	}
	got := md.Signed.Targets["amd64-usr/4230.2.0/delta-4230.1.0.sy"].Custom[tuf.FieldSourceVersion]
	if got != "4230.1.0" {
		t.Fatalf("custom %s = %v, want 4230.1.0 (targets %+v)", tuf.FieldSourceVersion, got, md.Signed.Targets)
	}
}
