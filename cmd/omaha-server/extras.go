package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/payloads"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/fleetlock"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// tufFlags turn on the TUF repository under /tuf/.
type tufFlags struct {
	root            string
	keys            stringList
	passphraseFile  string
	dir             string
	snapshotExpiry  time.Duration
	timestampExpiry time.Duration
	resignEvery     time.Duration
}

func (t *tufFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.root, "tuf-root", "", "initial TUF root (1.root.json from syctl keys init); with --tuf-key, serve the TUF repository under /tuf/")
	fs.Var(&t.keys, "tuf-key", "online TUF key file (snapshot.key, timestamp.key); repeatable")
	fs.StringVar(&t.passphraseFile, "tuf-passphrase-file", "", "file holding the passphrase of encrypted --tuf-key files")
	fs.StringVar(&t.dir, "tuf-dir", "", "TUF metadata directory (default DATA-DIR/tuf)")
	fs.DurationVar(&t.snapshotExpiry, "tuf-snapshot-expiry", 0, "validity of signed snapshot metadata (default 7 days)")
	fs.DurationVar(&t.timestampExpiry, "tuf-timestamp-expiry", 0, "validity of signed timestamp metadata (default 1 day)")
	fs.DurationVar(&t.resignEvery, "tuf-resign-interval", time.Minute, "how often to check whether snapshot and timestamp need re-signing")
}

func (t *tufFlags) enabled() bool { return len(t.keys) > 0 || t.root != "" }

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// fleetLockFlags turn on the FleetLock endpoints.
type fleetLockFlags struct {
	etcd rebootlock.EtcdConfig
	list string
	pre  string
}

func (f *fleetLockFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.list, "fleetlock-etcd", "", "etcd endpoints (comma-separated); serve FleetLock's POST /v1/pre-reboot and /v1/steady-state backed by the reboot semaphore")
	fs.StringVar(&f.etcd.CAFile, "fleetlock-etcd-cacert", "", "CA that signs etcd's certificate")
	fs.StringVar(&f.etcd.CertFile, "fleetlock-etcd-cert", "", "client certificate for etcd")
	fs.StringVar(&f.etcd.KeyFile, "fleetlock-etcd-key", "", "client key for etcd")
	fs.StringVar(&f.etcd.Username, "fleetlock-etcd-username", "", "etcd user")
	fs.StringVar(&f.pre, "fleetlock-prefix", "", "etcd key prefix of the reboot semaphores (default: rebootlock's)")
}

// lazyHandler lets the server be built before a handler that needs the server's registry.
type lazyHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lazyHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

// tufSetup holds what serve needs to finish wiring TUF after the server exists.
type tufSetup struct {
	cfg      tufhost.Config
	payloads *releasePayloads
	handler  lazyHandler
	host     atomic.Pointer[tufhost.Host]
}

// prepareTUF loads the online keys and the initial root; the host itself opens in start.
func prepareTUF(t tufFlags, dataDir string, log *slog.Logger) (*tufSetup, error) {
	if len(t.keys) == 0 {
		return nil, fmt.Errorf("%w: --tuf-root needs the online keys (--tuf-key snapshot.key --tuf-key timestamp.key)", errUsage)
	}
	var pass keys.PassFunc
	if t.passphraseFile != "" {
		pass = keys.PassphraseFile(t.passphraseFile)
	}
	var signers []signature.Signer
	for _, path := range t.keys {
		k, err := keys.LoadPrivateKey(path, pass)
		if err != nil {
			return nil, fmt.Errorf("loading TUF key %s: %w", path, err)
		}
		s, err := k.SigstoreSigner()
		if err != nil {
			return nil, fmt.Errorf("TUF key %s: %w", path, err)
		}
		signers = append(signers, s)
	}
	var root []byte
	if t.root != "" {
		b, err := os.ReadFile(t.root)
		if err != nil {
			return nil, fmt.Errorf("reading --tuf-root: %w", err)
		}
		root = b
	}
	dir := t.dir
	if dir == "" {
		dir = filepath.Join(dataDir, "tuf")
	}
	return &tufSetup{cfg: tufhost.Config{
		Dir: dir, Keys: signers, InitialRoot: root,
		SnapshotExpiry: t.snapshotExpiry, TimestampExpiry: t.timestampExpiry,
		Logger: log,
	}}, nil
}

