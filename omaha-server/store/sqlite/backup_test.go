package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// checkinWithTwoEvents records a new instance and two events in one transaction, so a
// consistent copy holds exactly twice as many events as instances.
func checkinWithTwoEvents(ctx context.Context, s store.Store, appID, m string) error {
	at := time.Now().UTC()
	return s.Checkin(ctx, appID, m, func(*store.Instance) (*store.InstanceUpdate, error) {
		return &store.InstanceUpdate{
			Instance: store.Instance{AppID: appID, MachineID: m, Version: "1.0.0", Board: "amd64-usr", Track: "stable",
				IP: "192.0.2.1", FirstCheck: at, LastCheck: at, Status: store.StatusComplete, StatusAt: at},
			Events: []store.Event{
				{AppID: appID, MachineID: m, Type: 3, Result: 1, At: at},
				{AppID: appID, MachineID: m, Type: 800, Result: 1, At: at},
			}}, nil
	})
}

func TestBackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlite.FileName)
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const appID = "e96281a6-d1af-4bde-9a0a-97b76e56dc57"
	if _, err := s.CreateApp(ctx, store.App{ID: appID, Name: "Flatcar"}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := checkinWithTwoEvents(ctx, s, appID, fmt.Sprintf("seed-%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	// Writers go on during the whole backup.
	stop := make(chan struct{})
	var written atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	underway := make(chan struct{})
	var once sync.Once
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := checkinWithTwoEvents(ctx, s, appID, fmt.Sprintf("w%d-%d", w, i)); err != nil {
					errs <- err
					return
				}
				if written.Add(1) >= 50 {
					once.Do(func() { close(underway) })
				}
			}
		})
	}
	// Wait until the writers are under way, so the copy is taken under load.
	select {
	case <-underway:
	case err := <-errs:
		t.Fatal(err)
	}
	before := 200 + written.Load()
	dest := filepath.Join(dir, "backup.db")
	info, err := sqlite.Backup(ctx, path, dest)
	after := 200 + written.Load()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if info.Path != dest || info.Bytes <= 0 || info.Migration < 6 {
		t.Fatalf("backup info %+v", info)
	}

	// The copy holds one snapshot: every check-in whole, none half.
	db, err := sql.Open("sqlite", "file:"+dest+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var instances, events int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM instances`).Scan(&instances); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 2*instances {
		t.Fatalf("copy holds %d instances and %d events: not one snapshot", instances, events)
	}
	if instances < before || instances > after+4 {
		t.Fatalf("copy holds %d instances; %d were written before the backup and %d by its end", instances, before, after)
	}

	// Restoring is putting the copy in place: the store opens it with everything in it.
	restored := filepath.Join(t.TempDir(), sqlite.FileName)
	data, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(restored, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := sqlite.Open(ctx, restored, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.ListInstances(ctx, store.InstanceFilter{AppID: appID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != int(min(instances, 1000)) {
		t.Fatalf("restored store lists %d instances, want %d", len(got), min(instances, 1000))
	}

	// No temporary file is left next to the backup.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("left behind: %s", e.Name())
		}
	}
}

func TestBackupRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlite.FileName)
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// An existing file is never overwritten.
	dest := filepath.Join(dir, "exists.db")
	if err := os.WriteFile(dest, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Backup(ctx, path, dest); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "keep me" {
		t.Fatalf("existing file changed: %q", b)
	}

	// A missing database is an error, not a new empty database.
	missing := filepath.Join(dir, "none", sqlite.FileName)
	if _, err := sqlite.Backup(ctx, missing, filepath.Join(dir, "b.db")); err == nil {
		t.Fatal("backup of a missing database succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "b.db")); !os.IsNotExist(err) {
		t.Fatalf("a failed backup left %s: %v", "b.db", err)
	}

	// A destination directory that does not exist fails cleanly.
	if _, err := sqlite.Backup(ctx, path, filepath.Join(dir, "no", "such", "b.db")); err == nil {
		t.Fatal("backup into a missing directory succeeded")
	}
}
