package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// static is a repository written as plain files (what any static web server could host),
// built with the repo package and signed here; the server side proper is tested with
// omaha-server/tufhost.
type static struct {
	t                            *testing.T
	dir                          string
	rootKey, targetsKey, onlineK signature.Signer
	root                         *metadata.Metadata[metadata.RootType]
	rootData                     []byte
	now                          time.Time
	srv                          *httptest.Server
}

func newSigner(t *testing.T) signature.Signer {
	t.Helper()
	k, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.SigstoreSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newStatic(t *testing.T, handler func(http.Handler) http.Handler) *static {
	t.Helper()
	s := &static{t: t, dir: t.TempDir(), rootKey: newSigner(t), targetsKey: newSigner(t), onlineK: newSigner(t), now: time.Now().UTC().Truncate(time.Second)}
	pk := func(x signature.Signer) []crypto.PublicKey {
		p, _ := x.PublicKey()
		return []crypto.PublicKey{p}
	}
	root, err := repo.NewRoot(map[string]repo.RoleKeys{
		tuf.RoleRoot: {Keys: pk(s.rootKey), Threshold: 1}, tuf.RoleTargets: {Keys: pk(s.targetsKey), Threshold: 1},
		tuf.RoleSnapshot: {Keys: pk(s.onlineK), Threshold: 1}, tuf.RoleTimestamp: {Keys: pk(s.onlineK), Threshold: 1},
	}, tuf.Expiry(s.now, tuf.DefaultRootExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(nil, root, s.rootKey); err != nil {
		t.Fatal(err)
	}
	s.root = root
	s.rootData = s.write("1.root.json", root)
	var h http.Handler = http.FileServer(http.Dir(s.dir))
	if handler != nil {
		h = handler(h)
	}
	s.srv = httptest.NewServer(h)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *static) write(name string, md interface{ ToBytes(bool) ([]byte, error) }) []byte {
	s.t.Helper()
	data, err := md.ToBytes(false)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return data
}

// publish writes targets, snapshot and timestamp all at version v.
func (s *static) publish(v int64, targets map[string]repo.Target) {
	s.t.Helper()
	tg := metadata.Targets(tuf.Expiry(s.now, time.Hour))
	for name, t := range targets {
		c, err := t.Custom.RawMessage()
		if err != nil {
			s.t.Fatal(err)
		}
		tg.Signed.Targets[name] = &metadata.TargetFiles{Length: t.Length, Hashes: metadata.Hashes{"sha256": t.SHA256[:]}, Custom: c, Path: name}
	}
	if err := repo.SignTargets(s.root, tg, v, tg.Signed.Expires, s.targetsKey); err != nil {
		s.t.Fatal(err)
	}
	s.write(itoa(v)+".targets.json", tg)
	sn := metadata.Snapshot(tuf.Expiry(s.now, time.Hour))
	sn.Signed.Version = v
	sn.Signed.Meta["targets.json"] = metadata.MetaFile(v)
	if _, err := sn.Sign(s.onlineK); err != nil {
		s.t.Fatal(err)
	}
	s.write(itoa(v)+".snapshot.json", sn)
	ts := metadata.Timestamp(tuf.Expiry(s.now, time.Hour))
	ts.Signed.Version = v
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(v)
	if _, err := ts.Sign(s.onlineK); err != nil {
		s.t.Fatal(err)
	}
	s.write("timestamp.json", ts)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func (s *static) client(t *testing.T, hc *http.Client) (*Client, string) {
	t.Helper()
	dir := t.TempDir()
	rootPath := filepath.Join(dir, "installed-root.json")
	if err := os.WriteFile(rootPath, s.rootData, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	c, err := New(Config{MetadataURL: s.srv.URL, TrustedRoot: rootPath, CacheDir: cache, HTTPClient: hc, Now: func() time.Time { return s.now }})
	if err != nil {
		t.Fatal(err)
	}
	return c, cache
}

func target(version string, content string) repo.Target {
	return repo.Target{Length: int64(len(content)), SHA256: sha256.Sum256([]byte(content)), Custom: tuf.Custom{Version: version, Board: "amd64-usr", ReleaseCounter: 3}}
}

func TestRefreshAndLookup(t *testing.T) {
	s := newStatic(t, nil)
	s.publish(1, map[string]repo.Target{"amd64-usr/1.0.0/p": target("1.0.0", "a"), "amd64-usr/2.0.0/p": target("2.0.0", "bb")})
	c, cache := s.client(t, nil)
	r, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.RootVersion != 1 || r.TargetsVersion != 1 || r.TimestampVersion != 1 || !r.RefTime.Equal(s.now) {
		t.Fatalf("repository %+v", r)
	}
	got, err := r.Find("amd64-usr", "2.0.0")
	if err != nil || got.Name != "amd64-usr/2.0.0/p" || got.Length != 2 || got.SHA256 != sha256.Sum256([]byte("bb")) {
		t.Fatalf("Find = %+v %v", got, err)
	}
	if _, err := r.Find("arm64-usr", "2.0.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find other board = %v", err)
	}
	if _, err := r.Lookup("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup = %v", err)
	}
	if all := r.Targets(); len(all) != 2 || all[0].Name != "amd64-usr/1.0.0/p" {
		t.Fatalf("Targets = %+v", all)
	}
	// The verified metadata is cached, and nothing else is left there.
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "root.json snapshot.json targets.json timestamp.json" {
		t.Fatalf("cache holds %v", names)
	}
	// The cache is what rollback protection stands on: a timestamp older than the cached
	// one is refused.
	s.publish(2, map[string]repo.Target{"amd64-usr/1.0.0/p": target("1.0.0", "a")})
	if _, err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	old := metadata.Timestamp(tuf.Expiry(s.now, time.Hour))
	old.Signed.Meta["snapshot.json"] = metadata.MetaFile(1)
	if _, err := old.Sign(s.onlineK); err != nil {
		t.Fatal(err)
	}
	s.write("timestamp.json", old)
	if _, err := c.Refresh(context.Background()); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
		t.Fatalf("older timestamp: %v", err)
	}
}

func TestInstalledRootNewerThanCache(t *testing.T) {
	s := newStatic(t, nil)
	s.publish(1, map[string]repo.Target{"p": target("1", "a")})
	c, cache := s.client(t, nil)
	if _, err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A newer root (say, shipped in a new OS image) wins over the cached root 1; an older
	// cached file never replaces it.
	next, err := repo.NextRoot(s.root, repo.RootChange{Expires: s.root.Signed.Expires})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(s.root, next, s.rootKey); err != nil {
		t.Fatal(err)
	}
	nextData := s.write("2.root.json", next)
	if err := os.WriteFile(c.cfg.TrustedRoot, nextData, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.Refresh(context.Background())
	if err != nil || r.RootVersion != 2 {
		t.Fatalf("Refresh = %+v %v", r, err)
	}
	cached, _ := os.ReadFile(filepath.Join(cache, "root.json"))
	if cr, err := metadata.Root().FromBytes(cached); err != nil || cr.Signed.Version != 2 {
		t.Fatalf("cached root %v %v", cr, err)
	}
	if err := os.Remove(c.cfg.TrustedRoot); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(context.Background()); !errors.Is(err, ErrNoTrustedRoot) {
		t.Fatalf("without the installed root: %v", err)
	}
}

func TestFetchBounds(t *testing.T) {
	tests := []struct {
		name    string
		handler func(http.Handler) http.Handler
		client  *http.Client
		want    func(error) bool
	}{
		{
			name: "endless timestamp",
			handler: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/timestamp.json" {
						w.Write([]byte(strings.Repeat(" ", tuf.MaxTimestampSize+1)))
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			want: func(err error) bool { return errors.As(err, new(*metadata.ErrDownloadLengthMismatch)) },
		},
		{
			name: "server that hangs",
			handler: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/timestamp.json" {
						select {
						case <-r.Context().Done():
						case <-time.After(10 * time.Second):
						}
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			client: &http.Client{Timeout: 200 * time.Millisecond},
			want:   func(err error) bool { return err != nil && strings.Contains(err.Error(), "Timeout") },
		},
		{
			name: "server error",
			handler: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/timestamp.json" {
						http.Error(w, "no", http.StatusInternalServerError)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			want: func(err error) bool {
				var e *metadata.ErrDownloadHTTP
				return errors.As(err, &e) && e.StatusCode == 500
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStatic(t, tt.handler)
			s.publish(1, map[string]repo.Target{"p": target("1", "a")})
			c, _ := s.client(t, tt.client)
			start := time.Now()
			_, err := c.Refresh(context.Background())
			if !tt.want(err) {
				t.Fatalf("Refresh = %v", err)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

func TestRefreshCancelled(t *testing.T) {
	s := newStatic(t, nil)
	s.publish(1, map[string]repo.Target{"p": target("1", "a")})
	c, _ := s.client(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Refresh(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Refresh with a cancelled context = %v", err)
	}
}

// TestTrustedRootBound: an installed root larger than tuf.MaxRootSize is refused with an error
// naming it and the limit, not truncated into a parse error.
func TestTrustedRootBound(t *testing.T) {
	dir := t.TempDir()
	rootPath := filepath.Join(dir, "installed-root.json")
	if err := os.WriteFile(rootPath, bytes.Repeat([]byte(" "), tuf.MaxRootSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{MetadataURL: "http://127.0.0.1:1/", TrustedRoot: rootPath, CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(t.Context())
	if !errors.Is(err, ErrNoTrustedRoot) || !errors.Is(err, smallfile.ErrTooLarge) {
		t.Fatalf("Refresh = %v, want ErrNoTrustedRoot and smallfile.ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), rootPath) || !strings.Contains(err.Error(), strconv.Itoa(tuf.MaxRootSize)) {
		t.Errorf("error %q does not name %s and the limit", err, rootPath)
	}
}
