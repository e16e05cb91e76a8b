package server_test

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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/signing/keys"
	sytuf "github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// tufRoot is a TUF root and the signers of its four roles.
type tufRoot struct {
	data    []byte
	signers map[string]signature.Signer
}

func newTUFRoot(t *testing.T) tufRoot {
	t.Helper()
	r := tufRoot{signers: map[string]signature.Signer{}}
	roles := map[string]repo.RoleKeys{}
	for _, role := range sytuf.Roles {
		p, err := keys.Generate(keys.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		if r.signers[role], err = p.SigstoreSigner(); err != nil {
			t.Fatal(err)
		}
		roles[role] = repo.RoleKeys{Keys: []crypto.PublicKey{p.Public().CryptoPublicKey()}, Threshold: 1}
	}
	root, err := repo.NewRoot(roles, sytuf.Expiry(time.Now(), sytuf.DefaultRootExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(nil, root, r.signers[sytuf.RoleRoot]); err != nil {
		t.Fatal(err)
	}
	if r.data, err = root.ToBytes(true); err != nil {
		t.Fatal(err)
	}
	return r
}

// targets returns targets metadata pinning payload as name with version.
func (r tufRoot) targets(t *testing.T, name, version string, payload []byte) []byte {
	t.Helper()
	rp, err := repo.Init(t.TempDir(), r.data)
	if err != nil {
		t.Fatal(err)
	}
	if err := rp.AddTarget(name, repo.Target{Length: int64(len(payload)), SHA256: sha256.Sum256(payload),
		Custom: sytuf.Custom{Version: version, Board: "amd64-usr", ReleaseCounter: 1}}); err != nil {
		t.Fatal(err)
	}
	data, err := rp.SignTargets(sytuf.Expiry(time.Now(), sytuf.DefaultTargetsExpiry), r.signers[sytuf.RoleTargets])
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTUF: with Config.TUF the server serves the repository from its own hosted payloads;
// a release whose signed targets pin it goes live, one whose targets do not pin it is
// refused and leaves no release behind, a release without targets (for Flatcar's
// update_engine) is still accepted; the TUF admin routes go through the admin API's tokens
// and are counted in the request metrics like every other route; Run keeps the timestamp
// signed until its context ends.
func TestTUF(t *testing.T) {
	ctx := context.Background()
	root := newTUFRoot(t)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := newFixtureConfig(t, st, server.Config{TUF: &tufhost.Config{
		Dir: filepath.Join(t.TempDir(), "tuf"), InitialRoot: root.data,
		Keys: []signature.Signer{root.signers[sytuf.RoleSnapshot], root.signers[sytuf.RoleTimestamp]},
	}})
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := get("/tuf/1.root.json"); code != 200 {
		t.Fatalf("/tuf/1.root.json: %d", code)
	}

	app := "e96281a6-d1af-4bde-9a0a-97b76e56dc57"
	ok(f.admin.CreateApp(ctx, "{"+app+"}", "Flatcar"))(t)
	payload := bytes.Repeat([]byte("switchyard payload "), 5000)
	targets := root.targets(t, "amd64-usr/2.0.0/update.sy", "2.0.0", payload)
	meta := func(v string, p []byte) adminapi.ReleaseMetadata {
		return adminapi.ReleaseMetadata{Version: v, Board: "amd64-usr", FileName: "update.sy", Size: int64(len(p))}
	}
	other := []byte("not the payload")
	if _, err := f.admin.Upload(ctx, app, meta("1.5.0", other), targets, bytes.NewReader(other)); !adminclient.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("a release its targets metadata does not pin: %v, want a 400", err)
	}
	if rels := ok(f.admin.ListReleases(ctx, app))(t); len(rels) != 0 {
		t.Fatalf("after the refused upload: %d releases, want none", len(rels))
	}
	rel := ok(f.admin.Upload(ctx, app, meta("2.0.0", payload), targets, bytes.NewReader(payload)))(t)
	if !rel.HasTargetsMetadata {
		t.Error("the release is not listed as carrying targets metadata")
	}
	code, ts := get("/tuf/timestamp.json")
	if code != 200 {
		t.Fatalf("timestamp.json after the publish: %d", code)
	}
	var tsDoc struct {
		Signed struct {
			Meta map[string]struct{ Version int } `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(ts, &tsDoc); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(fmt.Sprintf("/tuf/%d.snapshot.json", tsDoc.Signed.Meta["snapshot.json"].Version)); code != 200 {
		t.Fatalf("the snapshot the timestamp names: %d", code)
	}
	sum := sha256.Sum256(payload)
	if code, body := get("/tuf/targets/amd64-usr/2.0.0/" + hex.EncodeToString(sum[:]) + ".update.sy"); code != 200 || !bytes.Equal(body, payload) {
		t.Fatalf("the payload target: %d, %d bytes", code, len(body))
	}
	plain := []byte("flatcar-style payload")
	ok(f.admin.Upload(ctx, app, meta("2.1.0", plain), nil, bytes.NewReader(plain)))(t)

	// The TUF admin routes: a viewer reads the state, only an admin publishes a root.
	state := ok(f.viewer.TUFState(ctx))(t)
	if state.TargetsVersion != 1 || state.RootVersion != 1 {
		t.Fatalf("TUF state: %+v, want root 1 and targets 1", state)
	}
	prev, err := repo.ParseRoot(root.data)
	if err != nil {
		t.Fatal(err)
	}
	next, err := repo.NextRoot(prev, repo.RootChange{Expires: sytuf.Expiry(time.Now(), sytuf.DefaultRootExpiry)})
	if err != nil {
		t.Fatal(err)
	}
	unsigned, _ := next.ToBytes(true)
	if _, err := f.admin.PublishTUFRoot(ctx, unsigned); !adminclient.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("an unsigned root: %v, want a 400", err)
	}
	if err := repo.SignRoot(prev, next, root.signers[sytuf.RoleRoot]); err != nil {
		t.Fatal(err)
	}
	signed, _ := next.ToBytes(true)
	if _, err := f.viewer.PublishTUFRoot(ctx, signed); !adminclient.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("a root from a viewer: %v, want a 403", err)
	}
	if s := ok(f.admin.PublishTUFRoot(ctx, signed))(t); s.RootVersion != 2 {
		t.Fatalf("the signed root: %+v", s)
	}
	if _, err := f.admin.PublishTUFRoot(ctx, signed); !adminclient.IsStatus(err, http.StatusConflict) {
		t.Fatalf("the same root again: %v, want a 409", err)
	}
	if code, _ := get("/tuf/2.root.json"); code != 200 {
		t.Fatalf("/tuf/2.root.json after the rotation: %d", code)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{`{code="200",route="/api/v1/tuf"}`, `{code="403",route="/api/v1/tuf/roots"}`, `{code="200",route="/api/v1/tuf/roots"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestTUFRun: Run re-signs the timestamp when it nears expiry and returns once its context
// ends.
func TestTUFRun(t *testing.T) {
	ctx := context.Background()
	root := newTUFRoot(t)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu clockMu
	mu.set(time.Now())
	s, err := server.New(ctx, server.Config{DataDir: t.TempDir(), Now: mu.now, TUFResignInterval: time.Millisecond,
		TUF: &tufhost.Config{Dir: filepath.Join(t.TempDir(), "tuf"), InitialRoot: root.data, Now: mu.now, TimestampExpiry: time.Hour,
			Keys: []signature.Signer{root.signers[sytuf.RoleSnapshot], root.signers[sytuf.RoleTimestamp]}}}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	payload := []byte("payload")
	first, err := s.TUF().Publish(ctx, tufhost.Upload{Targets: root.targets(t, "amd64-usr/2.0.0/update.sy", "2.0.0", payload)})
	if err != nil {
		t.Fatal(err)
	}
	mu.set(mu.now().Add(40 * time.Minute)) // less than half of the hour left
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	for s.TUF().State().TimestampVersion == first.TimestampVersion {
		select {
		case err := <-done:
			t.Fatalf("Run returned before re-signing: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
}

// clockMu is a clock a test sets by hand.
type clockMu struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clockMu) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func (c *clockMu) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// TestTUFReplicas: two servers on one PostgreSQL keep the TUF repository in it. A
// release published through one and a root rotation through the other are served by
// both; Run on one takes the signing lease and gives it up when its context ends, so the
// other takes over at once.
func TestTUFReplicas(t *testing.T) {
	ctx := context.Background()
	root := newTUFRoot(t)
	url := cluster.DB(t)
	var replicas []*fixture
	var servers []*server.Server
	for range 2 {
		st, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f := newFixtureConfig(t, st, server.Config{TUF: &tufhost.Config{
			InitialRoot: root.data, SyncInterval: -1, // read the current timestamp on every request
			Keys: []signature.Signer{root.signers[sytuf.RoleSnapshot], root.signers[sytuf.RoleTimestamp]},
		}})
		replicas = append(replicas, f)
		servers = append(servers, f.handler.(*server.Server))
	}
	get := func(f *fixture, path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	app := "e96281a6-d1af-4bde-9a0a-97b76e56dc57"
	ok(replicas[0].admin.CreateApp(ctx, app, "Flatcar"))(t)
	payload := bytes.Repeat([]byte("switchyard payload "), 100)
	targets := root.targets(t, "amd64-usr/2.0.0/update.sy", "2.0.0", payload)
	ok(replicas[0].admin.Upload(ctx, app, adminapi.ReleaseMetadata{Version: "2.0.0", Board: "amd64-usr", FileName: "update.sy", Size: int64(len(payload))},
		targets, bytes.NewReader(payload)))(t)
	_, ts0 := get(replicas[0], "/tuf/timestamp.json")
	if code, ts1 := get(replicas[1], "/tuf/timestamp.json"); code != 200 || !bytes.Equal(ts0, ts1) {
		t.Fatalf("replica 2 serves %d %q, replica 1 %q", code, ts1, ts0)
	}

	prev, err := repo.ParseRoot(root.data)
	if err != nil {
		t.Fatal(err)
	}
	next, err := repo.NextRoot(prev, repo.RootChange{Expires: sytuf.Expiry(time.Now(), sytuf.DefaultRootExpiry)})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(prev, next, root.signers[sytuf.RoleRoot]); err != nil {
		t.Fatal(err)
	}
	signed, _ := next.ToBytes(true)
	if s := ok(replicas[1].admin.PublishTUFRoot(ctx, signed))(t); s.RootVersion != 2 || s.TargetsVersion != 1 || s.TimestampVersion != 2 {
		t.Fatalf("root published through replica 2: %+v", s)
	}
	for i, f := range replicas {
		if code, _ := get(f, "/tuf/2.root.json"); code != 200 {
			t.Fatalf("replica %d: 2.root.json: %d", i+1, code)
		}
		if s := ok(f.viewer.TUFState(ctx))(t); s.RootVersion != 2 || s.TimestampVersion != 2 {
			t.Fatalf("replica %d: state %+v", i+1, s)
		}
	}

	// Replica 2 leads (it published last); its Run gives the lease up at the end.
	if !servers[1].TUF().Leading() {
		t.Fatal("the last publisher does not lead")
	}
	if did, err := servers[0].TUF().Refresh(ctx); err != nil || did || servers[0].TUF().Leading() {
		t.Fatalf("replica 1 while replica 2 leads: Refresh = %v, %v (leading %v)", did, err, servers[0].TUF().Leading())
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- servers[1].Run(rctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if did, err := servers[0].TUF().Refresh(ctx); err != nil || did || !servers[0].TUF().Leading() {
		t.Fatalf("replica 1 after replica 2 gave the lease up: Refresh = %v, %v (leading %v)", did, err, servers[0].TUF().Leading())
	}
}
