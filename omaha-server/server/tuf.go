package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/payloads"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// DefaultTUFResignInterval is how often Run checks whether the online TUF roles need
// re-signing when Config.TUFResignInterval is 0: well below half of the shortest validity
// tufhost accepts, so a few failed rounds still leave clients supplied.
const DefaultTUFResignInterval = time.Minute

// openTUF opens the TUF host of cfg.TUF over the server's own payload directory: targets
// are served from the hosted releases, found by their SHA-256. Without a directory
// (cfg.TUF.Dir) or a database of its own the repository lives in the server's store, so
// every replica on that database serves it and whichever holds the lease signs.
func (s *Server) openTUF(ctx context.Context, cfg Config) error {
	tc := *cfg.TUF
	if tc.Dir == "" && tc.DB == nil {
		tc.DB = s.store
	}
	if tc.Payloads == nil {
		s.releases = &releaseIndex{store: s.store, dir: s.payloads, now: cfg.Now}
		tc.Payloads = s.releases
	}
	if tc.Logger == nil {
		tc.Logger = s.log
	}
	if tc.Registerer == nil {
		tc.Registerer = s.registry
	}
	h, err := tufhost.Open(ctx, tc)
	if err != nil {
		return fmt.Errorf("server: opening the TUF repository: %w", err)
	}
	s.tuf = h
	if tc.DB != nil {
		s.log.Info("TUF repository in the database: any replica publishes, the lease holder re-signs",
			"lease", h.LeaseDuration())
	} else {
		s.log.Info("TUF repository in a directory: this server alone publishes and signs", "dir", tc.Dir)
	}
	s.resignEvery = cfg.TUFResignInterval
	if s.resignEvery <= 0 {
		s.resignEvery = DefaultTUFResignInterval
	}
	return nil
}

// TUF is the server's TUF host (nil when Config.TUF is not set), for publishing directly.
func (s *Server) TUF() *tufhost.Host { return s.tuf }

// tufReleaseTimeout bounds giving the signing lease up at shutdown.
const tufReleaseTimeout = 5 * time.Second

// Run keeps the online TUF metadata signed (when TUF is on) until ctx ends; it returns
// when ctx ends, with nil. With the repository in the database it competes for the
// signing lease and, when ctx ends, gives it up so that another replica takes over at
// once (a replica killed instead is replaced when its lease expires).
func (s *Server) Run(ctx context.Context) error {
	if s.tuf == nil {
		<-ctx.Done()
		return nil
	}
	err := s.tuf.Run(ctx, s.resignEvery)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tufReleaseTimeout)
	defer cancel()
	if rerr := s.tuf.Release(rctx); rerr != nil {
		s.log.Error("giving up the TUF signing lease", "err", rerr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("server: TUF re-signing: %w", err)
	}
	return nil
}

// gateRelease is the admin API's release hook while TUF is on: a release that carries
// signed targets metadata is recorded only when that metadata verifies against the trusted
// root and pins exactly this payload (length, SHA-256, version); the new targets then go
// live with a fresh snapshot and timestamp. A release without targets metadata (for hosts
// that do not speak TUF, such as Flatcar's update_engine) is recorded as such;
// update-engine never installs it. next, when set, is Config.CheckRelease, asked first.
func (s *Server) gateRelease(next func(context.Context, store.Release) error) func(context.Context, store.Release) error {
	return func(ctx context.Context, r store.Release) error {
		if next != nil {
			if err := next(ctx, r); err != nil {
				return err
			}
		}
		if len(r.TargetsMetadata) == 0 {
			return nil
		}
		sum, err := hex.DecodeString(r.SHA256)
		if err != nil || len(sum) != 32 {
			return fmt.Errorf("release SHA-256 %q is not 64 hex digits", r.SHA256)
		}
		var p repo.Payload
		copy(p.SHA256[:], sum)
		p.Length, p.Version = r.Size, r.Version
		u := tufhost.Upload{Targets: r.TargetsMetadata}
		if _, err := s.tuf.Verify(u, p); err != nil {
			return err
		}
		if _, err := s.tuf.Publish(ctx, u); err != nil {
			return fmt.Errorf("publishing the targets metadata: %w", err)
		}
		if s.releases != nil {
			s.releases.invalidate()
		}
		return nil
	}
}

