package tufhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// TestImportDir: a directory repository (roots 1–2, targets 1–2, a re-signed timestamp
// and a leftover of a publish that never committed) is copied into an empty database
// once; a client that trusted the directory server goes on against the database without
// seeing a rollback, and the next publish continues the versions. A database holding
// another repository is refused.
func TestImportDir(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 1, 1)
	exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
	p := f.payload([]byte("v1"), "1.0.0")
	f.publish(Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/p": p})})
	_, root2 := f.rotate(repo.RootChange{}, f.rootKeys[0])
	f.publish(Upload{Roots: [][]byte{root2}, Targets: f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/p": p})})
	if _, err := f.host.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	before := f.host.State()
	c := f.client()
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "3.targets.json"), []byte(`{"torn`), 0o644); err != nil {
		t.Fatal(err)
	}

	db := openPostgres(t)
	open := func() (*Host, error) {
		return Open(ctx, Config{DB: db, ImportDir: f.dir, Keys: f.onlineKeys, InitialRoot: f.rootData,
			Payloads: DirPayloads(f.payloadDir), Now: f.clock.Now})
	}
	h, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.State(); got != before {
		t.Fatalf("imported state %+v, want %+v", got, before)
	}
	if _, err := db.GetTUFFile(ctx, tuf.RoleTargets, 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the uncommitted leftover was imported: %v", err)
	}
	for _, v := range []int64{1, 2} {
		if _, err := db.GetTUFFile(ctx, tuf.RoleSnapshot, v); err != nil {
			t.Fatalf("snapshot %d: %v", v, err)
		}
	}
	// The client that trusts the directory's timestamp goes on against the database.
	f.setHost(h)
	if r, err := c.Refresh(ctx); err != nil || r.TimestampVersion != before.TimestampVersion || r.RootVersion != 2 {
		t.Fatalf("client after the import: %+v, %v", r, err)
	}
	st := f.publish(Upload{Targets: f.signTargets(3, exp, f.targetKey, map[string]repo.Target{"b/p": p})})
	if st.TimestampVersion != before.TimestampVersion+1 || st.TargetsVersion != 3 {
		t.Fatalf("publish after the import: %+v", st)
	}
	if r, err := c.Refresh(ctx); err != nil || r.TargetsVersion != 3 {
		t.Fatalf("client after the next publish: %+v, %v", r, err)
	}

	// Started again with the same directory: nothing is imported twice.
	again, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if got := again.State(); got != st {
		t.Fatalf("restarted: %+v, want %+v", got, st)
	}

	// Another repository in the database is refused.
	other := newFixture(t, 1, 1)
	if _, err := Open(ctx, Config{DB: db, ImportDir: other.dir, Keys: other.onlineKeys, Now: f.clock.Now}); err == nil {
		t.Fatal("imported a repository over another one")
	}
}
