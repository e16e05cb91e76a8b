package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestLocalFetchers: a repository read from a directory, and from files held in memory, is
// verified exactly like one fetched over HTTP: the root chain ends at the first missing
// root, a bad signature and an oversized file are refused.
func TestLocalFetchers(t *testing.T) {
	dirFiles := func(t *testing.T, dir string) Files {
		t.Helper()
		fs := Files{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			fs[e.Name()] = b
		}
		return fs
	}
	for _, kind := range []string{"dir", "files"} {
		t.Run(kind, func(t *testing.T) {
			s := newStatic(t, nil)
			s.publish(1, map[string]repo.Target{"amd64-usr/2.0.0/p": target("2.0.0", "bb")})
			fetcher := func() Fetcher {
				if kind == "dir" {
					return DirFetcher{Dir: s.dir}
				}
				return dirFiles(t, s.dir)
			}
			dir := t.TempDir()
			rootPath := filepath.Join(dir, "root.json")
			if err := os.WriteFile(rootPath, s.rootData, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := New(Config{Fetcher: fetcher(), TrustedRoot: rootPath, CacheDir: filepath.Join(dir, "cache"), Now: func() time.Time { return s.now }})
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Refresh(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, err := r.Find("amd64-usr", "2.0.0"); err != nil || got.Length != 2 {
				t.Fatalf("Find = %+v %v", got, err)
			}

			// A targets file signed by the wrong key (the online one) is refused.
			tg := metadata.Targets(tuf.Expiry(s.now, time.Hour))
			tg.Signed.Version = 2
			if _, err := tg.Sign(s.onlineK); err != nil {
				t.Fatal(err)
			}
			s.publish(2, map[string]repo.Target{"amd64-usr/2.0.0/p": target("2.0.0", "bb")})
			s.write("2.targets.json", tg)
			c.cfg.Fetcher = fetcher()
			if _, err := c.Refresh(t.Context()); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
				t.Fatalf("targets signed by the wrong key: %v", err)
			}

			// A timestamp above the bound is refused without being read whole.
			if err := os.WriteFile(filepath.Join(s.dir, "timestamp.json"), []byte(strings.Repeat(" ", tuf.MaxTimestampSize+1)), 0o644); err != nil {
				t.Fatal(err)
			}
			c.cfg.Fetcher = fetcher()
			if _, err := c.Refresh(t.Context()); !errors.As(err, new(*metadata.ErrDownloadLengthMismatch)) {
				t.Fatalf("oversized timestamp: %v", err)
			}
		})
	}
	if _, err := (DirFetcher{Dir: t.TempDir()}).Fetch(t.Context(), "../x.json", 10); err == nil {
		t.Fatal("a name with a path was accepted")
	}
}
