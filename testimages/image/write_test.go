package image

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteAtomic: the initramfs cache file is created with its directory, has mode 0644 (not
// CreateTemp's 0600) and replaces an older one without leaving temporary files.
func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "initramfs")
	path := filepath.Join(dir, "x.cpio.gz")
	for _, data := range []string{"first, longer", "second"} {
		if err := writeAtomic(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", fi.Mode().Perm())
		}
		if es, _ := os.ReadDir(dir); len(es) != 1 {
			t.Errorf("directory holds %v", es)
		}
	}
}
