package tufhost

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/signing/tuf"
)

// maxPathLen bounds request paths; longer ones cannot name anything served.
const maxPathLen = 512

var (
	versionedRE = regexp.MustCompile(`^/([1-9][0-9]{0,18})\.(root|snapshot|targets)\.json$`)
	hashBaseRE  = regexp.MustCompile(`^([0-9a-f]{64})\.(.+)$`)
)

// Handler returns the HTTP handler of the repository; paths are relative to the mount
// point (see the package doc).
func (h *Host) Handler() http.Handler {
	return http.HandlerFunc(h.serveHTTP)
}

func (h *Host) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if len(p) > maxPathLen || !strings.HasPrefix(p, "/") {
		http.NotFound(w, r)
		return
	}
	if p == "/timestamp.json" || p == "/root.json" {
		// Another replica may have moved the repository: read it at most once per
		// Config.SyncInterval. Failing that, the state in memory is still consistent.
		if err := h.sync(r.Context(), false); err != nil {
			h.log.Error("tuf reading the repository", "err", err)
		}
	}
	switch {
	case p == "/timestamp.json":
		_, ts := h.current()
		if ts == nil {
			http.NotFound(w, r)
			return
		}
		// The timestamp changes under the same name: caches must revalidate.
		w.Header().Set("Cache-Control", "no-cache")
		serveJSON(w, r, ts)
	case p == "/root.json":
		root, _ := h.current()
		w.Header().Set("Cache-Control", "no-cache")
		serveJSON(w, r, root)
	case versionedRE.MatchString(p):
		m := versionedRE.FindStringSubmatch(p)
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		data, err := h.versioned(r.Context(), m[2], v)
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			h.log.Error("tuf serving metadata", "path", p, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		// Versioned files never change: cache them for long.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		serveJSON(w, r, data)
	case strings.HasPrefix(p, "/targets/"):
		h.serveTarget(w, r, strings.TrimPrefix(p, "/targets/"))
	default:
		http.NotFound(w, r)
	}
}

// versioned returns a root, snapshot or targets version: from memory when it is the
// served one (or any root), otherwise from the storage, where every version written is
// committed and never changes (a replica that has not yet seen a newer timestamp still
// serves what a client was told to fetch by a replica that has).
func (h *Host) versioned(ctx context.Context, role string, v int64) ([]byte, error) {
	h.mu.RLock()
	var data []byte
	switch {
	case role == tuf.RoleRoot && v <= int64(len(h.roots)):
		data = h.roots[v-1]
	case role == tuf.RoleSnapshot && h.snapshot != nil && h.snapshot.Signed.Version == v:
		data = h.snapData
	case role == tuf.RoleTargets && h.targets != nil && h.targets.Signed.Version == v:
		data = h.tgtData
	}
	h.mu.RUnlock()
	if data != nil {
		return data, nil
	}
	return h.st.get(ctx, role, v)
}

func serveJSON(w http.ResponseWriter, r *http.Request, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// serveTarget serves targets/<dir>/<sha256>.<base> for a pinned target <dir>/<base>.
func (h *Host) serveTarget(w http.ResponseWriter, r *http.Request, rel string) {
	dir, base := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, base = rel[:i+1], rel[i+1:]
	}
	m := hashBaseRE.FindStringSubmatch(base)
	if m == nil || h.cfg.Payloads == nil {
		http.NotFound(w, r)
		return
	}
	name := dir + m[2]
	tf, ok := h.lookupTarget(name, m[1])
	if !ok {
		http.NotFound(w, r)
		return
	}
	var sum [32]byte
	copy(sum[:], tf.Hashes["sha256"])
	f, err := h.cfg.Payloads.OpenPayload(r.Context(), name, sum)
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.log.Error("tuf opening target", "target", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil || size != tf.Length {
		h.log.Error("tuf target in the payload store does not match its pinned length", "target", name, "size", size, "length", tf.Length, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// DirPayloads is a PayloadOpener over a directory holding each payload under its SHA-256
// in lowercase hex (DIR/<sha256>), the simplest payload store.
type DirPayloads string

// OpenPayload opens DIR/<sha256>.
func (d DirPayloads) OpenPayload(_ context.Context, _ string, sum [32]byte) (io.ReadSeekCloser, error) {
	return os.Open(filepath.Join(string(d), hex.EncodeToString(sum[:])))
}
