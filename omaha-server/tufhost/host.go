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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/omaha-server/store"
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
	// ErrNotLeader: another replica holds the signing lease.
	ErrNotLeader = errors.New("tufhost: another replica holds the TUF signing lease")
	// ErrLeaseLost: the lease or the current timestamp moved between reading and writing
	// (another replica published or took over); nothing was written.
	ErrLeaseLost = errors.New("tufhost: the TUF signing lease or the repository moved under this replica; nothing was written")
)

// Defaults of Config.
const (
	// DefaultLeaseDuration is how long a signing lease lasts unrenewed: a dead leader's
	// successor signs within it plus one renewal interval (a quarter of it).
	DefaultLeaseDuration = 20 * time.Second
	// DefaultSyncInterval bounds how long a replica serves a timestamp after another
	// replica replaced it.
	DefaultSyncInterval = time.Second
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
	Dir             string             // metadata directory (one server); created if missing
	DB              store.TUF          // the database every replica shares; instead of Dir
	Holder          string             // this replica's name in the lease; "": host name, pid, random
	LeaseDuration   time.Duration      // 0: DefaultLeaseDuration
	SyncInterval    time.Duration      // 0: DefaultSyncInterval; negative: every request
	ImportDir       string             // with DB: a directory repository to copy in once (import.go)
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
	st      storage
	leading atomic.Bool // holds the signing lease (as of its last renewal)

	writeMu sync.Mutex // serialises publishes and re-signing
	fence   int64      // the lease's fence as last taken; guarded by writeMu
	// beforeCommit, when set (by tests), runs between taking the lease and writing.
	beforeCommit func()

	syncMu   sync.Mutex // serialises sync; guards lastSync
	lastSync time.Time

	mu        sync.RWMutex // guards the fields below: the state served, swapped whole
	roots     [][]byte     // roots[i] is version i+1
	root      *metadata.Metadata[metadata.RootType]
	rootData  []byte
	targets   *metadata.Metadata[metadata.TargetsType] // nil before the first publish
	tgtData   []byte
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	snapData  []byte
	timestamp *metadata.Metadata[metadata.TimestampType]
	tsData    []byte
}

