package cpio

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestNamesRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "absolute", in: "/etc/passwd"},
		{name: "dotdot", in: "../x"},
		{name: "inner dotdot", in: "a/../../x"},
		{name: "dot", in: "."},
		{name: "trailer", in: "TRAILER!!!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(&bytes.Buffer{})
			if err := w.File(tc.in, 0o644, nil); !errors.Is(err, ErrBadName) {
				t.Fatalf("File(%q) = %v, want ErrBadName", tc.in, err)
			}
		})
	}
}

func TestOrderAndDuplicates(t *testing.T) {
	w := NewWriter(&bytes.Buffer{})
	if err := w.File("bin/init", 0o755, nil); err == nil {
		t.Fatal("file before its directory was accepted")
	}
	if err := w.Dir("bin", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.File("bin/init", 0o755, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.File("bin/init", 0o755, []byte("y")); err == nil {
		t.Fatal("duplicate member was accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Dir("etc", 0o755); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close = %v, want ErrClosed", err)
	}
}

func TestDeterministicAndAligned(t *testing.T) {
	build := func() []byte {
		var b bytes.Buffer
		w := NewWriter(&b)
		for _, err := range []error{
			w.Dir("a", 0o755),
			w.File("a/one", 0o644, []byte("1")),
			w.File("a/three", 0o600, []byte("333")),
			w.Symlink("init", "a/one"),
			w.Close(),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	a, b := build(), build()
	if !bytes.Equal(a, b) {
		t.Fatal("two identical builds differ")
	}
	if len(a)%4 != 0 {
		t.Fatalf("archive length %d is not a multiple of 4", len(a))
	}
	if !bytes.HasPrefix(a, []byte("070701")) {
		t.Fatalf("archive starts with %q", a[:6])
	}
}

// TestDebianCpioReads has Debian's cpio, an independent implementation, list and extract what
// the writer produced.
func TestDebianCpioReads(t *testing.T) {
	bin, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("SKIPPING: Debian's cpio is not installed; run: apt-get install cpio")
	}
	var b bytes.Buffer
	w := NewWriter(&b)
	payload := bytes.Repeat([]byte("switchyard"), 1001)
	for _, err := range []error{
		w.Dir("bin", 0o755),
		w.File("bin/init", 0o755, payload),
		w.Dir("etc", 0o700),
		w.File("etc/odd", 0o640, []byte("12345")),
		w.Symlink("sbin", "bin"),
		w.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(b.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		want []byte
		perm os.FileMode
	}{
		{name: "bin/init", want: payload, perm: 0o755},
		{name: "etc/odd", want: []byte("12345"), perm: 0o640},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join(dir, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("content differs: %d bytes, want %d", len(got), len(tc.want))
			}
			fi, err := os.Stat(filepath.Join(dir, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.perm {
				t.Fatalf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
			}
		})
	}
	if target, err := os.Readlink(filepath.Join(dir, "sbin")); err != nil || target != "bin" {
		t.Fatalf("symlink sbin -> %q, %v; want bin", target, err)
	}
}
