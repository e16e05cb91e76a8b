// Package catalog caches what the Omaha handler reads on every check: applications,
// groups by track and the release each channel offers per board. The check path then
// costs no catalog query.
//
// Freshness: a Snapshot is reused while it is younger than the TTL; after that, one cheap
// query reads the store's catalog generation (a counter every catalog write increments in
// its own transaction) and the whole catalog is reloaded only when the counter moved. So a
// write made by another server process on the same PostgreSQL is seen within one TTL, and
// Invalidate makes this process's own admin writes visible at once. Only one goroutine
// refreshes at a time; the others keep serving the previous snapshot meanwhile, unless
// there is none yet or it has been invalidated.
//
// Snapshots are immutable once published.
package catalog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Source is the part of store.Store the cache reads.
type Source interface {
	Generation(ctx context.Context) (int64, error)
	LoadCatalog(ctx context.Context) (*store.Catalog, error)
}

// DefaultTTL is how long a snapshot is trusted without asking the store.
const DefaultTTL = time.Second

// Snapshot is an immutable view of the catalog.
type Snapshot struct {
	Generation int64
	apps       map[string]store.App
	groups     map[groupKey]store.Group
	channels   map[channelKey]store.Channel
	releases   map[releaseKey]store.Release
	versions   map[boardKey][]omaha.Version
	deltas     map[deltaKey]store.Delta
}

type releaseKey struct{ app, version, board string }
type boardKey struct{ app, board string }
type groupKey struct{ app, track string }
type channelKey struct{ app, name string }
type deltaKey struct {
	releaseKey
	source string
}

func newSnapshot(c *store.Catalog) *Snapshot {
	s := &Snapshot{
		Generation: c.Generation,
		apps:       make(map[string]store.App, len(c.Apps)),
		groups:     make(map[groupKey]store.Group, len(c.Groups)),
		channels:   make(map[channelKey]store.Channel, len(c.Channels)),
		releases:   make(map[releaseKey]store.Release, len(c.Releases)),
		versions:   make(map[boardKey][]omaha.Version),
		deltas:     make(map[deltaKey]store.Delta, len(c.Deltas)),
	}
	for _, d := range c.Deltas {
		s.deltas[deltaKey{releaseKey{d.AppID, d.Version, d.Board}, d.SourceVersion}] = d
	}
	for _, r := range c.Releases {
		s.releases[releaseKey{r.AppID, r.Version, r.Board}] = r
		if v, err := omaha.ParseVersion(r.Version); err == nil {
			k := boardKey{r.AppID, r.Board}
			s.versions[k] = append(s.versions[k], v)
		}
	}
	for _, a := range c.Apps {
		s.apps[a.ID] = a
	}
	for _, g := range c.Groups {
		s.groups[groupKey{g.AppID, g.Track}] = g
	}
	for _, ch := range c.Channels {
		s.channels[channelKey{ch.AppID, ch.Name}] = ch
	}
	return s
}

// App returns the application (id in any case, braces optional).
func (s *Snapshot) App(id string) (store.App, bool) {
	a, ok := s.apps[store.NormalizeAppID(id)]
	return a, ok
}

// GroupByTrack returns the group of appID that hosts join with track.
func (s *Snapshot) GroupByTrack(appID, track string) (store.Group, bool) {
	g, ok := s.groups[groupKey{store.NormalizeAppID(appID), track}]
	return g, ok
}

// ChannelRelease returns the release channel offers on board.
func (s *Snapshot) ChannelRelease(appID, channel, board string) (store.Release, bool) {
	ch, ok := s.channels[channelKey{store.NormalizeAppID(appID), channel}]
	if !ok {
		return store.Release{}, false
	}
	r, ok := ch.Releases[board]
	return r, ok
}

// Release returns the release (app, version, board).
func (s *Snapshot) Release(appID, version, board string) (store.Release, bool) {
	r, ok := s.releases[releaseKey{store.NormalizeAppID(appID), version, board}]
	return r, ok
}

// Delta returns the delta payload of the release (app, version, board) that applies to a
// partition holding source.
func (s *Snapshot) Delta(appID, version, board, source string) (store.Delta, bool) {
	d, ok := s.deltas[deltaKey{releaseKey{store.NormalizeAppID(appID), version, board}, source}]
	return d, ok
}

// Versions returns the versions of every release of appID for board. The slice is
// shared: callers must not modify it.
func (s *Snapshot) Versions(appID, board string) []omaha.Version {
	return s.versions[boardKey{store.NormalizeAppID(appID), board}]
}

// Cache serves snapshots of a Source.
type Cache struct {
	src Source
	ttl time.Duration
	now func() time.Time

	cur     atomic.Pointer[entry]
	refresh sync.Mutex
}

type entry struct {
	snap    *Snapshot
	checked time.Time
	stale   bool
}

// New returns a cache over src; ttl 0 means DefaultTTL, now nil means time.Now.
func New(src Source, ttl time.Duration, now func() time.Time) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{src: src, ttl: ttl, now: now}
}

// Invalidate makes the next Get reload the catalog.
func (c *Cache) Invalidate() {
	c.refresh.Lock()
	defer c.refresh.Unlock()
	if e := c.cur.Load(); e != nil {
		c.cur.Store(&entry{snap: e.snap, checked: e.checked, stale: true})
	}
}

// Get returns a snapshot no older than the TTL (or, while another goroutine refreshes an
// expired one, the previous snapshot).
func (c *Cache) Get(ctx context.Context) (*Snapshot, error) {
	e := c.cur.Load()
	if e != nil && !e.stale && c.now().Sub(e.checked) < c.ttl {
		return e.snap, nil
	}
	if e != nil && !e.stale {
		// Expired: one goroutine checks the generation; the rest keep the old snapshot.
		if !c.refresh.TryLock() {
			return e.snap, nil
		}
	} else {
		c.refresh.Lock()
	}
	defer c.refresh.Unlock()
	e = c.cur.Load()
	now := c.now()
	if e != nil && !e.stale && now.Sub(e.checked) < c.ttl {
		return e.snap, nil
	}
	if e != nil && !e.stale {
		gen, err := c.src.Generation(ctx)
		if err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		if gen == e.snap.Generation {
			c.cur.Store(&entry{snap: e.snap, checked: now})
			return e.snap, nil
		}
	}
	cat, err := c.src.LoadCatalog(ctx)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	snap := newSnapshot(cat)
	c.cur.Store(&entry{snap: snap, checked: now})
	return snap, nil
}
