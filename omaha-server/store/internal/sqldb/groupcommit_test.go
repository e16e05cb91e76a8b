package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestGroupCommitFailedMember runs many concurrent group-committed writes, every third of
// which writes its row and then fails: the failures leave nothing behind, every other
// write lands, and each caller gets its own outcome, whichever batch it shared.
func TestGroupCommitFailedMember(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gc.db")
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	db, err := Open(ctx, w, w, Dialect{Name: "sqlite", IDColumn: "INTEGER PRIMARY KEY", BlobType: "BLOB", GroupCommit: true, ChainedLogs: true}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	errPlanned := errors.New("planned failure after a write")
	const n = 300
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = db.groupRun(ctx, func(ctx context.Context, tx *sql.Tx) ([]CountDelta, error) {
				if _, err := tx.ExecContext(ctx, `INSERT INTO apps (id, name, created_at) VALUES ($1, $2, 0)`, fmt.Sprint(i), "x"); err != nil {
					return nil, err
				}
				if i%3 == 0 {
					return nil, errPlanned
				}
				return nil, nil
			})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if want := i%3 == 0; errors.Is(err, errPlanned) != want || (!want && err != nil) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	rows, err := w.QueryContext(ctx, `SELECT id FROM apps`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		got[id] = true
	}
	for i := range n {
		if got[fmt.Sprint(i)] != (i%3 != 0) {
			t.Errorf("row %d present: %v", i, got[fmt.Sprint(i)])
		}
	}
}
