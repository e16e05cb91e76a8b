package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// TestBackgroundCheckpoint checks that committed check-ins reach the database file while
// the WAL is far below the writer's automatic-checkpoint backstop: only the background
// checkpointer copies them there.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	st, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateApp(ctx, store.App{ID: "a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Let a checkpoint of the migrations pass, then take the file's size.
	time.Sleep(600 * time.Millisecond)
	before := size()
	now := time.Now()
	for i := range 300 { // a few thousand WAL frames: far below the 16384-frame backstop
		m := fmt.Sprintf("machine-%05d", i)
		err := st.Checkin(ctx, "a", m, func(*store.Instance) (*store.InstanceUpdate, error) {
			return &store.InstanceUpdate{Instance: store.Instance{AppID: "a", MachineID: m, Version: "1.0.0",
				Board: "amd64-usr", Track: "stable", FirstCheck: now, LastCheck: now, Status: store.StatusComplete, StatusAt: now},
				Events: []store.Event{{AppID: "a", MachineID: m, Type: 3, Result: 2, Version: "1.0.0", At: now}}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes 10 s after 300 check-ins: no background checkpoint (last error: %v)", before, st.CheckpointErr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := st.CheckpointErr(); err != nil {
		t.Fatal(err)
	}
}
