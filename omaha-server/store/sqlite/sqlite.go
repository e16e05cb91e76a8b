// Package sqlite is omaha-server's default store: an embedded SQLite database
// (modernc.org/sqlite, pure Go) in one file of the data directory.
//
// The database runs in WAL mode with a busy timeout; all writes go through a pool of
// exactly one connection, so writes serialise inside the process (each write transaction
// begins IMMEDIATE and never fails on a lock upgrade) while readers use their own pool and
// read committed snapshots concurrently. synchronous=NORMAL: a power loss may lose the last
// transactions but never corrupts the file. The WAL is copied back into the file by a
// background checkpointer on its own connection, off the writer's path (checkpoint.go).
// Concurrent check-ins are group-committed: one
// transaction for several, each caller answered after the commit (a batch with a failed
// check-in is run again one by one). The SQL itself is store/internal/sqldb's.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store/internal/sqldb"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the database file's name inside the data directory.
const FileName = "omaha-server.db"

// Store is the SQLite store; it implements store.Store.
type Store struct {
	*sqldb.DB
	ckpt     *sql.DB // the checkpointer's connection
	stopCkpt context.CancelFunc
	ckptDone chan struct{}
	ckptErr  atomic.Pointer[error]
}

// CheckpointErr is the error of the last background checkpoint, nil when it succeeded.
func (s *Store) CheckpointErr() error {
	if p := s.ckptErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops the checkpointer and closes the database.
func (s *Store) Close() error {
	s.stopCkpt()
	<-s.ckptDone
	err := s.DB.Close()
	if cerr := s.ckpt.Close(); err == nil {
		err = cerr
	}
	return err
}

var dialect = sqldb.Dialect{
	Name:        "sqlite",
	IDColumn:    "INTEGER PRIMARY KEY",
	BlobType:    "BLOB",
	GroupCommit: true,
	ChainedLogs: true,
	OneServer:   true,
	IsUniqueViolation: func(err error) bool {
		var e *msqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
}

// Open opens (creating and migrating when needed) the database file at path. now is the
// clock; nil means time.Now.
func Open(ctx context.Context, path string, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	pragmas := url.Values{}
	pragmas.Add("_pragma", "busy_timeout(10000)")
	pragmas.Add("_pragma", "foreign_keys(ON)")
	pragmas.Add("_pragma", "synchronous(NORMAL)")
	writerQ := url.Values{}
	for k, v := range pragmas {
		writerQ[k] = append([]string(nil), v...)
	}
	writerQ.Add("_pragma", "journal_mode(WAL)")
	// Check-ins touch random instance rows: a page cache that holds a large fleet's hot
	// pages saves a read per B-tree level (negative: KiB).
	writerQ.Add("_pragma", "cache_size(-16384)")
	writerQ.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walBackstopPages))
	writerQ.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", "file:"+path+"?"+writerQ.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer connects first so that WAL mode is set before any reader opens the file.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db, err := sqldb.Open(ctx, w, r, dialect, now)
	if err != nil {
		return nil, err
	}
	c, err := sql.Open("sqlite", "file:"+path+"?"+pragmas.Encode())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	c.SetMaxOpenConns(1)
	// The checkpointer lives as long as the store, not as the context that opened it.
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{DB: db, ckpt: c, stopCkpt: stop, ckptDone: make(chan struct{})}
	go checkpointer(cctx, c, &s.ckptErr, s.ckptDone)
	return s, nil
}
