package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
)

// BackupInfo describes a finished backup.
type BackupInfo struct {
	Path      string // the backup file
	Bytes     int64  // its size
	Migration int64  // the newest schema migration it holds
}

// Backup writes a consistent copy of the live database at path to dest while servers keep
// using it: VACUUM INTO reads one snapshot of the database (a read transaction in WAL mode,
// so writers go on) into a temporary file next to dest. The copy is synced, checked with
// PRAGMA integrity_check, and only then linked to dest, which must not exist yet; a failed
// backup leaves no dest and no temporary file. The copy is compact (vacuumed) and holds no
// WAL: to restore, stop every server using path, remove path's -wal and -shm files and put
// the backup in place of path.
func Backup(ctx context.Context, path, dest string) (BackupInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Lstat(dest); err == nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %s exists; choose a new file", dest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("mode", "ro")
	src, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: opening %s: %w", path, err)
	}
	defer src.Close()
	src.SetMaxOpenConns(1)

	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmpName)
		}
	}()
	// VACUUM INTO takes an empty file as its target.
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmpName); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: copying %s: %w", path, err)
	}
	info, err := checkBackup(ctx, tmpName)
	if err != nil {
		return BackupInfo{}, err
	}
	if err := syncFile(tmpName); err != nil {
		return BackupInfo{}, err
	}
	// A link, not a rename: it refuses a dest that appeared meanwhile.
	if err := os.Link(tmpName, dest); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	os.Remove(tmpName)
	done = true
	if err := atomicfile.SyncDir(filepath.Dir(dest)); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	info.Path = dest
	return info, nil
}

// checkBackup opens the copy on its own and checks it is whole and migrated.
func checkBackup(ctx context.Context, file string) (BackupInfo, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	db, err := sql.Open("sqlite", "file:"+file+"?"+q.Encode())
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: checking the copy: %w", err)
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&verdict); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: checking the copy: %w", err)
	}
	if verdict != "ok" {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: the copy fails its integrity check: %s", verdict)
	}
	var info BackupInfo
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&info.Migration); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: the copy has no schema: %w", err)
	}
	st, err := os.Stat(file)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	info.Bytes = st.Size()
	return info, nil
}

func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sqlite: backup: syncing the copy: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	return nil
}
