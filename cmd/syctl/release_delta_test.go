package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// TestReleasePublishDelta: `release publish --delta SOURCE=FILE` (repeatable) uploads each
// delta built by `payload build --source` beside the release. Bad --delta values are
// refused before anything is uploaded; only --delta adds deltas to a release published
// before.
func TestReleasePublishDelta(t *testing.T) {
	e := newAdminEnv(t)
	dir := t.TempDir()
	const size, chunk = 1 << 20, 64 << 10
	img := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := make([]byte, size)
	rand.Read(v1)
	v2 := bytes.Clone(v1)
	copy(v2[3*chunk:], "the new release changed this")
	v0 := bytes.Clone(v1)
	copy(v0[9*chunk:], "an older release")
	build := func(out, image, version string, source, sourceVersion string) string {
		args := []string{"payload", "build", "--image", image, "--version", version, "--board", "amd64-usr",
			"--chunk", "64KiB", "--compression", "zstd", "--out", filepath.Join(dir, out)}
		if source != "" {
			args = append(args, "--source", source, "--source-version", sourceVersion)
		}
		var so, se bytes.Buffer
		if err := run(context.Background(), args, &so, &se); err != nil {
			t.Fatalf("payload build: %v\n%s", err, se.String())
		}
		return filepath.Join(dir, out)
	}
	i0, i1, i2 := img("v0.img", v0), img("v1.img", v1), img("v2.img", v2)
	full := build("full.sy", i2, "4081.2.0", "", "")
	d1 := build("delta-4081.1.0.sy", i2, "4081.2.0", i1, "4081.1.0")
	d0 := build("delta-4081.0.0.sy", i2, "4081.2.0", i0, "4081.0.0")
	d1again := build("delta-4081.1.0-again.sy", i2, "4081.2.0", i1, "4081.1.0")
	wrongVersion := build("delta-other.sy", i2, "4081.3.0", i1, "4081.1.0")
	e.must("app", "create", "--id", omaha.FlatcarAppID, "--name", "Flatcar")

	for _, tc := range []struct {
		name  string
		delta []string
		want  string
	}{
		{"another source version than the payload names", []string{"4081.0.0=" + d1}, "is a delta from 4081.1.0, not 4081.0.0"},
		{"two deltas from one source", []string{d1, d1again}, "one delta per source version"},
		{"source above the release", []string{"4081.3.0=" + d1}, "not below the release"},
		{"another version's delta", []string{"4081.1.0=" + wrongVersion}, "the payload is for 4081.3.0"},
		{"a full payload", []string{"4081.1.0=" + full}, "not a delta payload"},
	} {
		args := []string{"release", "publish", "--version", "4081.2.0", "--file", full}
		for _, d := range tc.delta {
			args = append(args, "--delta", d)
		}
		if _, err := e.syctl(args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if rels, err := e.st.ListReleases(context.Background(), store.FlatcarAppID); err != nil || len(rels) != 0 {
		t.Fatalf("after refused publishes: %d releases (%v), want none", len(rels), err)
	}

	// The delta names its source version itself.
	out := e.must("release", "publish", "--version", "4081.2.0", "--file", full, "--delta", d1)
	d1b, _ := os.ReadFile(d1)
	sum := sha256.Sum256(d1b)
	if !strings.Contains(out, "published delta 4081.1.0 → 4081.2.0") || !strings.Contains(out, hex.EncodeToString(sum[:])) {
		t.Errorf("publish output:\n%s", out)
	}
	// Later, a delta for hosts still on 4081.0.0.
	e.must("release", "publish", "--version", "4081.2.0", "--delta", "4081.0.0="+d0)
	ds, err := e.st.ListDeltas(context.Background(), store.FlatcarAppID, "4081.2.0", "amd64-usr")
	if err != nil || len(ds) != 2 || ds[0].SourceVersion != "4081.0.0" || ds[1].SourceVersion != "4081.1.0" || ds[1].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("deltas %+v, %v", ds, err)
	}
}
