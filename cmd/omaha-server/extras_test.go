package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/rebootlock/etcdtest"
	"github.com/switchyard-os/switchyard/signing/keys"
	sytuf "github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// tufKeys makes a TUF root and its keys as syctl keys init does: the online keys encrypted
// on disk with a passphrase file, the root written as 1.root.json.
type tufKeys struct {
	dir, rootFile, passFile string
	targets, rootSigner     signature.Signer
	rootData                []byte
}

func makeTUFKeys(t *testing.T) tufKeys {
	t.Helper()
	k := tufKeys{dir: t.TempDir()}
	k.passFile = filepath.Join(k.dir, "pass")
	if err := os.WriteFile(k.passFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	roles := map[string]repo.RoleKeys{}
	priv := map[string]*keys.PrivateKey{}
	for _, role := range sytuf.Roles {
		p, err := keys.Generate(keys.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		priv[role] = p
		roles[role] = repo.RoleKeys{Keys: []crypto.PublicKey{p.Public().CryptoPublicKey()}, Threshold: 1}
		if role == sytuf.RoleSnapshot || role == sytuf.RoleTimestamp {
			if err := p.Save(filepath.Join(k.dir, role+".key"), keys.PassphraseFile(k.passFile)); err != nil {
				t.Fatal(err)
			}
		}
	}
	signer := func(role string) signature.Signer {
		s, err := priv[role].SigstoreSigner()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	root, err := repo.NewRoot(roles, sytuf.Expiry(time.Now(), sytuf.DefaultRootExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(nil, root, signer(sytuf.RoleRoot)); err != nil {
		t.Fatal(err)
	}
	if k.rootData, err = root.ToBytes(true); err != nil {
		t.Fatal(err)
	}
	k.rootFile = filepath.Join(k.dir, "1.root.json")
	if err := os.WriteFile(k.rootFile, k.rootData, 0o644); err != nil {
		t.Fatal(err)
	}
	k.targets = signer(sytuf.RoleTargets)
	k.rootSigner = signer(sytuf.RoleRoot)
	return k
}

// signedTargets returns targets metadata pinning payload as NAME with version.
func (k tufKeys) signedTargets(t *testing.T, name, version string, payload []byte) []byte {
	t.Helper()
	r, err := repo.Init(t.TempDir(), k.rootData)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddTarget(name, repo.Target{Length: int64(len(payload)), SHA256: sha256.Sum256(payload),
		Custom: sytuf.Custom{Version: version, Board: "amd64-usr", ReleaseCounter: 1}}); err != nil {
		t.Fatal(err)
	}
	data, err := r.SignTargets(sytuf.Expiry(time.Now(), sytuf.DefaultTargetsExpiry), k.targets)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestServeTUF: with --tuf-root and the online keys, the server serves the repository, a
// release whose signed targets pin it goes live in the repository, one whose targets do
// not pin it is refused and leaves no release behind, and a release without targets (for
// Flatcar's update_engine) is still accepted.
func TestServeTUF(t *testing.T) {
	ctx := context.Background()
	k := makeTUFKeys(t)
	data := t.TempDir()
	var out bytes.Buffer
	if err := run(ctx, []string{"token", "create", "--data-dir", data, "--role", "admin"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	token := lines[len(lines)-1]
	addr, log, stop := serveInBackground(t, []string{"--data-dir", data, "--listen", "127.0.0.1:0",
		"--tuf-root", k.rootFile, "--tuf-key", filepath.Join(k.dir, "snapshot.key"),
		"--tuf-key", filepath.Join(k.dir, "timestamp.key"), "--tuf-passphrase-file", k.passFile})
	defer stop()
	base := "http://" + addr

	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := get("/tuf/1.root.json"); code != 200 {
		t.Fatalf("/tuf/1.root.json: %d\n%s", code, log)
	}

	c, err := adminclient.New(base, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApp(ctx, "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}", "Flatcar"); err != nil {
		t.Fatal(err)
	}
	app := "e96281a6-d1af-4bde-9a0a-97b76e56dc57"
	payload := bytes.Repeat([]byte("switchyard payload "), 5000)
	name := "amd64-usr/2.0.0/update.sy"
	targets := k.signedTargets(t, name, "2.0.0", payload)
	meta := func(v string, p []byte) adminapi.ReleaseMetadata {
		return adminapi.ReleaseMetadata{Version: v, Board: "amd64-usr", FileName: "update.sy", Size: int64(len(p))}
	}

	// Targets that pin another payload: refused, nothing recorded.
	other := []byte("not the payload")
	if _, err := c.Upload(ctx, app, meta("1.5.0", other), targets, bytes.NewReader(other)); err == nil {
		t.Fatal("a release its targets metadata does not pin was accepted")
	} else if !adminclient.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("unpinned release: %v, want a 400", err)
	}
	rels, err := c.ListReleases(ctx, app)
	if err != nil || len(rels) != 0 {
		t.Fatalf("after the refused upload: %d releases (%v), want none", len(rels), err)
	}

	rel, err := c.Upload(ctx, app, meta("2.0.0", payload), targets, bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("pinned release: %v", err)
	}
	if !rel.HasTargetsMetadata {
		t.Error("the release is not listed as carrying targets metadata")
	}
	code, ts := get("/tuf/timestamp.json")
	if code != 200 {
		t.Fatalf("timestamp.json: %d", code)
	}
	var tsDoc struct {
		Signed struct {
			Meta map[string]struct{ Version int } `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(ts, &tsDoc); err != nil {
		t.Fatal(err)
	}
	snapV := tsDoc.Signed.Meta["snapshot.json"].Version
	if code, _ := get(fmt.Sprintf("/tuf/%d.snapshot.json", snapV)); code != 200 {
		t.Fatalf("%d.snapshot.json: %d", snapV, code)
	}
	sum := sha256.Sum256(payload)
	code, body := get("/tuf/targets/amd64-usr/2.0.0/" + hex.EncodeToString(sum[:]) + ".update.sy")
	if code != 200 || !bytes.Equal(body, payload) {
		t.Fatalf("payload target: %d, %d bytes", code, len(body))
	}

	// Root rotation reaches the running server through the admin API: a root signed by the
	// current root key is served; one that is not is refused and changes nothing.
	prev, err := repo.ParseRoot(k.rootData)
	if err != nil {
		t.Fatal(err)
	}
	next, err := repo.NextRoot(prev, repo.RootChange{Expires: sytuf.Expiry(time.Now(), sytuf.DefaultRootExpiry)})
	if err != nil {
		t.Fatal(err)
	}
	unsigned, _ := next.ToBytes(true)
	if _, err := c.PublishTUFRoot(ctx, unsigned); !adminclient.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("unsigned root: %v, want a 400", err)
	}
	if err := repo.SignRoot(prev, next, k.rootSigner); err != nil {
		t.Fatal(err)
	}
	signed, _ := next.ToBytes(true)
	st, err := c.PublishTUFRoot(ctx, signed)
	if err != nil || st.RootVersion != 2 {
		t.Fatalf("signed root: %+v, %v", st, err)
	}
	if code, _ := get("/tuf/2.root.json"); code != 200 {
		t.Fatalf("/tuf/2.root.json after the rotation: %d", code)
	}
	plain := []byte("flatcar-style payload")
	if _, err := c.Upload(ctx, app, meta("2.1.0", plain), nil, bytes.NewReader(plain)); err != nil {
		t.Fatalf("release without targets metadata: %v", err)
	}

	// A bad key passphrase stops the server at start with a clear error.
	bad := filepath.Join(k.dir, "bad-pass")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	err = serve(ctx, []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--tuf-root", k.rootFile,
		"--tuf-key", filepath.Join(k.dir, "snapshot.key"), "--tuf-passphrase-file", bad}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "snapshot.key") {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

// TestServeFleetLock: --fleetlock-etcd serves the FleetLock protocol on a real etcd.
func TestServeFleetLock(t *testing.T) {
	endpoint := strings.TrimPrefix(etcdtest.Start(t), "http://")
	addr, log, stop := serveInBackground(t, []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--fleetlock-etcd", "http://" + endpoint})
	defer stop()
	post := func(path, id string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path,
			strings.NewReader(`{"client_params":{"id":"`+id+`","group":"default"}}`))
		req.Header.Set("fleet-lock-protocol", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/v1/pre-reboot", "host-a"); code != 200 {
		t.Fatalf("pre-reboot host-a: %d\n%s", code, log)
	}
	if code := post("/v1/pre-reboot", "host-b"); code != http.StatusConflict {
		t.Fatalf("pre-reboot host-b with the only slot taken: %d, want 409", code)
	}
	if code := post("/v1/steady-state", "host-a"); code != 200 {
		t.Fatalf("steady-state host-a: %d", code)
	}
	if code := post("/v1/pre-reboot", "host-b"); code != 200 {
		t.Fatalf("pre-reboot host-b after host-a released: %d", code)
	}
}
