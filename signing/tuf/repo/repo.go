package repo

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// File names inside a working directory; see the package doc.
const (
	RootDir           = "root"
	StagedRootFile    = "staged-root.json"
	TargetsFile       = "targets.json"
	StagedTargetsFile = "staged-targets.json"
)

// ErrNoRepo is returned by Open for a directory that is not a working directory.
var ErrNoRepo = errors.New("repo: not a TUF working directory (run `syctl tuf init`)")

// Repo is a release engineer's working directory. Its methods read and write files only;
// they are not safe for concurrent use by several processes.
type Repo struct {
	dir string
}

// Init creates a working directory from a root (usually the 1.root.json `syctl keys init`
// wrote). The root must verify with its own keys; dir must not hold a repository already.
func Init(dir string, rootData []byte) (*Repo, error) {
	root, err := ParseRoot(rootData)
	if err != nil {
		return nil, err
	}
	if err := root.VerifyDelegate(tuf.RoleRoot, root); err != nil {
		return nil, fmt.Errorf("%w: root %d by its own keys: %v", ErrThreshold, root.Signed.Version, err)
	}
	if !root.Signed.ConsistentSnapshot {
		return nil, fmt.Errorf("%w: root without consistent snapshots", ErrInvalid)
	}
	if _, err := os.Stat(filepath.Join(dir, RootDir)); err == nil {
		return nil, fmt.Errorf("repo: %s already holds a repository", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, RootDir), 0o755); err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return nil, err
	}
	r := &Repo{dir: dir}
	if err := atomicfile.WriteFile(r.rootPath(root.Signed.Version), rootData, 0o644); err != nil {
		return nil, err
	}
	return r, nil
}

// Open opens an existing working directory.
func Open(dir string) (*Repo, error) {
	if fi, err := os.Stat(filepath.Join(dir, RootDir)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s", ErrNoRepo, dir)
	}
	r := &Repo{dir: dir}
	if _, _, err := r.Root(); err != nil {
		return nil, err
	}
	return r, nil
}

// Dir returns the working directory.
func (r *Repo) Dir() string { return r.dir }

func (r *Repo) rootPath(version int64) string {
	return filepath.Join(r.dir, RootDir, strconv.FormatInt(version, 10)+".root.json")
}

// RootVersions returns the versions of the roots in the working directory, ascending.
func (r *Repo) RootVersions() ([]int64, error) {
	entries, err := os.ReadDir(filepath.Join(r.dir, RootDir))
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	var vs []int64
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".root.json")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 1 {
			continue
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: no root in %s", ErrNoRepo, filepath.Join(r.dir, RootDir))
	}
	slices.Sort(vs)
	return vs, nil
}

// RootFile returns the path of root version v.
func (r *Repo) RootFile(v int64) string { return r.rootPath(v) }

// Root returns the current (highest) root and its bytes.
func (r *Repo) Root() (*metadata.Metadata[metadata.RootType], []byte, error) {
	vs, err := r.RootVersions()
	if err != nil {
		return nil, nil, err
	}
	return r.readRoot(vs[len(vs)-1])
}

func (r *Repo) readRoot(v int64) (*metadata.Metadata[metadata.RootType], []byte, error) {
	data, err := readBounded(r.rootPath(v), tuf.MaxRootSize)
	if err != nil {
		return nil, nil, err
	}
	root, err := ParseRoot(data)
	if err != nil {
		return nil, nil, err
	}
	if root.Signed.Version != v {
		return nil, nil, fmt.Errorf("%w: %s holds version %d", ErrVersion, r.rootPath(v), root.Signed.Version)
	}
	return root, data, nil
}

