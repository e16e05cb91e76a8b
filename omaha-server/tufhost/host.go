package tufhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Errors callers branch on. Upload checks also return the repo package's sentinels
// (repo.ErrThreshold, repo.ErrVersion, repo.ErrExpired, repo.ErrNotPinned, repo.ErrInvalid).
var (
	// ErrNoRoot: the store is empty and no initial root was given.
	ErrNoRoot = errors.New("tufhost: no root metadata (give an initial root)")
	// ErrOnlineKeys: the online keys cannot meet the root's threshold for snapshot or timestamp.
	ErrOnlineKeys = errors.New("tufhost: online keys do not match the root")
	// ErrNoTargets: nothing was published yet, so there is no snapshot or timestamp.
	ErrNoTargets = errors.New("tufhost: no targets metadata published yet")
)

// PayloadOpener opens the bytes of a published payload. The server's payload store
// implements it; the host calls it only for a target the current targets metadata pins, and
// checks the size it finds against the pinned length. Bytes that do not hash to sha256 are
// the store's bug: clients reject them.
type PayloadOpener interface {
	OpenPayload(ctx context.Context, target string, sha256 [sha256.Size]byte) (io.ReadSeekCloser, error)
}

// Config configures a Host.
type Config struct {
	Dir             string             // metadata store; created if missing
	Keys            []signature.Signer // online keys (snapshot and timestamp, any number)
	InitialRoot     []byte             // root to start from when Dir holds none
	SnapshotExpiry  time.Duration      // 0: tuf.DefaultSnapshotExpiry
	TimestampExpiry time.Duration      // 0: tuf.DefaultTimestampExpiry
	Payloads        PayloadOpener      // nil: no target is served
	Now             func() time.Time   // nil: time.Now
	Logger          *slog.Logger       // nil: discard
	// Registerer receives the metrics described in metrics.go; nil: none.
	Registerer prometheus.Registerer
}

// Host is the server side of the repository. It is safe for concurrent use.
type Host struct {
	cfg     Config
	log     *slog.Logger
	keyID   map[string]signature.Signer // online key ID → signer
	metrics *collector

	writeMu sync.Mutex // serialises publishes and re-signing

	mu        sync.RWMutex // guards the fields below
	root      *metadata.Metadata[metadata.RootType]
	rootData  []byte
	targets   *metadata.Metadata[metadata.TargetsType] // nil before the first publish
	tgtData   []byte
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	tsData    []byte
}

