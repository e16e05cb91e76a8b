package catalog_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/catalog"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// counting wraps a real store and counts catalog reads.
type counting struct {
	*sqlite.Store
	mu          sync.Mutex
	gens, loads int
}

func (c *counting) Generation(ctx context.Context) (int64, error) {
	c.mu.Lock()
	c.gens++
	c.mu.Unlock()
	return c.Store.Generation(ctx)
}

func (c *counting) LoadCatalog(ctx context.Context) (*store.Catalog, error) {
	c.mu.Lock()
	c.loads++
	c.mu.Unlock()
	return c.Store.LoadCatalog(ctx)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A second store on the same file plays another server process.
	other, err := sqlite.Open(ctx, filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	src := &counting{Store: s}
	clk := &clock{t: time.Unix(1000, 0)}
	c := catalog.New(src, time.Second, clk.now)

	if _, err := s.CreateApp(ctx, store.App{ID: "{E96281A6-D1AF-4BDE-9A0A-97B76E56DC57}", Name: "Flatcar"}); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.App("{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"); !ok {
		t.Fatal("app not in snapshot")
	}
	for range 10 {
		if _, err := c.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if src.loads != 1 || src.gens != 0 {
		t.Errorf("within the TTL: %d loads, %d generation reads; want 1, 0", src.loads, src.gens)
	}
	// After the TTL with no change: one generation read, no reload.
	clk.add(2 * time.Second)
	c.Get(ctx)
	c.Get(ctx)
	if src.loads != 1 || src.gens != 1 {
		t.Errorf("after the TTL, unchanged: %d loads, %d generation reads; want 1, 1", src.loads, src.gens)
	}
	// Another process writes: seen after the TTL.
	if _, err := other.CreateChannel(ctx, store.Channel{AppID: store.FlatcarAppID, Name: "stable"}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateGroup(ctx, store.Group{AppID: store.FlatcarAppID, Name: "stable", Track: "stable", Channel: "stable"}); err != nil {
		t.Fatal(err)
	}
	snap, _ = c.Get(ctx)
	if _, ok := snap.GroupByTrack(store.FlatcarAppID, "stable"); ok {
		t.Error("a write by another process was visible before the TTL ran out (the test's clock did not move)")
	}
	clk.add(2 * time.Second)
	snap, _ = c.Get(ctx)
	if g, ok := snap.GroupByTrack("{"+store.FlatcarAppID+"}", "stable"); !ok || g.Name != "stable" {
		t.Errorf("after the TTL the other process's group is missing: %v %+v", ok, g)
	}
	// Own writes: Invalidate makes them visible at once.
	if _, err := s.CreateGroup(ctx, store.Group{AppID: store.FlatcarAppID, Name: "beta", Track: "beta", Channel: "stable"}); err != nil {
		t.Fatal(err)
	}
	c.Invalidate()
	snap, _ = c.Get(ctx)
	if _, ok := snap.GroupByTrack(store.FlatcarAppID, "beta"); !ok {
		t.Error("Invalidate did not reload")
	}
}
