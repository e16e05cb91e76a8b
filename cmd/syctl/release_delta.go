package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/signing/payload"
)

// deltaUsage is the help of `release publish --delta`.
const deltaUsage = "delta payload for the release, as SOURCE_VERSION=FILE, or FILE when the payload names its source (repeatable, one per source version; without --file and --url: for a release published before)"

// deltaFile is one `release publish --delta`: a delta payload for the release being
// published, applied to hosts that run Source.
type deltaFile struct {
	Source string
	Path   string
	Size   int64
}

// parseDeltas checks every --delta before anything is uploaded: each file is a payload
// whose manifest is for the release's version and board and that reads a source partition
// (SOURCE_COPY), each source version is below the release's and given once.
func parseDeltas(args []string, version, board string) ([]deltaFile, error) {
	if len(args) == 0 {
		return nil, nil
	}
	rel, err := omaha.ParseVersion(version)
	if err != nil {
		return nil, fmt.Errorf("%w: --version: %v", errUsage, err)
	}
	seen := map[string]string{}
	var out []deltaFile
	for _, arg := range args {
		d := deltaFile{Path: arg}
		if src, file, ok := strings.Cut(arg, "="); ok {
			if _, err := omaha.ParseVersion(src); err == nil {
				d.Source, d.Path = src, file
			}
		}
		m, size, err := readDeltaManifest(d.Path)
		if err != nil {
			return nil, err
		}
		d.Size = size
		if d.Source == "" {
			if d.Source = sourceVersionOf(m); d.Source == "" {
				return nil, fmt.Errorf("%w: --delta %s: the payload does not name its source version; give --delta SOURCE_VERSION=%s", errUsage, arg, d.Path)
			}
		}
		src, err := omaha.ParseVersion(d.Source)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: --delta %s: source version: %v", errUsage, arg, err)
		case !src.Less(rel):
			return nil, fmt.Errorf("%w: --delta %s: source version %s is not below the release %s", errUsage, arg, d.Source, version)
		case m.Version != version || m.Board != board:
			return nil, fmt.Errorf("--delta %s: the payload is for %s on %s, the release %s on %s", arg, m.Version, m.Board, version, board)
		case sourceVersionOf(m) != "" && sourceVersionOf(m) != d.Source:
			return nil, fmt.Errorf("%w: --delta %s: the payload is a delta from %s, not %s", errUsage, arg, sourceVersionOf(m), d.Source)
		case !readsSource(m):
			return nil, fmt.Errorf("--delta %s: not a delta payload (no operation reads a source partition; build it with syctl payload build --source)", arg)
		case seen[d.Source] != "":
			return nil, fmt.Errorf("%w: --delta %s and %s are both from %s (one delta per source version)", errUsage, seen[d.Source], arg, d.Source)
		}
		seen[d.Source] = arg
		out = append(out, d)
	}
	return out, nil
}

// readDeltaManifest reads a payload file's manifest (bounded by the payload format's
// limits) and returns it with the file's size.
func readDeltaManifest(path string) (*payload.Manifest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("--delta: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("--delta: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return nil, 0, fmt.Errorf("--delta %s: not a non-empty regular file", path)
	}
	env, err := payload.ReadEnvelope(bufio.NewReader(f))
	if err != nil {
		return nil, 0, fmt.Errorf("--delta %s: %w", path, err)
	}
	return env.Manifest, st.Size(), nil
}

// sourceVersionOf is the source version a delta payload's manifest names (format 2); ""
// for a payload that names none (then --delta SOURCE_VERSION=FILE gives it).
func sourceVersionOf(m *payload.Manifest) string {
	if m.Source == nil {
		return ""
	}
	return m.Source.Version
}

func readsSource(m *payload.Manifest) bool {
	if m.Source != nil {
		return true
	}
	for _, op := range m.Operations {
		if op.Type == payload.SourceCopy || op.Type == payload.SourceZstd {
			return true
		}
	}
	return false
}

// publishDeltas uploads the deltas of the release m just published, each with the same
// signed targets metadata (which pins the full payload and every delta, each as its own
// target; publishing the same metadata again is accepted as a repeat).
func publishDeltas(ctx context.Context, c *adminclient.Client, stdout, stderr io.Writer, app string, m adminapi.ReleaseMetadata, deltas []deltaFile, targetsFile string) error {
	var targets []byte
	if targetsFile != "" && len(deltas) > 0 {
		var err error
		if targets, err = os.ReadFile(targetsFile); err != nil {
			return err
		}
	}
	for _, d := range deltas {
		f, err := os.Open(d.Path)
		if err != nil {
			return err
		}
		prog := newProgress(stderr, "uploaded", time.Now)
		dm := adminapi.DeltaMetadata{SourceVersion: d.Source, FileName: filepath.Base(d.Path), Size: d.Size}
		up, err := c.UploadDelta(ctx, app, m.Board, m.Version, dm, targets, &progressReader{r: f, p: prog, total: d.Size})
		f.Close()
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s changed while uploading: %w", d.Path, err)
			}
			return fmt.Errorf("delta from %s: %w", d.Source, err)
		}
		prog.summary()
		fmt.Fprintf(stdout, "published delta %s → %s for %s: %s, %d bytes, sha256 %s\n", up.SourceVersion, up.Version, up.Board, up.FileName, up.Size, up.SHA256)
	}
	return nil
}