// Open loads the store in cfg.Dir (or starts it from cfg.InitialRoot) and checks that the
// online keys match the current root. It signs nothing: call Refresh or Run.
func Open(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.SnapshotExpiry == 0 {
		cfg.SnapshotExpiry = tuf.DefaultSnapshotExpiry
	}
	if cfg.TimestampExpiry == 0 {
		cfg.TimestampExpiry = tuf.DefaultTimestampExpiry
	}
	if cfg.SnapshotExpiry < 2*time.Minute || cfg.TimestampExpiry < 2*time.Minute {
		return nil, fmt.Errorf("tufhost: expiries of snapshot %s and timestamp %s are too short", cfg.SnapshotExpiry, cfg.TimestampExpiry)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Host{cfg: cfg, log: cfg.Logger, keyID: map[string]signature.Signer{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range cfg.Keys {
		id, err := tuf.SignerKeyID(k)
		if err != nil {
			return nil, fmt.Errorf("tufhost: online key: %w", err)
		}
		h.keyID[id] = k
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("tufhost: %w", err)
	}
	if err := h.load(ctx); err != nil {
		return nil, err
	}
	if _, err := h.signers(h.root, tuf.RoleSnapshot); err != nil {
		return nil, err
	}
	if _, err := h.signers(h.root, tuf.RoleTimestamp); err != nil {
		return nil, err
	}
	h.metrics = newCollector(h)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.metrics); err != nil {
			return nil, fmt.Errorf("tufhost: registering metrics: %w", err)
		}
	}
	return h, nil
}

func (h *Host) path(name string) string { return filepath.Join(h.cfg.Dir, name) }

func versioned(v int64, role string) string {
	return strconv.FormatInt(v, 10) + "." + role + ".json"
}

// load reads the committed state: the root chain, then timestamp.json and what it names.
func (h *Host) load(ctx context.Context) error {
	var root *metadata.Metadata[metadata.RootType]
	var rootData []byte
	for v := int64(1); ; v++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("tufhost: loading: %w", err)
		}
		data, err := smallfile.Read(h.path(versioned(v, tuf.RoleRoot)), tuf.MaxRootSize)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("tufhost: loading root %d: %w", v, err)
		}
		next, err := repo.ParseRoot(data)
		if err != nil {
			return fmt.Errorf("tufhost: loading root %d: %w", v, err)
		}
		if err := repo.VerifyRootUpdate(root, next); err != nil {
			return fmt.Errorf("tufhost: loading root %d: %w", v, err)
		}
		root, rootData = next, data
	}
	if root == nil {
		if len(h.cfg.InitialRoot) == 0 {
			return ErrNoRoot
		}
		r, err := repo.ParseRoot(h.cfg.InitialRoot)
		if err != nil {
			return fmt.Errorf("tufhost: initial root: %w", err)
		}
		if err := repo.VerifyRootUpdate(nil, r); err != nil {
			return fmt.Errorf("tufhost: initial root: %w", err)
		}
		if err := atomicfile.WriteFile(h.path(versioned(1, tuf.RoleRoot)), h.cfg.InitialRoot, 0o644); err != nil {
			return err
		}
		root, rootData = r, h.cfg.InitialRoot
		h.log.Info("tuf repository started", "dir", h.cfg.Dir, "root_version", 1)
	}
	h.root, h.rootData = root, rootData

	tsData, err := smallfile.Read(h.path(tuf.RoleTimestamp+".json"), tuf.MaxTimestampSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing published yet
	}
	if err != nil {
		return fmt.Errorf("tufhost: loading timestamp: %w", err)
	}
	ts, err := metadata.Timestamp().FromBytes(tsData)
	if err != nil {
		return fmt.Errorf("tufhost: loading timestamp: %w", err)
	}
	snapMeta := ts.Signed.Meta[tuf.RoleSnapshot+".json"]
	if snapMeta == nil {
		return fmt.Errorf("tufhost: loading timestamp: no snapshot entry")
	}
	snapData, err := smallfile.Read(h.path(versioned(snapMeta.Version, tuf.RoleSnapshot)), tuf.MaxSnapshotSize)
	if err != nil {
		return fmt.Errorf("tufhost: loading snapshot %d: %w", snapMeta.Version, err)
	}
	snap, err := metadata.Snapshot().FromBytes(snapData)
	if err != nil {
		return fmt.Errorf("tufhost: loading snapshot %d: %w", snapMeta.Version, err)
	}
	tMeta := snap.Signed.Meta[tuf.RoleTargets+".json"]
	if tMeta == nil {
		return fmt.Errorf("tufhost: loading snapshot %d: no targets entry", snapMeta.Version)
	}
	tData, err := smallfile.Read(h.path(versioned(tMeta.Version, tuf.RoleTargets)), tuf.MaxTargetsSize)
	if err != nil {
		return fmt.Errorf("tufhost: loading targets %d: %w", tMeta.Version, err)
	}
	targets, err := repo.ParseTargets(tData)
	if err != nil {
		return fmt.Errorf("tufhost: loading targets %d: %w", tMeta.Version, err)
	}
	h.targets, h.tgtData, h.snapshot, h.timestamp, h.tsData = targets, tData, snap, ts, tsData
	return nil
}

// signers returns the online signers for role under root, enough for its threshold.
func (h *Host) signers(root *metadata.Metadata[metadata.RootType], role string) ([]signature.Signer, error) {
	r := root.Signed.Roles[role]
	var out []signature.Signer
	for _, id := range r.KeyIDs {
		if s, ok := h.keyID[id]; ok {
			out = append(out, s)
		}
	}
	if len(out) < r.Threshold {
		return nil, fmt.Errorf("%w: root %d needs %d %s key(s), the server holds %d of them", ErrOnlineKeys, root.Signed.Version, r.Threshold, role, len(out))
	}
	return out, nil
}

