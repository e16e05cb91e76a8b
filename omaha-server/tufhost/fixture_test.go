package tufhost

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/pgtest"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/client"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// clock is a settable clock shared by a test's server and clients.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a whole repository: offline keys held by the test, a Host over a temporary
// directory, served by an httptest server under /tuf/ with an override hook that lets a
// test play the attacker by serving chosen bytes for chosen paths.
type fixture struct {
	t          testing.TB
	clock      *clock
	rootKeys   []signature.Signer
	targetKey  signature.Signer
	onlineKeys []signature.Signer // snapshot, timestamp
	root       *metadata.Metadata[metadata.RootType]
	rootData   []byte
	host       *Host
	srv        *httptest.Server
	payloadDir string
	kind       string    // where the repository lives: dir, sqlite or postgres
	dir        string    // kind dir
	db         store.TUF // kinds sqlite and postgres

	mu       sync.Mutex
	override map[string][]byte // path under /tuf → body
}

func newSigner(t testing.TB, alg keys.Algorithm) signature.Signer {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.SigstoreSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pub(t testing.TB, s signature.Signer) crypto.PublicKey {
	t.Helper()
	p, err := s.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newFixture builds a repository whose root has nRoot keys with threshold rootThreshold;
// it signs version 1 with the first rootThreshold keys.
// Extra online keys are given to the host but not listed in the root.
func newFixture(t testing.TB, nRoot, rootThreshold int, extraOnline ...signature.Signer) *fixture {
	t.Helper()
	return newFixtureOn(t, "dir", nRoot, rootThreshold, extraOnline...)
}

// newFixtureOn is newFixture with the repository in the storage kind names.
func newFixtureOn(t testing.TB, kind string, nRoot, rootThreshold int, extraOnline ...signature.Signer) *fixture {
	t.Helper()
	f := &fixture{
		kind:       kind,
		t:          t,
		clock:      &clock{t: time.Now().UTC().Truncate(time.Second)},
		targetKey:  newSigner(t, keys.ECDSAP256),
		onlineKeys: []signature.Signer{newSigner(t, keys.Ed25519), newSigner(t, keys.ECDSAP256)},
		payloadDir: t.TempDir(),
		override:   map[string][]byte{},
	}
	roles := map[string]repo.RoleKeys{
		tuf.RoleTargets:   {Keys: []crypto.PublicKey{pub(t, f.targetKey)}, Threshold: 1},
		tuf.RoleSnapshot:  {Keys: []crypto.PublicKey{pub(t, f.onlineKeys[0])}, Threshold: 1},
		tuf.RoleTimestamp: {Keys: []crypto.PublicKey{pub(t, f.onlineKeys[1])}, Threshold: 1},
	}
	rk := repo.RoleKeys{Threshold: rootThreshold}
	for range nRoot {
		s := newSigner(t, keys.Ed25519)
		f.rootKeys = append(f.rootKeys, s)
		rk.Keys = append(rk.Keys, pub(t, s))
	}
	roles[tuf.RoleRoot] = rk
	root, err := repo.NewRoot(roles, tuf.Expiry(f.clock.Now(), tuf.DefaultRootExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(nil, root, f.rootKeys[:rootThreshold]...); err != nil {
		t.Fatal(err)
	}
	f.root = root
	f.onlineKeys = append(f.onlineKeys, extraOnline...)
	if f.rootData, err = root.ToBytes(true); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "dir":
		f.dir = filepath.Join(t.TempDir(), "tuf")
	case "sqlite":
		f.db = openSQLite(t)
	case "postgres":
		f.db = openPostgres(t)
	default:
		t.Fatalf("unknown storage %q", kind)
	}
	f.host = f.reopen()
	mux := http.NewServeMux()
	// The handler of whichever Host f.host is when the request comes (a test may swap it).
	mux.Handle("/tuf/", http.StripPrefix("/tuf", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		h := f.host
		f.mu.Unlock()
		h.Handler().ServeHTTP(w, r)
	})))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body, ok := f.override[r.URL.Path]
		f.mu.Unlock()
		if ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) open(dir string) *Host {
	f.t.Helper()
	h, err := Open(context.Background(), Config{
		Dir:         dir,
		Keys:        f.onlineKeys,
		InitialRoot: f.rootData,
		Payloads:    DirPayloads(f.payloadDir),
		Now:         f.clock.Now,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

// storage returns cfg with the fixture's storage (its directory or database) set.
func (f *fixture) storage(cfg Config) Config {
	cfg.Dir, cfg.DB = f.dir, f.db
	return cfg
}

// reopen opens another Host on the fixture's storage: a restart, or a second replica.
func (f *fixture) reopen() *Host {
	f.t.Helper()
	h, err := Open(context.Background(), f.storage(Config{
		Keys:        f.onlineKeys,
		InitialRoot: f.rootData,
		Payloads:    DirPayloads(f.payloadDir),
		Now:         f.clock.Now,
	}))
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

// kinds are the storages every repository test runs on.
var kinds = []string{"dir", "sqlite", "postgres"}

// onStorages runs test once per storage kind.
func onStorages(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

// cluster is the PostgreSQL the postgres fixtures share (started on first use).
var cluster = pgtest.NewShared(pgtest.Options{})

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

func openPostgres(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), cluster.DB(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// setHost makes h the Host the fixture's server and helpers use.
func (f *fixture) setHost(h *Host) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.host = h
}

func (f *fixture) serve(path string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if body == nil {
		delete(f.override, path)
	} else {
		f.override[path] = body
	}
}

// payload stores a payload file and returns its target description.
func (f *fixture) payload(content []byte, version string) repo.Target {
	f.t.Helper()
	sum := sha256.Sum256(content)
	if err := os.WriteFile(filepath.Join(f.payloadDir, hexOf(sum[:])), content, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return repo.Target{Length: int64(len(content)), SHA256: sum, Custom: tuf.Custom{
		Version: version, Board: "amd64-usr", Channels: []string{"stable"}, ReleaseCounter: 7,
		PartitionSize: 1 << 20, PartitionSHA256: hexOf(sum[:]),
	}}
}

// signTargets returns targets metadata listing ts at the given version.
func (f *fixture) signTargets(version int64, expires time.Time, signer signature.Signer, ts map[string]repo.Target) []byte {
	f.t.Helper()
	md := metadata.Targets(expires)
	for name, t := range ts {
		c, err := t.Custom.RawMessage()
		if err != nil {
			f.t.Fatal(err)
		}
		md.Signed.Targets[name] = &metadata.TargetFiles{Length: t.Length, Hashes: metadata.Hashes{"sha256": t.SHA256[:]}, Custom: c, Path: name}
	}
	md.Signed.Version = version
	if _, err := md.Sign(signer); err != nil {
		f.t.Fatal(err)
	}
	data, err := md.ToBytes(false)
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

func (f *fixture) publish(u Upload) State {
	f.t.Helper()
	st, err := f.host.Publish(context.Background(), u)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// client returns a host-side client that trusts root version 1, with its own cache.
func (f *fixture) client() *client.Client {
	f.t.Helper()
	dir := f.t.TempDir()
	rootPath := filepath.Join(dir, "root.json")
	if err := os.WriteFile(rootPath, f.rootData, 0o644); err != nil {
		f.t.Fatal(err)
	}
	c, err := client.New(client.Config{
		MetadataURL: f.srv.URL + "/tuf/",
		TrustedRoot: rootPath,
		CacheDir:    filepath.Join(dir, "cache"),
		HTTPClient:  &http.Client{Timeout: 10 * time.Second},
		Now:         f.clock.Now,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// metaBytes returns the served bytes of a metadata file.
func (f *fixture) get(path string) []byte {
	f.t.Helper()
	resp, err := http.Get(f.srv.URL + "/tuf/" + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		f.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func removeFile(f *fixture, t repo.Target) error {
	return os.Remove(filepath.Join(f.payloadDir, hexOf(t.SHA256[:])))
}
