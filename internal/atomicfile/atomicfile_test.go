package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// entries returns the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// checkFile fails unless path holds exactly want with mode perm and is alone in its directory.
func checkFile(t *testing.T, path string, want []byte, perm os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
	if names := entries(t, filepath.Dir(path)); len(names) != 1 || names[0] != filepath.Base(path) {
		t.Errorf("directory holds %q, want only %s", names, filepath.Base(path))
	}
}

func TestWriteFile(t *testing.T) {
	for _, tt := range []struct {
		name    string
		old     []byte // nil: no file before
		oldPerm os.FileMode
		data    []byte
		perm    os.FileMode
	}{
		{name: "new", data: []byte("new\n"), perm: 0o644},
		{name: "new secret", data: []byte("key"), perm: 0o600},
		{name: "new empty", data: []byte{}, perm: 0o640},
		{name: "replace", old: []byte("old content, longer"), oldPerm: 0o644, data: []byte("new"), perm: 0o644},
		{name: "replace tightens mode", old: []byte("old"), oldPerm: 0o666, data: []byte("new"), perm: 0o600},
		{name: "replace loosens mode", old: []byte("old"), oldPerm: 0o600, data: []byte("new"), perm: 0o755},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if tt.old != nil {
				if err := os.WriteFile(path, tt.old, tt.oldPerm); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, tt.data, tt.perm); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, tt.data, tt.perm)
		})
	}
}

// TestModeSetBeforeWriting: the temporary file has its final mode before the first byte, so a
// secret is never readable by others, whatever the umask.
func TestModeSetBeforeWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Cleanup()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("temporary file has mode %v before writing, want 0600", fi.Mode().Perm())
	}
	f2, err := Create(filepath.Join(filepath.Dir(path), "pub"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Cleanup()
	if fi, err := f2.Stat(); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("temporary file has mode %v (%v), want 0644", fi.Mode().Perm(), err)
	}
}

func TestRefusesModeBeyondPermissions(t *testing.T) {
	dir := t.TempDir()
	err := WriteFile(filepath.Join(dir, "f"), []byte("x"), os.ModeDir|0o755)
	if err == nil || !strings.Contains(err.Error(), "permission bits") {
		t.Fatalf("WriteFile with ModeDir: %v, want a refusal", err)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q after a refusal", names)
	}
}

// TestFailuresKeepOldFile: whatever fails before the rename, the old file is intact and no
// temporary file is left.
func TestFailuresKeepOldFile(t *testing.T) {
	old := []byte("old content\n")
	for _, tt := range []struct {
		name string
		// fail writes part of the new content through f and then makes Commit fail, or
		// drops f; it returns whether Commit is to be called.
		fail func(t *testing.T, f *File) (commit bool)
	}{
		{name: "dropped without commit", fail: func(t *testing.T, f *File) bool {
			if _, err := f.Write([]byte("half")); err != nil {
				t.Fatal(err)
			}
			return false
		}},
		{name: "sync fails", fail: func(t *testing.T, f *File) bool {
			if _, err := f.Write([]byte("half")); err != nil {
				t.Fatal(err)
			}
			f.File.Close() // Sync now fails
			return true
		}},
		{name: "rename fails", fail: func(t *testing.T, f *File) bool {
			if _, err := f.Write([]byte("new")); err != nil {
				t.Fatal(err)
			}
			f.path = filepath.Join(filepath.Dir(f.path), "missing", "f") // no such directory
			return true
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, old, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Create(path, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if tt.fail(t, f) {
				// A failed Commit cleans up by itself.
				if err := f.Commit(); err == nil {
					t.Fatal("Commit succeeded, want an error")
				}
			} else if err := f.Cleanup(); err != nil {
				t.Errorf("Cleanup: %v", err)
			}
			checkFile(t, path, old, 0o644)
			if err := f.Cleanup(); err != nil {
				t.Errorf("Cleanup after a failed Commit: %v", err)
			}
		})
	}
}

func TestCreateInMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "f")
	err := WriteFile(path, []byte("x"), 0o644)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("WriteFile into a missing directory: %v, want ErrNotExist naming %s", err, path)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q", names)
	}
}

// TestDirectorySync: Commit fsyncs the target's directory after the rename, and reports a
// failure of that fsync (except EINVAL, a file system that cannot sync directories).
func TestDirectorySync(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name    string
		syncErr error
		wantErr error
	}{
		{name: "ok"},
		{name: "fails", syncErr: boom, wantErr: boom},
		{name: "unsupported", syncErr: &os.PathError{Op: "sync", Path: "d", Err: syscall.EINVAL}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			f, err := Create(path, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Cleanup()
			var synced []string
			f.syncDir = func(d string) error {
				synced = append(synced, d)
				// The rename has happened by now: the target holds the new content and
				// the temporary file is gone.
				checkFile(t, path, []byte("new"), 0o644)
				return tt.syncErr
			}
			if _, err := f.Write([]byte("new")); err != nil {
				t.Fatal(err)
			}
			err = f.Commit()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Commit: %v, want %v", err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, ErrNotDurable) || !strings.Contains(err.Error(), path)) {
				t.Errorf("error %q is not ErrNotDurable naming %s", err, path)
			}
			if len(synced) != 1 || synced[0] != dir {
				t.Errorf("synced directories %q, want [%s]", synced, dir)
			}
		})
	}
}

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	if err := SyncDir(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("SyncDir of a missing directory: %v", err)
	}
}

func TestCommitOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Cleanup(); err != nil {
		t.Errorf("Cleanup after Commit: %v", err)
	}
	if err := f.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	checkFile(t, path, []byte("one"), 0o644)
}

// TestCreateIn: the temporary file lives in tmpDir until Commit moves it; nothing stays there.
func TestCreateIn(t *testing.T) {
	tmpDir, dir := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "f")
	f, err := CreateIn(tmpDir, path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Cleanup()
	if filepath.Dir(f.Name()) != tmpDir {
		t.Errorf("temporary file %s is not in %s", f.Name(), tmpDir)
	}
	if _, err := f.WriteAt([]byte("at"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("\x00\x00\x00at"), 0o644)
	if names := entries(t, tmpDir); len(names) != 0 {
		t.Errorf("%s holds %q after Commit", tmpDir, names)
	}
}

// TestWriteFillFails: an error from fill comes back as it is, after fill wrote part of the
// content, and the old file stays.
func TestWriteFillFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, 0o644, func(w io.Writer) error {
		if _, err := w.Write([]byte("half of the new")); err != nil {
			t.Fatal(err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write: %v, want the fill's error", err)
	}
	checkFile(t, path, []byte("old"), 0o644)
	if err := Write(path, 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, "new")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("new"), 0o600)
}

// TestCommitNew: the content is put in place when the target is absent; when it exists,
// CommitNew fails with fs.ErrExist, the existing file stays and no temporary file is left.
func TestCommitNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	for _, tt := range []struct {
		data    string
		wantErr error
		want    string
	}{
		{data: "first", want: "first"},
		{data: "second", wantErr: fs.ErrExist, want: "first"},
	} {
		f, err := Create(path, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(tt.data)); err != nil {
			t.Fatal(err)
		}
		if err := f.CommitNew(); !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Fatalf("CommitNew(%q) = %v, want %v", tt.data, err, tt.wantErr)
		}
		f.Cleanup()
		checkFile(t, path, []byte(tt.want), 0o600)
	}
}
