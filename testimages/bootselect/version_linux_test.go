package bootselect

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/internal/smallfile"
)

// TestReadVersionBound: a version file of maxVersionSize bytes is read; one byte more is
// refused as too large, with an error naming the file and the limit.
func TestReadVersionBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "version")
	word := strings.Repeat("1", maxVersionSize-1) + "\n"
	if err := os.WriteFile(path, []byte(word), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := readVersion(path); err != nil || v != strings.TrimSpace(word) {
		t.Fatalf("readVersion at the limit = %q, %v", v, err)
	}
	if err := os.WriteFile(path, []byte("1"+word), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readVersion(path)
	if !errors.Is(err, smallfile.ErrTooLarge) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), strconv.Itoa(maxVersionSize)) {
		t.Fatalf("readVersion above the limit = %v, want smallfile.ErrTooLarge naming %s and the limit", err, path)
	}
}
