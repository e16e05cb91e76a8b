package debkernel

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestKernelDependency(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
		ok   bool
	}{
		{name: "bookworm", in: "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n", want: "linux-image-6.1.0-56-amd64", ok: true},
		{name: "alternatives", in: "linux-image-amd64\n |Depends: linux-image-6.12.1-amd64\n  Depends: <linux-image-6.1.0-1-amd64>\n", want: "linux-image-6.12.1-amd64", ok: true},
		{name: "concrete package", in: "linux-image-6.1.0-56-amd64\n  Depends: kmod\n  Depends: linux-base\n", ok: false},
		{name: "empty", in: "", ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := kernelDependency([]byte(tc.in))
			if got != tc.want || ok != tc.ok {
				t.Fatalf("kernelDependency = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		version string
		wantErr bool
	}{
		{name: "stanza", in: "Package: linux-image-6.1.0-56-amd64\nVersion: 6.1.192-2\nDescription: x\n more\nSHA256: ab\n\nPackage: other\nVersion: 9\n", version: "6.1.192-2"},
		{name: "leading blank", in: "\n\nVersion: 1\n", version: "1"},
		{name: "empty", in: "", wantErr: true},
		{name: "malformed", in: "Version 1\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := parseRecord([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && rec["Version"] != tc.version {
				t.Fatalf("Version = %q, want %q", rec["Version"], tc.version)
			}
		})
	}
}

func FuzzParseRecord(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.txt")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := parseRecord(data)
		if err == nil && len(rec) == 0 {
			t.Fatal("no error and no fields")
		}
		kernelDependency(data)
	})
}

func TestSafeName(t *testing.T) {
	if got := safeName("linux-image-6.1.0-56-amd64_6.1.192-2+deb12u1~x/../y"); got != "linux-image-6.1.0-56-amd64_6.1.192-2+deb12u1_x_.._y" {
		t.Fatalf("safeName = %q", got)
	}
}

// repoRoot finds the module root, where build/testimages lives.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

func TestFetchDebianKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads a kernel package; skipped in -short mode")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("SKIPPING: needs a Debian system with apt-get and dpkg-deb")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cache := filepath.Join(repoRoot(t), "build", "testimages", "kernel")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	k, err := Fetch(ctx, log, cache, Metapackage)
	if err != nil {
		t.Fatal(err)
	}
	if k.Package == Metapackage {
		t.Fatalf("metapackage %s was not resolved", Metapackage)
	}
	fi, err := os.Stat(k.Vmlinuz)
	if err != nil || fi.Size() < 1<<20 {
		t.Fatalf("kernel image %s: %v (size %v)", k.Vmlinuz, err, fi)
	}
	if _, err := os.Stat(filepath.Join(k.Modules, "modules.builtin")); err != nil {
		t.Fatal(err)
	}
	again, err := Fetch(ctx, log, cache, Metapackage)
	if err != nil {
		t.Fatal(err)
	}
	if *again != *k {
		t.Fatalf("second fetch returned %+v, first %+v", again, k)
	}
}
