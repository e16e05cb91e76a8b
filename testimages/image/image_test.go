package image

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func partRange(t *testing.T, n int) (off, size int64) {
	t.Helper()
	specs, _, err := layout.Plan(layout.Options{Sizes: Sizes})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Number == n {
			return int64(s.FirstLBA) * 512, int64(s.LastLBA-s.FirstLBA+1) * 512
		}
	}
	t.Fatalf("no partition %d", n)
	return 0, 0
}

func TestDiskAndWriteUSR(t *testing.T) {
	ctx := context.Background()
	a := writeFile(t, "a.img", append(bytes.Repeat([]byte("A"), 4096), make([]byte, 2<<20)...))
	b := writeFile(t, "b.img", bytes.Repeat([]byte("B"), 3000))
	root := writeFile(t, "root.img", bytes.Repeat([]byte("R"), 512))
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := Disk(ctx, disk, a, b, root); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{n: layout.NumUSRA, want: bytes.Repeat([]byte("A"), 4096)},
		{n: layout.NumUSRB, want: bytes.Repeat([]byte("B"), 3000)},
		{n: layout.NumRoot, want: bytes.Repeat([]byte("R"), 512)},
	} {
		off, _ := partRange(t, tc.n)
		if got := img[off : off+int64(len(tc.want))]; !bytes.Equal(got, tc.want) {
			t.Fatalf("partition %d does not start with its image", tc.n)
		}
		if img[off+int64(len(tc.want))] != 0 {
			t.Fatalf("partition %d has data past its image", tc.n)
		}
	}
	d, err := blockdev.Open(ctx, disk, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := gpt.Read(ctx, d, d.Size(), d.SectorSize())
	d.Close()
	if err != nil {
		t.Fatalf("the disk's GPT does not read back: %v", err)
	}
	if s, err := slots.Peek(tb); err != nil || s.Number != layout.NumUSRA {
		t.Fatalf("fresh disk boots %v, %v; want USR-A", s, err)
	}

	// An update overwrites USR-B completely, zeros included.
	b2 := writeFile(t, "b2.img", append(make([]byte, 100), 'x'))
	if err := WriteUSR(ctx, disk, layout.NumUSRB, b2); err != nil {
		t.Fatal(err)
	}
	img, err = os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	off, _ := partRange(t, layout.NumUSRB)
	if got := img[off : off+101]; !bytes.Equal(got, append(make([]byte, 100), 'x')) {
		t.Fatalf("USR-B after WriteUSR starts with %q", got[:8])
	}
	if err := WriteUSR(ctx, disk, layout.NumRoot, b2); err == nil {
		t.Fatal("WriteUSR wrote to ROOT")
	}
}

func TestDiskRejectsOversizedImage(t *testing.T) {
	_, size := partRange(t, layout.NumUSRA)
	big := filepath.Join(t.TempDir(), "big.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size + 512); err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = Disk(context.Background(), filepath.Join(t.TempDir(), "disk.img"), big, "", "")
	if !errors.Is(err, layout.ErrTooLarge) {
		t.Fatalf("Disk = %v, want ErrTooLarge", err)
	}
}

// TestFilesystem builds an ext4 image and reads it back with debugfs (e2fsprogs), a reader
// that shares nothing with the builder but the format.
func TestFilesystem(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPING: %s is missing; run: apt-get install e2fsprogs", tool)
		}
	}
	ctx := context.Background()
	b := &Builder{Cache: t.TempDir()}
	entries := []entry{
		{path: "share/switchyard/version", mode: 0o644, data: []byte("9.9.9\n")},
		{path: "bin/tool", mode: 0o755, data: []byte("#!/bin/true\n")},
		{path: "var/lib/switchyard", mode: fs.ModeDir | 0o700},
	}
	p, err := b.filesystem(ctx, "USR", 8<<20, true, entries)
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.filesystem(ctx, "USR", 8<<20, true, entries)
	if err != nil || again != p {
		t.Fatalf("same content built twice: %s and %s, %v", p, again, err)
	}
	other, err := b.filesystem(ctx, "USR", 8<<20, true, []entry{{path: "share/switchyard/version", mode: 0o644, data: []byte("9.9.10\n")}})
	if err != nil || other == p {
		t.Fatalf("different content shares a cache entry: %s, %v", other, err)
	}
	debugfs := func(req string) string {
		out, err := exec.Command("debugfs", "-R", req, p).CombinedOutput()
		if err != nil {
			t.Fatalf("debugfs %s: %v\n%s", req, err, out)
		}
		return string(out)
	}
	if got := debugfs("cat /share/switchyard/version"); !strings.Contains(got, "9.9.9") {
		t.Fatalf("version file reads %q", got)
	}
	if got := debugfs("stat /bin/tool"); !strings.Contains(got, "Mode:  0755") {
		t.Fatalf("bin/tool: %s", got)
	}
	if got := debugfs("stat /var/lib/switchyard"); !strings.Contains(got, "Mode:  0700") || !strings.Contains(got, "Type: directory") {
		t.Fatalf("state dir: %s", got)
	}
	if got := debugfs("features"); strings.Contains(got, "has_journal") {
		t.Fatalf("read-only USR file system has a journal: %s", got)
	}
}