// gateDelta is gateRelease for a release's delta payload: its targets metadata must pin
// the delta as its own target (length, SHA-256, the release's version) whose custom
// source_version is the delta's source; it then goes live like a release's. A delta
// without targets metadata is recorded as such (update-engine never installs it).
func (s *Server) gateDelta(ctx context.Context, d store.Delta) error {
	if len(d.TargetsMetadata) == 0 {
		return nil
	}
	sum, err := hex.DecodeString(d.SHA256)
	if err != nil || len(sum) != 32 {
		return fmt.Errorf("delta SHA-256 %q is not 64 hex digits", d.SHA256)
	}
	var p repo.Payload
	copy(p.SHA256[:], sum)
	p.Length, p.Version = d.Size, d.Version
	u := tufhost.Upload{Targets: d.TargetsMetadata}
	pins, err := s.tuf.Verify(u, p)
	if err != nil {
		return err
	}
	if src := pins[0].Custom.SourceVersion(); src != d.SourceVersion {
		return fmt.Errorf("%w: target %s has %s %q, the delta is from %s", repo.ErrNotPinned, pins[0].Name, tuf.FieldSourceVersion, src, d.SourceVersion)
	}
	if _, err := s.tuf.Publish(ctx, u); err != nil {
		return fmt.Errorf("publishing the targets metadata: %w", err)
	}
	if s.releases != nil {
		s.releases.invalidate()
	}
	return nil
}

// releaseIndex opens a hosted release's payload (or a delta's) by its SHA-256, for /tuf/targets/…. It
// keeps an index of the hosted releases and rebuilds it on a miss at most once per
// releaseIndexTTL, so requests for unknown hashes (anyone may send them) cannot make every
// request list every release; a publish through the gate rebuilds it on the next miss.
type releaseIndex struct {
	store store.Store
	dir   payloads.Store
	now   func() time.Time

	mu      sync.Mutex
	index   map[string]payloads.Key
	builtAt time.Time
}

// releaseIndexTTL bounds how often misses rebuild the index.
const releaseIndexTTL = 10 * time.Second

func (p *releaseIndex) lookup(ctx context.Context, sum string) (payloads.Key, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := p.index[sum]; ok {
		return k, true, nil
	}
	if p.index != nil && p.now().Sub(p.builtAt) < releaseIndexTTL {
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
			if !r.Hosted {
				continue
			}
			index[strings.ToLower(r.SHA256)] = payloads.Key{App: r.AppID, Board: r.Board, Version: r.Version, Name: r.FileName}
			ds, err := p.store.ListDeltas(ctx, r.AppID, r.Version, r.Board)
			if err != nil {
				return payloads.Key{}, false, err
			}
			for _, d := range ds {
				if d.Hosted {
					index[strings.ToLower(d.SHA256)] = payloads.Key{App: d.AppID, Board: d.Board, Version: d.Version, Name: d.FileName}
				}
			}
		}
	}
	p.index, p.builtAt = index, p.now()
	k, ok := index[sum]
	return k, ok, nil
}

// invalidate makes the next miss rebuild the index at once.
func (p *releaseIndex) invalidate() {
	p.mu.Lock()
	p.builtAt = time.Time{}
	p.mu.Unlock()
}

// OpenPayload implements tufhost.PayloadOpener.
func (p *releaseIndex) OpenPayload(ctx context.Context, _ string, sum [32]byte) (io.ReadSeekCloser, error) {
	want := hex.EncodeToString(sum[:])
	k, ok, err := p.lookup(ctx, want)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("server: no hosted release with SHA-256 %s: %w", want, fs.ErrNotExist)
	}
	return p.dir.Open(ctx, k)
}
