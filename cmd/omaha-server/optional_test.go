package main

import (
	"bytes"
	"context"
	"crypto"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

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

// TestServeTUF: --tuf-root and the online keys turn on the TUF repository under /tuf/ and
// its admin routes (the server package's tests cover what they do); a bad key passphrase
// stops the server at start with a clear error.
func TestServeTUF(t *testing.T) {
	ctx := context.Background()
	k := makeTUFKeys(t)
	data := t.TempDir()
	var out bytes.Buffer
	if err := run(ctx, []string{"token", "create", "--data-dir", data, "--role", "viewer"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	token := lines[len(lines)-1]
	addr, log, stop := serveInBackground(t, []string{"--data-dir", data, "--listen", "127.0.0.1:0",
		"--tuf-root", k.rootFile, "--tuf-key", filepath.Join(k.dir, "snapshot.key"),
		"--tuf-key", filepath.Join(k.dir, "timestamp.key"), "--tuf-passphrase-file", k.passFile})
	defer stop()
	base := "http://" + addr
	resp, err := http.Get(base + "/tuf/1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(root, k.rootData) {
		t.Fatalf("/tuf/1.root.json: %d, %d bytes\n%s", resp.StatusCode, len(root), log)
	}
	c, err := adminclient.New(base, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.TUFState(ctx); err != nil || st.RootVersion != 1 {
		t.Fatalf("TUF state: %+v, %v", st, err)
	}

	// A bad key passphrase stops the server at start with a clear error.
	bad := filepath.Join(k.dir, "bad-pass")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	err = serve(ctx, []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--tuf-root", k.rootFile,
		"--tuf-key", filepath.Join(k.dir, "snapshot.key"), "--tuf-passphrase-file", bad}, io.Discard, io.Discard, nil)
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

	// --fleetlock-configured-groups-only: a group nobody configured is refused.
	addr2, log2, stop2 := serveInBackground(t, []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--fleetlock-etcd", "http://" + endpoint, "--fleetlock-configured-groups-only"})
	defer stop2()
	addr = addr2
	if code := post("/v1/pre-reboot", "host-c"); code != http.StatusBadRequest {
		t.Fatalf("pre-reboot in an unconfigured group with --fleetlock-configured-groups-only: %d, want 400\n%s", code, log2)
	}
}