// start opens the TUF host, serving payload targets from the hosted payloads, and keeps the
// online metadata signed until ctx ends.
func (s *tufSetup) start(ctx context.Context, st store.Store, dataDir string, maxPayload int64, reg prometheus.Registerer, interval time.Duration) error {
	pd, err := payloads.Open(filepath.Join(dataDir, "packages"), maxPayload)
	if err != nil {
		return err
	}
	s.payloads = &releasePayloads{store: st, dir: pd, now: time.Now}
	s.cfg.Payloads = s.payloads
	s.cfg.Registerer = reg
	h, err := tufhost.Open(ctx, s.cfg)
	if err != nil {
		return fmt.Errorf("opening the TUF repository: %w", err)
	}
	s.host.Store(h)
	s.handler.set(h.Handler())
	go func() {
		if err := h.Run(ctx, interval); err != nil && !errors.Is(err, context.Canceled) {
			s.cfg.Logger.Error("TUF re-signing stopped", "err", err)
		}
	}()
	return nil
}

// checkRelease is the admin API's release hook: a release that carries signed targets
// metadata is published only when that metadata verifies against the trusted root and pins
// exactly this payload (length, SHA-256, version); the new targets then go live with a fresh
// snapshot and timestamp. A release without targets metadata (for hosts that do not speak
// TUF, such as Flatcar's update_engine) is recorded as such; update-engine never installs it.
func (s *tufSetup) checkRelease(ctx context.Context, r store.Release) error {
	if len(r.TargetsMetadata) == 0 {
		return nil
	}
	h := s.host.Load()
	if h == nil {
		return errors.New("the TUF repository is not open yet")
	}
	sum, err := hex.DecodeString(r.SHA256)
	if err != nil || len(sum) != 32 {
		return fmt.Errorf("release SHA-256 %q is not 64 hex digits", r.SHA256)
	}
	var p repo.Payload
	copy(p.SHA256[:], sum)
	p.Length, p.Version = r.Size, r.Version
	u := tufhost.Upload{Targets: r.TargetsMetadata}
	if _, err := h.Verify(u, p); err != nil {
		return err
	}
	if _, err := h.Publish(ctx, u); err != nil {
		return fmt.Errorf("publishing the targets metadata: %w", err)
	}
	s.payloads.invalidate()
	return nil
}

// releasePayloads opens a hosted release's payload by its SHA-256, for /tuf/targets/…. It
// keeps an index of the hosted releases and rebuilds it on a miss at most once per
// indexTTL, so requests for unknown hashes (anyone may send them) cannot make every request
// list every release.
type releasePayloads struct {
	store store.Store
	dir   *payloads.Dir
	now   func() time.Time

	mu      sync.Mutex
	index   map[string]payloads.Key
	builtAt time.Time
}

const indexTTL = 10 * time.Second

func (p *releasePayloads) lookup(ctx context.Context, sum string) (payloads.Key, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := p.index[sum]; ok {
		return k, true, nil
	}
	if p.index != nil && p.now().Sub(p.builtAt) < indexTTL {
		return payloads.Key{}, false, nil
	}
	apps, err := p.store.ListApps(ctx)
	if err != nil {
		return payloads.Key{}, false, err
	}
	index := map[string]payloads.Key{}
	for _, a := range apps {
		rels, err := p.store.ListReleases(ctx, a.ID)
		if err != nil {
			return payloads.Key{}, false, err
		}
		for _, r := range rels {
			if r.Hosted {
				index[strings.ToLower(r.SHA256)] = payloads.Key{App: r.AppID, Board: r.Board, Version: r.Version, Name: r.FileName}
			}
		}
	}
	p.index, p.builtAt = index, p.now()
	k, ok := index[sum]
	return k, ok, nil
}