// Upload is what a release engineer sends: new root versions in order (each the successor
// of the one before, the first the successor of the served root) and/or new targets
// metadata.
type Upload struct {
	Roots   [][]byte
	Targets []byte
}

// Pinned describes a payload target found by Verify.
type Pinned struct {
	Name   string
	Length int64
	SHA256 [sha256.Size]byte
	Custom tuf.Custom
}

type checked struct {
	roots   []*metadata.Metadata[metadata.RootType]
	root    *metadata.Metadata[metadata.RootType] // the root after the upload
	targets *metadata.Metadata[metadata.TargetsType]
	tData   []byte
}

// check verifies an upload against the served state. Caller holds at least h.mu.RLock.
func (h *Host) check(u Upload, now time.Time) (*checked, error) {
	c := &checked{root: h.root}
	for _, data := range u.Roots {
		next, err := repo.ParseRoot(data)
		if err != nil {
			return nil, err
		}
		if err := repo.VerifyRootUpdate(c.root, next); err != nil {
			return nil, err
		}
		c.roots = append(c.roots, next)
		c.root = next
	}
	if len(c.roots) > 0 {
		if c.root.Signed.IsExpired(now) {
			return nil, fmt.Errorf("%w: root version %d", repo.ErrExpired, c.root.Signed.Version)
		}
		for _, role := range []string{tuf.RoleSnapshot, tuf.RoleTimestamp} {
			if _, err := h.signers(c.root, role); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case u.Targets != nil:
		var cur int64
		if h.targets != nil {
			cur = h.targets.Signed.Version
		}
		t, err := repo.VerifyTargets(c.root, u.Targets, cur, h.tgtData, now)
		if err != nil {
			return nil, err
		}
		c.targets, c.tData = t, u.Targets
	case h.targets != nil && len(c.roots) > 0:
		// The served targets must still verify under the new root, or every client would
		// stop at it: a rotation of the targets keys comes with re-signed targets.
		if err := c.root.VerifyDelegate(tuf.RoleTargets, h.targets); err != nil {
			return nil, fmt.Errorf("%w: the served targets version %d does not verify under root %d; upload targets signed with the new keys together with the root: %v", repo.ErrThreshold, h.targets.Signed.Version, c.root.Signed.Version, err)
		}
	}
	return c, nil
}

// Verify checks an upload without publishing anything, and that each payload is pinned by
// the targets metadata that would be served afterwards. The server's release publish calls
// it with the uploaded targets metadata and the payload's length, SHA-256 and version
// before accepting the payload file.
func (h *Host) Verify(u Upload, payloads ...repo.Payload) ([]Pinned, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c, err := h.check(u, h.cfg.Now())
	if err != nil {
		return nil, err
	}
	targets := c.targets
	if targets == nil {
		targets = h.targets
	}
	if targets == nil && len(payloads) > 0 {
		return nil, fmt.Errorf("%w: no targets metadata uploaded or served", repo.ErrNotPinned)
	}
	var out []Pinned
	for _, p := range payloads {
		name, tf, err := repo.FindPayload(targets, p)
		if err != nil {
			return nil, err
		}
		pin := Pinned{Name: name, Length: tf.Length}
		copy(pin.SHA256[:], tf.Hashes["sha256"])
		if tf.Custom != nil {
			pin.Custom, _ = tuf.ParseCustom(*tf.Custom) // checked by ParseTargets
		}
		out = append(out, pin)
	}
	return out, nil
}

// State summarises what is served.
type State struct {
	RootVersion      int64
	TargetsVersion   int64 // 0 before the first publish
	SnapshotVersion  int64
	TimestampVersion int64
	SnapshotExpires  time.Time
	TimestampExpires time.Time
}

// State returns what is served now.
func (h *Host) State() State {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.stateLocked()
}

func (h *Host) stateLocked() State {
	s := State{RootVersion: h.root.Signed.Version}
	if h.targets != nil {
		s.TargetsVersion = h.targets.Signed.Version
		s.SnapshotVersion = h.snapshot.Signed.Version
		s.SnapshotExpires = h.snapshot.Signed.Expires
		s.TimestampVersion = h.timestamp.Signed.Version
		s.TimestampExpires = h.timestamp.Signed.Expires
	}
	return s
}

// Publish verifies an upload like Verify and makes it what clients see: it stores the new
// roots and targets, signs a new snapshot and timestamp and writes timestamp.json last. A
// targets upload identical to the served one changes nothing.
func (h *Host) Publish(ctx context.Context, u Upload) (State, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	now := h.cfg.Now()
	h.mu.RLock()
	c, err := h.check(u, now)
	h.mu.RUnlock()
	if err != nil {
		return State{}, err
	}
	if len(c.roots) == 0 && (c.targets == nil || (h.targets != nil && c.targets.Signed.Version == h.targets.Signed.Version)) {
		return h.State(), nil
	}
	for i, r := range c.roots {
		if err := ctx.Err(); err != nil {
			return State{}, fmt.Errorf("tufhost: publish: %w", err)
		}
		if err := atomicfile.WriteFile(h.path(versioned(r.Signed.Version, tuf.RoleRoot)), u.Roots[i], 0o644); err != nil {
			return State{}, err
		}
		h.log.Info("tuf root published", "version", r.Signed.Version, "expires", r.Signed.Expires)
	}
	targets, tData := h.targets, h.tgtData
	if c.targets != nil {
		if err := atomicfile.WriteFile(h.path(versioned(c.targets.Signed.Version, tuf.RoleTargets)), c.tData, 0o644); err != nil {
			return State{}, err
		}
		targets, tData = c.targets, c.tData
		h.log.Info("tuf targets published", "version", targets.Signed.Version, "targets", len(targets.Signed.Targets), "expires", targets.Signed.Expires)
	}
	h.mu.Lock()
	h.root = c.root
	if len(c.roots) > 0 {
		h.rootData = u.Roots[len(u.Roots)-1]
	}
	h.mu.Unlock()
	if targets == nil {
		return h.State(), nil // a root without targets: nothing to snapshot yet
	}
	return h.commit(ctx, targets, tData, true, now)
}

// commit signs a new snapshot (when newSnapshot) and a new timestamp over targets and
// makes them current. Caller holds writeMu.
func (h *Host) commit(ctx context.Context, targets *metadata.Metadata[metadata.TargetsType], tData []byte, newSnapshot bool, now time.Time) (State, error) {
	if err := ctx.Err(); err != nil {
		return State{}, fmt.Errorf("tufhost: signing: %w", err)
	}
	h.mu.RLock()
	root, snap, ts := h.root, h.snapshot, h.timestamp
	h.mu.RUnlock()
	var snapVersion, tsVersion int64 = 1, 1
	if snap != nil {
		snapVersion = snap.Signed.Version + 1
		tsVersion = ts.Signed.Version + 1
	}
	if newSnapshot || snap == nil {
		snap = metadata.Snapshot(tuf.Expiry(now, h.cfg.SnapshotExpiry))
		snap.Signed.Version = snapVersion
		snap.Signed.Meta[tuf.RoleTargets+".json"] = metadata.MetaFile(targets.Signed.Version)
		if err := h.sign(root, tuf.RoleSnapshot, snap, snap.Sign); err != nil {
			return State{}, err
		}
		data, err := snap.ToBytes(false)
		if err != nil {
			return State{}, fmt.Errorf("tufhost: encoding snapshot: %w", err)
		}
		if err := atomicfile.WriteFile(h.path(versioned(snapVersion, tuf.RoleSnapshot)), data, 0o644); err != nil {
			return State{}, err
		}
	}
	ts = metadata.Timestamp(tuf.Expiry(now, h.cfg.TimestampExpiry))
	ts.Signed.Version = tsVersion
	ts.Signed.Meta[tuf.RoleSnapshot+".json"] = metadata.MetaFile(snap.Signed.Version)
	if err := h.sign(root, tuf.RoleTimestamp, ts, ts.Sign); err != nil {
		return State{}, err
	}
	tsData, err := ts.ToBytes(false)
	if err != nil {
		return State{}, fmt.Errorf("tufhost: encoding timestamp: %w", err)
	}
	if err := atomicfile.WriteFile(h.path(tuf.RoleTimestamp+".json"), tsData, 0o644); err != nil {
		return State{}, err
	}
	h.mu.Lock()
	h.targets, h.tgtData, h.snapshot, h.timestamp, h.tsData = targets, tData, snap, ts, tsData
	st := h.stateLocked()
	h.mu.Unlock()
	h.log.Info("tuf timestamp signed", "timestamp_version", st.TimestampVersion, "snapshot_version", st.SnapshotVersion,
		"targets_version", st.TargetsVersion, "expires", st.TimestampExpires)
	return st, nil
}

// sign signs with the online keys of role and checks the result against root.
func (h *Host) sign(root *metadata.Metadata[metadata.RootType], role string, md any, sign func(signature.Signer) (*metadata.Signature, error)) error {
	signers, err := h.signers(root, role)
	if err != nil {
		return err
	}
	for _, s := range signers {
		if _, err := sign(s); err != nil {
			return fmt.Errorf("tufhost: signing %s: %w", role, err)
		}
	}
	if err := root.VerifyDelegate(role, md); err != nil {
		return fmt.Errorf("tufhost: %s does not verify after signing: %w", role, err)
	}
	return nil
}

// Refresh re-signs what is due at the current time: a new snapshot when less than half of
// its validity is left, a new timestamp when less than half of its validity is left or the
// snapshot changed. It reports whether anything was signed. Before the first publish
// there is nothing to sign.
func (h *Host) Refresh(ctx context.Context) (bool, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	now := h.cfg.Now()
	h.mu.RLock()
	targets, tData, snap, ts := h.targets, h.tgtData, h.snapshot, h.timestamp
	h.mu.RUnlock()
	if targets == nil {
		return false, nil
	}
	snapDue := snap.Signed.Expires.Sub(now) < h.cfg.SnapshotExpiry/2
	tsDue := ts.Signed.Expires.Sub(now) < h.cfg.TimestampExpiry/2
	if !snapDue && !tsDue {
		return false, nil
	}
	if targets.Signed.IsExpired(now) {
		h.log.Error("tuf targets metadata expired: clients refuse it until a release engineer signs a new one",
			"version", targets.Signed.Version, "expired", targets.Signed.Expires)
	}
	if h.root.Signed.IsExpired(now) {
		h.log.Error("tuf root metadata expired: clients refuse it until the root is rotated",
			"version", h.root.Signed.Version, "expired", h.root.Signed.Expires)
	}
	if _, err := h.commit(ctx, targets, tData, snapDue, now); err != nil {
		h.metrics.failures.Inc()
		return false, err
	}
	return true, nil
}

// Resign signs a new snapshot and timestamp now, whatever their expiry.
func (h *Host) Resign(ctx context.Context) (State, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	h.mu.RLock()
	targets, tData := h.targets, h.tgtData
	h.mu.RUnlock()
	if targets == nil {
		return State{}, ErrNoTargets
	}
	return h.commit(ctx, targets, tData, true, h.cfg.Now())
}

// Run calls Refresh every interval until ctx ends, logging failures; it returns ctx's
// error. An interval well below half the timestamp validity keeps clients supplied even
// if a few rounds fail; a minute is a good choice.
func (h *Host) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := h.Refresh(ctx); err != nil && ctx.Err() == nil {
			h.log.Error("tuf re-signing failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// lookupTarget returns the current entry for a target name if its sha256 is hexSum.
func (h *Host) lookupTarget(name, hexSum string) (*metadata.TargetFiles, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.targets == nil {
		return nil, false
	}
	tf, ok := h.targets.Signed.Targets[name]
	if !ok || hex.EncodeToString(tf.Hashes["sha256"]) != hexSum {
		return nil, false
	}
	return tf, true
}

// current returns the bytes of the newest root and of the timestamp (nil before the
// first publish).
func (h *Host) current() (root, ts []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.rootData, h.tsData
}
