package tufhost

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// tufJSVersion is the tuf-js release the judge installs from npm (4.1.0 supports Node 20).
const tufJSVersion = "4.1.0"

// installTufJS installs tuf-js into a cache directory shared between runs, or skips the
// test loudly when Node, npm or the npm registry is not available.
func installTufJS(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: the tuf-js judge needs %s: apt-get install nodejs npm", tool)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	prefix := filepath.Join(cache, "switchyard-test", "tuf-js-"+tufJSVersion)
	if _, err := os.Stat(filepath.Join(prefix, "node_modules", "tuf-js", "package.json")); err == nil {
		return prefix
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--prefix", prefix, "tuf-js@"+tufJSVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: cannot install tuf-js@%s from the npm registry (%v); the independent TUF judge did not run:\n%s", tufJSVersion, err, out)
	}
	return prefix
}

type tufJSResult struct {
	Length int64           `json:"length"`
	SHA256 string          `json:"sha256"`
	Custom json.RawMessage `json:"custom"`
}

func runTufJS(t *testing.T, prefix string, f *fixture, cacheDir, target string) (tufJSResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script, _ := filepath.Abs(filepath.Join("testdata", "tufjs_judge.cjs"))
	cmd := exec.CommandContext(ctx, "node", script, prefix, f.srv.URL+"/tuf/", f.srv.URL+"/tuf/targets/", cacheDir, target)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var res tufJSResult
	if err := cmd.Run(); err != nil {
		return res, &judgeError{err: err, stderr: stderr.String()}
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("tuf-js output %q: %v", stdout.String(), err)
	}
	return res, nil
}

type judgeError struct {
	err    error
	stderr string
}

func (e *judgeError) Error() string { return e.err.Error() + ": " + e.stderr }

// TestTUFJSJudge: tuf-js, a second TUF implementation, reads the repository tufhost serves
// — ed25519, ECDSA P-256 and (after a root rotation) RSA-PSS keys, consistent snapshots,
// hash-prefixed targets — refreshes, downloads the payload and checks its hash; it refuses
// the repository once the timestamp has expired.
func TestTUFJSJudge(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		if testing.Short() {
			t.Skip("installs tuf-js from npm and runs Node; skipped in -short mode")
		}
		prefix := installTufJS(t)
		f := newFixtureOn(t, kind, 1, 1)
		content := bytes.Repeat([]byte("switchyard"), 10000)
		p := f.payload(content, "4230.2.0")
		name := "amd64-usr/4230.2.0/payload.sy"
		exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
		f.publish(Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{name: p})})

		cacheDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(cacheDir, "root.json"), f.rootData, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := runTufJS(t, prefix, f, cacheDir, name)
		if err != nil {
			t.Fatal(err)
		}
		if res.Length != p.Length || res.SHA256 != hex.EncodeToString(p.SHA256[:]) {
			t.Fatalf("tuf-js downloaded %d bytes with sha256 %s", res.Length, res.SHA256)
		}
		c, err := tuf.ParseCustom(res.Custom)
		if err != nil || c.Version != "4230.2.0" || c.ReleaseCounter != 7 || c.PartitionSHA256 != p.Custom.PartitionSHA256 {
			t.Fatalf("tuf-js custom %s: %+v %v", res.Custom, c, err)
		}

		// Root rotation to an RSA targets key; tuf-js with its cached root 1 follows.
		rsaTargets := newSigner(t, keys.RSA)
		oldID, _ := tuf.SignerKeyID(f.targetKey)
		_, root2 := f.rotate(repo.RootChange{
			Add:    map[string][]crypto.PublicKey{tuf.RoleTargets: {pub(t, rsaTargets)}},
			Revoke: map[string][]string{tuf.RoleTargets: {oldID}},
		}, f.rootKeys[0])
		f.publish(Upload{Roots: [][]byte{root2}, Targets: f.signTargets(2, exp, rsaTargets, map[string]repo.Target{name: p})})
		if _, err := runTufJS(t, prefix, f, cacheDir, name); err != nil {
			t.Fatalf("after root rotation: %v", err)
		}

		// Freeze: a timestamp that expired is refused. tuf-js reads the system clock, so the
		// server signs with a clock set back beyond the timestamp validity.
		f.clock.Add(-tuf.DefaultTimestampExpiry - time.Hour)
		if _, err := f.host.Resign(context.Background()); err != nil {
			t.Fatal(err)
		}
		fresh := t.TempDir()
		if err := os.WriteFile(filepath.Join(fresh, "root.json"), f.rootData, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = runTufJS(t, prefix, f, fresh, name)
		if err == nil {
			t.Fatal("tuf-js accepted an expired timestamp")
		}
		if !strings.Contains(err.Error(), "timestamp.json is expired") && !strings.Contains(err.Error(), "Expired") {
			t.Fatalf("tuf-js failed, but not because the timestamp expired: %v", err)
		}
		t.Logf("tuf-js refused the frozen repository: %.200s", err)
	})
}
