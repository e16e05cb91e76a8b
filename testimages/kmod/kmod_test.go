package kmod

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// tree lays the testdata objects out as lib/modules/VERSION, compressing each with the given
// suffix, and returns its root.
func tree(t *testing.T, suffix string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "kernel", "drivers", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/*.ko")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata modules: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		var w io.WriteCloser
		switch suffix {
		case "":
			w = nopCloser{&b}
		case ".xz":
			w, err = xz.NewWriter(&b)
		case ".zst":
			w, err = zstd.NewWriter(&b)
		case ".gz":
			w = gzip.NewWriter(&b)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)+suffix), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	builtin := "kernel/lib/builtin_thing.ko\nkernel/fs/other-fs.ko\n"
	if err := os.WriteFile(filepath.Join(root, "modules.builtin"), []byte(builtin), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestResolve(t *testing.T) {
	for _, suffix := range []string{"", ".xz", ".zst", ".gz"} {
		t.Run("suffix="+suffix, func(t *testing.T) {
			tr, err := Open(tree(t, suffix))
			if err != nil {
				t.Fatal(err)
			}
			mods, err := tr.Resolve("top-mod", "leaf")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range mods {
				names = append(names, m.Name)
				if !bytes.HasPrefix(m.Data, []byte("\x7fELF")) {
					t.Errorf("%s: data is not an uncompressed ELF object", m.Name)
				}
				if !strings.HasSuffix(m.Path, ".ko"+suffix) {
					t.Errorf("%s: path %q lacks suffix %q", m.Name, m.Path, suffix)
				}
			}
			want := []string{"soft_one", "leaf", "mid", "top_mod"}
			if !reflect.DeepEqual(names, want) {
				t.Fatalf("load order %v, want %v", names, want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tr, err := Open(tree(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		modules []string
		want    error
		substr  string
	}{
		{name: "missing", modules: []string{"nope"}, want: ErrNotFound},
		{name: "cycle", modules: []string{"cyc-a"}, substr: "cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.Resolve(tc.modules...)
			if err == nil {
				t.Fatal("Resolve succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.substr)
			}
		})
	}
	if mods, err := tr.Resolve("other_fs"); err != nil || len(mods) != 0 {
		t.Fatalf("built-in module resolved to %v, %v; want nothing", mods, err)
	}
	if !tr.Builtin("other-fs") {
		t.Fatal("other-fs is not reported as built in")
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{in: "kernel/arch/x86/crypto/crc32c-intel.ko.xz", want: "crc32c_intel"},
		{in: "virtio_blk.ko", want: "virtio_blk"},
		{in: "ext4.ko.zst", want: "ext4"},
		{in: "crc16", want: "crc16"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := Name(tc.in); got != tc.want {
				t.Fatalf("Name(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseModinfoRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{name: "empty", in: nil},
		{name: "not elf", in: []byte("hello world, this is not an object file at all")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseModinfo(tc.in); err == nil {
				t.Fatal("ParseModinfo succeeded")
			}
		})
	}
	empty, err := os.ReadFile("testdata/leaf.ko")
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseModinfo(empty)
	if err != nil {
		t.Fatal(err)
	}
	if got := info["license"]; !reflect.DeepEqual(got, []string{"GPL"}) {
		t.Fatalf("license = %v", got)
	}
}

func FuzzParseModinfo(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.ko")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseModinfo(data)
		if err != nil {
			return
		}
		for _, d := range append(info.Depends(), info.SoftPre()...) {
			if d == "" || strings.Contains(d, "-") {
				t.Fatalf("bad normalised name %q", d)
			}
		}
	})
}