// Open loads the repository from cfg.Dir or cfg.DB (or starts it from cfg.InitialRoot)
// and checks that the online keys match the current root. It signs nothing: call
// Refresh or Run.
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
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.LeaseDuration < 10*time.Millisecond || cfg.LeaseDuration >= cfg.TimestampExpiry/4 {
		return nil, fmt.Errorf("tufhost: a lease of %s is not between 10ms and a quarter of the timestamp's validity", cfg.LeaseDuration)
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
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
	switch {
	case cfg.DB != nil && cfg.Dir != "":
		return nil, errors.New("tufhost: give a directory or a database, not both")
	case cfg.DB != nil:
		holder := cfg.Holder
		if holder == "" {
			holder = defaultHolder()
		}
		h.st = &dbStorage{db: cfg.DB, holder: holder, ttl: cfg.LeaseDuration}
	case cfg.Dir != "":
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("tufhost: %w", err)
		}
		h.st = dirStorage(cfg.Dir)
	default:
		return nil, errors.New("tufhost: no directory or database to keep the repository in")
	}
	if err := h.start(ctx); err != nil {
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

// start stores the initial root when the storage holds none (without a lease: every
// replica starting together writes the same bytes, and other bytes are refused), then
// reads the committed state.
func (h *Host) start(ctx context.Context) error {
	if h.cfg.ImportDir != "" && h.cfg.DB != nil {
		if err := h.importDir(ctx, h.cfg.ImportDir); err != nil {
			return err
		}
	}
	_, err := h.st.get(ctx, tuf.RoleRoot, 1)
	if errors.Is(err, fs.ErrNotExist) {
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
		if r.Signed.Version != 1 {
			return fmt.Errorf("tufhost: initial root: version %d, want 1", r.Signed.Version)
		}
		if err := h.st.commit(ctx, commitReq{files: []file{{tuf.RoleRoot, 1, h.cfg.InitialRoot}}}); err != nil {
			return fmt.Errorf("tufhost: storing the initial root: %w", err)
		}
		h.log.Info("tuf repository started", "root_version", 1)
	} else if err != nil {
		return err
	}
	return h.sync(ctx, true)
}

// sync makes the served state the committed one: new roots, and the current timestamp
// with the snapshot and targets it names, swapped in whole. Unless forced it reads the
// storage at most once per Config.SyncInterval; and while another caller reads it, it
// returns at once (a client request then gets the state in memory, not a queue).
func (h *Host) sync(ctx context.Context, force bool) error {
	if force {
		h.syncMu.Lock()
	} else if !h.syncMu.TryLock() {
		return nil
	}
	defer h.syncMu.Unlock()
	now := h.cfg.Now()
	if !force && h.cfg.SyncInterval > 0 && !h.lastSync.IsZero() && now.Sub(h.lastSync) < h.cfg.SyncInterval && !now.Before(h.lastSync) {
		return nil
	}
	h.lastSync = now
	h.mu.RLock()
	roots, root := h.roots, h.root
	var tsVersion int64
	if h.timestamp != nil {
		tsVersion = h.timestamp.Signed.Version
	}
	h.mu.RUnlock()

	newRoots := roots
	for v := int64(len(roots)) + 1; ; v++ {
		data, err := h.st.get(ctx, tuf.RoleRoot, v)
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
		root = next
		newRoots = append(newRoots[:len(newRoots):len(newRoots)], data)
	}
	if root == nil {
		return ErrNoRoot
	}
	v, tsData, err := h.st.current(ctx)
	if err != nil {
		return err
	}
	if v < tsVersion {
		return fmt.Errorf("tufhost: the stored timestamp version %d is older than the served %d", v, tsVersion)
	}
	var s loaded
	if v > tsVersion {
		if s, err = h.loadTimestamp(ctx, tsData); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// A commit of this Host may have moved the state meanwhile: never go back.
	if len(newRoots) > len(h.roots) {
		h.roots, h.root, h.rootData = newRoots, root, newRoots[len(newRoots)-1]
	}
	if s.ts != nil && (h.timestamp == nil || s.ts.Signed.Version > h.timestamp.Signed.Version) {
		h.targets, h.tgtData, h.snapshot, h.snapData, h.timestamp, h.tsData = s.targets, s.tData, s.snap, s.snapData, s.ts, tsData
	}
	return nil
}

type loaded struct {
	targets  *metadata.Metadata[metadata.TargetsType]
	tData    []byte
	snap     *metadata.Metadata[metadata.SnapshotType]
	snapData []byte
	ts       *metadata.Metadata[metadata.TimestampType]
}

// loadTimestamp parses a committed timestamp and reads the snapshot and targets it names.
func (h *Host) loadTimestamp(ctx context.Context, tsData []byte) (loaded, error) {
	return h.loadTimestampFrom(ctx, h.st, tsData)
}

func (h *Host) loadTimestampFrom(ctx context.Context, st storage, tsData []byte) (loaded, error) {
	ts, err := metadata.Timestamp().FromBytes(tsData)
	if err != nil {
		return loaded{}, fmt.Errorf("tufhost: loading timestamp: %w", err)
	}
	snapMeta := ts.Signed.Meta[tuf.RoleSnapshot+".json"]
	if snapMeta == nil {
		return loaded{}, fmt.Errorf("tufhost: loading timestamp: no snapshot entry")
	}
	snapData, err := st.get(ctx, tuf.RoleSnapshot, snapMeta.Version)
	if err != nil {
		return loaded{}, fmt.Errorf("tufhost: loading snapshot %d: %w", snapMeta.Version, err)
	}
	snap, err := metadata.Snapshot().FromBytes(snapData)
	if err != nil {
		return loaded{}, fmt.Errorf("tufhost: loading snapshot %d: %w", snapMeta.Version, err)
	}
	tMeta := snap.Signed.Meta[tuf.RoleTargets+".json"]
	if tMeta == nil {
		return loaded{}, fmt.Errorf("tufhost: loading snapshot %d: no targets entry", snapMeta.Version)
	}
	tData, err := st.get(ctx, tuf.RoleTargets, tMeta.Version)
	if err != nil {
		return loaded{}, fmt.Errorf("tufhost: loading targets %d: %w", tMeta.Version, err)
	}
	targets, err := repo.ParseTargets(tData)
	if err != nil {
		return loaded{}, fmt.Errorf("tufhost: loading targets %d: %w", tMeta.Version, err)
	}
	return loaded{targets: targets, tData: tData, snap: snap, snapData: snapData, ts: ts}, nil
}

// timestampVersion reads the version of timestamp metadata.
func timestampVersion(data []byte) (int64, error) {
	ts, err := metadata.Timestamp().FromBytes(data)
	if err != nil {
		return 0, fmt.Errorf("tufhost: loading timestamp: %w", err)
	}
	return ts.Signed.Version, nil
}

// lead takes or renews the signing lease. Caller holds writeMu.
func (h *Host) lead(ctx context.Context, steal bool) (int64, error) {
	fence, err := h.st.lead(ctx, steal)
	if err != nil {
		if errors.Is(err, ErrNotLeader) && h.leading.Swap(false) {
			h.log.Info("tuf signing lease lost", "err", err)
		}
		return 0, err
	}
	if !h.leading.Swap(true) || fence != h.fence {
		h.log.Info("tuf signing lease taken", "fence", fence, "steal", steal)
	}
	h.fence = fence
	return fence, nil
}

// LeaseDuration is how long the signing lease lasts unrenewed.
func (h *Host) LeaseDuration() time.Duration { return h.cfg.LeaseDuration }

// Leading reports whether this Host held the signing lease at its last renewal.
func (h *Host) Leading() bool { return h.leading.Load() }

// Release gives the signing lease up, so another replica takes over at once (a clean
// shutdown); a Host killed without it is replaced when the lease expires.
func (h *Host) Release(ctx context.Context) error {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	if !h.leading.Swap(false) {
		return nil
	}
	return h.st.release(ctx, h.fence)
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

// Current returns what is served after reading the storage, which another replica may
// have moved, at most once per Config.SyncInterval.
func (h *Host) Current(ctx context.Context) (State, error) {
	if err := h.sync(ctx, false); err != nil {
		return State{}, err
	}
	return h.State(), nil
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
// roots and targets, signs a new snapshot and timestamp and makes the timestamp current
// last. A targets upload identical to the served one changes nothing.
//
// Any replica publishes: it reads the committed state, takes the signing lease (from a
// live leader too, whose next write then fails) and writes conditionally on the lease and
// on the timestamp it read. When another replica got in between, it reads again and
// checks the upload against what that one published.
func (h *Host) Publish(ctx context.Context, u Upload) (State, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		if err := h.sync(ctx, true); err != nil {
			return State{}, err
		}
		now := h.cfg.Now()
		h.mu.RLock()
		c, err := h.check(u, now)
		targets, tData := h.targets, h.tgtData
		h.mu.RUnlock()
		if err != nil {
			return State{}, err
		}
		if len(c.roots) == 0 && (c.targets == nil || (targets != nil && c.targets.Signed.Version == targets.Signed.Version)) {
			return h.State(), nil
		}
		fence, err := h.lead(ctx, true)
		if err != nil {
			return State{}, err
		}
		w := write{fence: fence, root: c.root, rootsData: u.Roots, targets: targets, tData: tData, newSnapshot: true}
		for _, r := range c.roots {
			w.rootVersions = append(w.rootVersions, r.Signed.Version)
		}
		if c.targets != nil {
			w.targets, w.tData, w.newTargets = c.targets, c.tData, true
		}
		st, err := h.commit(ctx, w, now)
		if errors.Is(err, ErrLeaseLost) && attempt < attempts {
			h.log.Info("tuf publish raced another replica; reading its state and trying again", "err", err)
			continue
		}
		if err != nil {
			return State{}, err
		}
		for _, r := range c.roots {
			h.log.Info("tuf root published", "version", r.Signed.Version, "expires", r.Signed.Expires)
		}
		if c.targets != nil {
			h.log.Info("tuf targets published", "version", c.targets.Signed.Version, "targets", len(c.targets.Signed.Targets), "expires", c.targets.Signed.Expires)
		}
		return st, nil
	}
}

// write is one commit: new roots (their versions and bytes), the targets to snapshot
// (new or the served ones; nil before the first), and whether a new snapshot is due.
type write struct {
	fence        int64
	root         *metadata.Metadata[metadata.RootType] // the root after the write
	rootVersions []int64
	rootsData    [][]byte
	targets      *metadata.Metadata[metadata.TargetsType]
	tData        []byte
	newTargets   bool
	newSnapshot  bool
}

// commit signs a new snapshot (when due) and a new timestamp over w.targets, writes them
// with w's roots and targets in one commit under the lease, and serves the result. Caller
// holds writeMu.
func (h *Host) commit(ctx context.Context, w write, now time.Time) (State, error) {
	if err := ctx.Err(); err != nil {
		return State{}, fmt.Errorf("tufhost: signing: %w", err)
	}
	h.mu.RLock()
	snap, snapData, ts, roots := h.snapshot, h.snapData, h.timestamp, h.roots
	h.mu.RUnlock()
	req := commitReq{fence: w.fence}
	for i, v := range w.rootVersions {
		req.files = append(req.files, file{tuf.RoleRoot, v, w.rootsData[i]})
	}
	var newTS *metadata.Metadata[metadata.TimestampType]
	var tsData []byte
	if w.targets != nil {
		if w.newTargets {
			req.files = append(req.files, file{tuf.RoleTargets, w.targets.Signed.Version, w.tData})
		}
		var snapVersion, tsVersion int64 = 1, 1
		if snap != nil {
			snapVersion = snap.Signed.Version + 1
			tsVersion = ts.Signed.Version + 1
			req.prevTS = ts.Signed.Version
		}
		if w.newSnapshot || snap == nil {
			snap = metadata.Snapshot(tuf.Expiry(now, h.cfg.SnapshotExpiry))
			snap.Signed.Version = snapVersion
			snap.Signed.Meta[tuf.RoleTargets+".json"] = metadata.MetaFile(w.targets.Signed.Version)
			if err := h.sign(w.root, tuf.RoleSnapshot, snap, snap.Sign); err != nil {
				return State{}, err
			}
			var err error
			if snapData, err = snap.ToBytes(false); err != nil {
				return State{}, fmt.Errorf("tufhost: encoding snapshot: %w", err)
			}
			req.files = append(req.files, file{tuf.RoleSnapshot, snapVersion, snapData})
		}
		newTS = metadata.Timestamp(tuf.Expiry(now, h.cfg.TimestampExpiry))
		newTS.Signed.Version = tsVersion
		newTS.Signed.Meta[tuf.RoleSnapshot+".json"] = metadata.MetaFile(snap.Signed.Version)
		if err := h.sign(w.root, tuf.RoleTimestamp, newTS, newTS.Sign); err != nil {
			return State{}, err
		}
		var err error
		if tsData, err = newTS.ToBytes(false); err != nil {
			return State{}, fmt.Errorf("tufhost: encoding timestamp: %w", err)
		}
		req.ts = &file{tuf.RoleTimestamp, tsVersion, tsData}
	}
	if h.beforeCommit != nil {
		h.beforeCommit()
	}
	if err := h.st.commit(ctx, req); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			h.leading.Store(false)
		}
		return State{}, err
	}
	h.mu.Lock()
	if len(w.rootVersions) > 0 {
		h.roots = append(roots[:len(roots):len(roots)], w.rootsData...)
		h.root, h.rootData = w.root, h.roots[len(h.roots)-1]
	}
	if newTS != nil {
		h.targets, h.tgtData, h.snapshot, h.snapData, h.timestamp, h.tsData = w.targets, w.tData, snap, snapData, newTS, tsData
	}
	st := h.stateLocked()
	h.mu.Unlock()
	if newTS != nil {
		h.log.Info("tuf timestamp signed", "timestamp_version", st.TimestampVersion, "snapshot_version", st.SnapshotVersion,
			"targets_version", st.TargetsVersion, "expires", st.TimestampExpires)
	}
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
// snapshot changed. It first reads the committed state and takes or renews the signing
// lease; a replica that does not hold it signs nothing. It reports whether anything was
// signed. Before the first publish there is nothing to sign.
func (h *Host) Refresh(ctx context.Context) (bool, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	if err := h.sync(ctx, true); err != nil {
		return false, err
	}
	fence, err := h.lead(ctx, false)
	if errors.Is(err, ErrNotLeader) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := h.cfg.Now()
	h.mu.RLock()
	root, targets, tData, snap, ts := h.root, h.targets, h.tgtData, h.snapshot, h.timestamp
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
	if root.Signed.IsExpired(now) {
		h.log.Error("tuf root metadata expired: clients refuse it until the root is rotated",
			"version", root.Signed.Version, "expired", root.Signed.Expires)
	}
	if _, err := h.commit(ctx, write{fence: fence, root: root, targets: targets, tData: tData, newSnapshot: snapDue}, now); err != nil {
		h.metrics.failures.Inc()
		return false, err
	}
	return true, nil
}

// Resign signs a new snapshot and timestamp now, whatever their expiry, taking the lease
// like a publish.
func (h *Host) Resign(ctx context.Context) (State, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	if err := h.sync(ctx, true); err != nil {
		return State{}, err
	}
	h.mu.RLock()
	root, targets, tData := h.root, h.targets, h.tgtData
	h.mu.RUnlock()
	if targets == nil {
		return State{}, ErrNoTargets
	}
	fence, err := h.lead(ctx, true)
	if err != nil {
		return State{}, err
	}
	return h.commit(ctx, write{fence: fence, root: root, targets: targets, tData: tData, newSnapshot: true}, h.cfg.Now())
}

// Run calls Refresh every interval until ctx ends, logging failures; it returns ctx's
// error. An interval well below half the timestamp validity keeps clients supplied even
// if a few rounds fail; a minute is a good choice. With a database, Run also renews the
// signing lease (at least four times per lease) and so takes it over when its holder
// stops renewing. Run never releases the lease: see Release.
func (h *Host) Run(ctx context.Context, interval time.Duration) error {
	if _, ok := h.st.(*dbStorage); ok {
		interval = min(interval, h.cfg.LeaseDuration/4)
	}
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
