package smallfile_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/internal/smallfile"
)

func TestRead(t *testing.T) {
	const limit = 100
	for _, tt := range []struct {
		name   string
		size   int
		limit  int64
		tooBig bool
	}{
		{name: "empty", size: 0, limit: limit},
		{name: "below", size: limit - 1, limit: limit},
		{name: "at the limit", size: limit, limit: limit},
		{name: "one above", size: limit + 1, limit: limit, tooBig: true},
		{name: "far above", size: 10 * limit, limit: limit, tooBig: true},
		{name: "zero limit, empty", size: 0, limit: 0},
		{name: "zero limit, one byte", size: 1, limit: 0, tooBig: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			want := bytes.Repeat([]byte{'x'}, tt.size)
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := smallfile.Read(path, tt.limit)
			if tt.tooBig {
				checkTooLarge(t, err, path, tt.limit)
				if got != nil {
					t.Errorf("Read returned %d bytes with the error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Read returned %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func checkTooLarge(t *testing.T, err error, path string, limit int64) {
	t.Helper()
	if !errors.Is(err, smallfile.ErrTooLarge) {
		t.Fatalf("Read: %v, want ErrTooLarge", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, strconv.FormatInt(limit, 10)) {
		t.Errorf("error %q does not name the path %s and the limit %d", msg, path, limit)
	}
}

// TestReadUnsizedFile: a file whose size Stat does not tell (a character device here) is read
// up to limit+1 bytes and refused, not read without end.
func TestReadUnsizedFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero:", err)
	}
	_, err := smallfile.Read("/dev/zero", 4096)
	checkTooLarge(t, err, "/dev/zero", 4096)
}

func TestReadErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := smallfile.Read(missing, 10); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Read of a missing file: %v, want ErrNotExist naming the path", err)
	}
	if _, err := smallfile.Read(t.TempDir(), 10); err == nil {
		t.Error("Read of a directory succeeded")
	}
	if _, err := smallfile.Read(missing, -1); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Read with a negative limit: %v", err)
	}
}