// invalidate makes the next miss rebuild the index at once (a release was just published).
func (p *releasePayloads) invalidate() {
	p.mu.Lock()
	p.builtAt = time.Time{}
	p.mu.Unlock()
}

func (p *releasePayloads) OpenPayload(ctx context.Context, _ string, sum [32]byte) (io.ReadSeekCloser, error) {
	want := hex.EncodeToString(sum[:])
	k, ok, err := p.lookup(ctx, want)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no hosted release with SHA-256 %s: %w", want, fs.ErrNotExist)
	}
	return p.dir.Open(k)
}

// fleetLock builds the FleetLock handler on the etcd cluster.
func (f *fleetLockFlags) handler(log *slog.Logger, reg prometheus.Registerer) (http.Handler, func() error, error) {
	f.etcd.Endpoints = []string{f.list}
	if pw := os.Getenv("OMAHA_SERVER_FLEETLOCK_ETCD_PASSWORD"); pw != "" {
		f.etcd.Password = pw
	}
	cli, err := rebootlock.NewClient(f.etcd)
	if err != nil {
		return nil, nil, fmt.Errorf("fleetlock etcd: %w", err)
	}
	m, err := rebootlock.NewMetrics(reg)
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	h := fleetlock.NewHandler(cli, rebootlock.Options{Prefix: f.pre, Logger: log, Metrics: m})
	return h, cli.Close, nil
}

// maxRootUpload bounds one uploaded root metadata file.
const maxRootUpload = 1 << 20

// adminRoutes adds the TUF part of the admin API in front of the server:
//
//	GET  /api/v1/tuf          what is served (viewer or admin)
//	POST /api/v1/tuf/roots    publish the next root (admin), signed by the threshold of the
//	                          old and of the new root keys (syctl tuf rotate-root, sign-root)
func (s *tufSetup) adminRoutes(next http.Handler, tokens auth.Lookup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/tuf" && r.URL.Path != "/api/v1/tuf/roots" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fail := func(code int, err error) {
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		}
		if _, err := auth.Authorize(r.Context(), tokens, r); err != nil {
			switch {
			case errors.Is(err, auth.ErrUnauthenticated):
				fail(http.StatusUnauthorized, err)
			case errors.Is(err, auth.ErrForbidden):
				fail(http.StatusForbidden, err)
			default:
				s.cfg.Logger.Error("checking an admin token", "err", err)
				fail(http.StatusInternalServerError, errors.New("checking the token failed; see the server log"))
			}
			return
		}
		h := s.host.Load()
		if h == nil {
			fail(http.StatusServiceUnavailable, errors.New("the TUF repository is not open yet"))
			return
		}
		switch {
		case r.URL.Path == "/api/v1/tuf" && r.Method == http.MethodGet:
			json.NewEncoder(w).Encode(h.State())
		case r.URL.Path == "/api/v1/tuf/roots" && r.Method == http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRootUpload))
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				fail(http.StatusRequestEntityTooLarge, fmt.Errorf("the root is larger than %d bytes", maxRootUpload))
				return
			case err != nil:
				fail(http.StatusBadRequest, fmt.Errorf("reading the root: %w", err))
				return
			}
			state, err := h.Publish(r.Context(), tufhost.Upload{Roots: [][]byte{body}})
			switch {
			case errors.Is(err, repo.ErrVersion):
				fail(http.StatusConflict, err)
			case errors.Is(err, repo.ErrThreshold), errors.Is(err, repo.ErrInvalid), errors.Is(err, repo.ErrExpired):
				fail(http.StatusBadRequest, err)
			case err != nil:
				s.cfg.Logger.Error("publishing a TUF root", "err", err)
				fail(http.StatusInternalServerError, errors.New("publishing the root failed; see the server log"))
			default:
				s.cfg.Logger.Info("published a new TUF root", "version", state.RootVersion)
				json.NewEncoder(w).Encode(state)
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			fail(http.StatusMethodNotAllowed, fmt.Errorf("%s %s is not allowed", r.Method, r.URL.Path))
		}
	})
}
