package initramfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/testimages/kmod"
)

func TestWrite(t *testing.T) {
	spec := Spec{
		Init:    []byte("#!/bin/true\n"),
		Release: "6.1.0-test",
		Modules: []kmod.Module{
			{Name: "virtio", Data: []byte("\x7fELF one")},
			{Name: "virtio_blk", Data: []byte("\x7fELF two")},
		},
	}
	var a, b bytes.Buffer
	if err := Write(&a, spec); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, spec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same spec gave different archives")
	}
	zr, err := gzip.NewReader(&a)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	cpioBin, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("SKIPPING the extraction check: Debian's cpio is not installed; run: apt-get install cpio")
	}
	dir := t.TempDir()
	cmd := exec.Command(cpioBin, "-id", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "dev/console") {
		// Creating dev/console needs CAP_MKNOD; everything else must extract.
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	list, err := os.ReadFile(filepath.Join(dir, ModuleList))
	if err != nil {
		t.Fatal(err)
	}
	want := "/lib/modules/6.1.0-test/virtio.ko\n/lib/modules/6.1.0-test/virtio_blk.ko\n"
	if string(list) != want {
		t.Fatalf("load.list = %q, want %q", list, want)
	}
	got, err := os.ReadFile(filepath.Join(dir, "lib/modules/6.1.0-test/virtio_blk.ko"))
	if err != nil || string(got) != "\x7fELF two" {
		t.Fatalf("module content %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "init"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("init: %v %v", fi, err)
	}
}

func TestWriteRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{name: "no init", spec: Spec{Release: "6.1"}},
		{name: "bad release", spec: Spec{Init: []byte("x"), Release: "../6.1"}},
		{name: "bad module", spec: Spec{Init: []byte("x"), Release: "6.1", Modules: []kmod.Module{{Name: "a/b"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Write(io.Discard, tc.spec); err == nil {
				t.Fatal("Write succeeded")
			}
		})
	}
}