// readBounded reads a metadata file of at most limit bytes; a larger one is ErrInvalid (and
// smallfile.ErrTooLarge).
func readBounded(path string, limit int64) ([]byte, error) {
	data, err := smallfile.Read(path, limit)
	if errors.Is(err, smallfile.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return data, err
}

// Targets returns the last signed targets metadata and its bytes, or nil, nil, nil when
// none was signed yet.
func (r *Repo) Targets() (*metadata.Metadata[metadata.TargetsType], []byte, error) {
	data, err := readBounded(filepath.Join(r.dir, TargetsFile), tuf.MaxTargetsSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	t, err := ParseTargets(data)
	if err != nil {
		return nil, nil, err
	}
	return t, data, nil
}

// Staged returns the targets metadata being prepared: the staged file if there is one,
// else a copy of the last signed targets, else an empty targets role.
func (r *Repo) Staged() (*metadata.Metadata[metadata.TargetsType], error) {
	data, err := readBounded(filepath.Join(r.dir, StagedTargetsFile), tuf.MaxTargetsSize)
	if err == nil {
		return ParseTargets(data)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	cur, _, err := r.Targets()
	if err != nil {
		return nil, err
	}
	if cur == nil {
		t := metadata.Targets(time.Unix(0, 0).UTC())
		t.Signed.Version = 0
		return t, nil
	}
	cur.ClearSignatures()
	return cur, nil
}

func (r *Repo) writeStaged(t *metadata.Metadata[metadata.TargetsType]) error {
	data, err := t.ToBytes(true)
	if err != nil {
		return fmt.Errorf("repo: encoding staged targets: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(r.dir, StagedTargetsFile), data, 0o644)
}

// Target describes a payload file to pin.
type Target struct {
	Length int64
	SHA256 [sha256.Size]byte
	Custom tuf.Custom
}

// HashFile returns the length and SHA-256 of a file, streaming it.
func HashFile(ctx context.Context, path string) (int64, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return 0, sum, fmt.Errorf("repo: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, sum, fmt.Errorf("repo: hashing %s: %w", path, err)
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, sum, fmt.Errorf("repo: hashing %s: %w", path, err)
		}
	}
	copy(sum[:], h.Sum(nil))
	return n, sum, nil
}

// AddTarget adds (or replaces) a target in the staged targets metadata.
func (r *Repo) AddTarget(name string, t Target) error {
	if err := CheckTargetName(name); err != nil {
		return err
	}
	if t.Length < 0 {
		return fmt.Errorf("%w: negative length", ErrInvalid)
	}
	custom, err := t.Custom.RawMessage()
	if err != nil {
		return fmt.Errorf("repo: target %s: %w", name, err)
	}
	staged, err := r.Staged()
	if err != nil {
		return err
	}
	staged.Signed.Targets[name] = &metadata.TargetFiles{
		Length: t.Length,
		Hashes: metadata.Hashes{"sha256": t.SHA256[:]},
		Custom: custom,
		Path:   name,
	}
	return r.writeStaged(staged)
}

// RemoveTarget removes a target from the staged targets metadata.
func (r *Repo) RemoveTarget(name string) error {
	staged, err := r.Staged()
	if err != nil {
		return err
	}
	if _, ok := staged.Signed.Targets[name]; !ok {
		return fmt.Errorf("%w: no target %q", ErrInvalid, name)
	}
	delete(staged.Signed.Targets, name)
	return r.writeStaged(staged)
}

// SignTargets signs the staged targets as the next version (the last signed version + 1)
// expiring at expires, checks it against the current root, writes it to targets.json and
// removes the staged file. It returns the signed bytes.
func (r *Repo) SignTargets(expires time.Time, signers ...signature.Signer) ([]byte, error) {
	root, _, err := r.Root()
	if err != nil {
		return nil, err
	}
	staged, err := r.Staged()
	if err != nil {
		return nil, err
	}
	cur, _, err := r.Targets()
	if err != nil {
		return nil, err
	}
	next := int64(1)
	if cur != nil {
		next = cur.Signed.Version + 1
	}
	if err := SignTargets(root, staged, next, expires, signers...); err != nil {
		return nil, err
	}
	data, err := staged.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("repo: encoding targets: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(r.dir, TargetsFile), data, 0o644); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(r.dir, StagedTargetsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("repo: %w", err)
	}
	return data, atomicfile.SyncDir(r.dir)
}

// StagedRoot returns the root being signed and the current root it succeeds, or
// nil, nil, nil when no rotation is in progress.
func (r *Repo) StagedRoot() (staged, prev *metadata.Metadata[metadata.RootType], err error) {
	data, err := readBounded(filepath.Join(r.dir, StagedRootFile), tuf.MaxRootSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	staged, err = ParseRoot(data)
	if err != nil {
		return nil, nil, err
	}
	prev, _, err = r.Root()
	if err != nil {
		return nil, nil, err
	}
	if staged.Signed.Version != prev.Signed.Version+1 {
		return nil, nil, fmt.Errorf("%w: staged root version %d does not follow root %d", ErrVersion, staged.Signed.Version, prev.Signed.Version)
	}
	return staged, prev, nil
}

// RotateRoot starts a root rotation: the current root with ch applied, version+1, signed
// by the given signers. See [Repo.SignRoot] for what happens next.
func (r *Repo) RotateRoot(ch RootChange, signers ...signature.Signer) (RootStatus, error) {
	if s, _, err := r.StagedRoot(); err != nil {
		return RootStatus{}, err
	} else if s != nil {
		return RootStatus{}, fmt.Errorf("%w: root version %d is already being signed (%s); sign it or remove the file", ErrInvalid, s.Signed.Version, filepath.Join(r.dir, StagedRootFile))
	}
	prev, _, err := r.Root()
	if err != nil {
		return RootStatus{}, err
	}
	next, err := NextRoot(prev, ch)
	if err != nil {
		return RootStatus{}, err
	}
	return r.signAndStore(prev, next, signers)
}

// RootStatus tells where a root rotation stands.
type RootStatus struct {
	Version    int64
	MissingOld int    // signatures still needed from the previous root's keys
	MissingNew int    // signatures still needed from the new root's own keys
	File       string // where the root now is: staged or published
	Complete   bool
	Summary    string // human-readable summary
}

// SignRoot adds signatures to the staged root. Once the threshold of the previous and of
// the new root keys is met, the root is verified like a client would and moved to
// root/N.root.json; until then it stays in staged-root.json, so several people can sign
// in turn with their own keys.
func (r *Repo) SignRoot(signers ...signature.Signer) (RootStatus, error) {
	staged, prev, err := r.StagedRoot()
	if err != nil {
		return RootStatus{}, err
	}
	if staged == nil {
		return RootStatus{}, fmt.Errorf("%w: no root rotation in progress", ErrInvalid)
	}
	return r.signAndStore(prev, staged, signers)
}

func (r *Repo) signAndStore(prev, next *metadata.Metadata[metadata.RootType], signers []signature.Signer) (RootStatus, error) {
	if err := SignRoot(prev, next, signers...); err != nil {
		return RootStatus{}, err
	}
	data, err := next.ToBytes(true)
	if err != nil {
		return RootStatus{}, fmt.Errorf("repo: encoding root: %w", err)
	}
	st := RootStatus{Version: next.Signed.Version}
	st.MissingOld, st.MissingNew = RootMissing(prev, next)
	st.Summary = fmt.Sprintf("%d more from the keys of root %d, %d more from the keys of root %d", st.MissingOld, prev.Signed.Version, st.MissingNew, next.Signed.Version)
	staged := filepath.Join(r.dir, StagedRootFile)
	if st.MissingOld > 0 || st.MissingNew > 0 {
		st.File = staged
		return st, atomicfile.WriteFile(staged, data, 0o644)
	}
	if err := VerifyRootUpdate(prev, next); err != nil {
		return RootStatus{}, err
	}
	st.File, st.Complete = r.rootPath(next.Signed.Version), true
	if err := atomicfile.WriteFile(st.File, data, 0o644); err != nil {
		return RootStatus{}, err
	}
	if err := os.Remove(staged); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return RootStatus{}, fmt.Errorf("repo: %w", err)
	}
	return st, atomicfile.SyncDir(r.dir)
}
