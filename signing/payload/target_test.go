package payload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sizedTarget is a partition window: an in-memory target with a Size method.
type sizedTarget struct{ data []byte }

func (s *sizedTarget) WriteAt(p []byte, off int64) (int, error) { return copy(s.data[off:], p), nil }
func (s *sizedTarget) ReadAt(p []byte, off int64) (int, error)  { return copy(p, s.data[off:]), nil }
func (s *sizedTarget) Size() int64                              { return int64(len(s.data)) }

// TestTargetSize: a target whose size is not the manifest's partition size is refused before
// a byte is written, whatever says the size (ApplyConfig.TargetSize, a Size method, a
// file's length); an empty image file is sized to the partition.
func TestTargetSize(t *testing.T) {
	k := getKeys(t)
	img := testImage(4*testChunk, 31)
	p := buildSigned(t, img, BuildConfig{Compression: ReplaceZstd})
	part := int64(len(img))
	old := func(n int64) []byte { return bytes.Repeat([]byte{0xa5}, int(n)) }
	tests := []struct {
		name    string
		file    []byte // the target file's content before the apply; nil: sizedTarget
		window  int64  // sizedTarget's size
		cfgSize int64  // ApplyConfig.TargetSize
		startOp int
		wantErr bool
	}{
		{name: "larger file", file: old(part + 4096), wantErr: true},
		{name: "smaller file", file: old(part - 4096), wantErr: true},
		{name: "file of the partition's size", file: old(part)},
		{name: "empty file", file: []byte{}},
		{name: "empty file, resumed", file: []byte{}, startOp: 1, wantErr: true},
		{name: "TargetSize larger than the file", file: old(part), cfgSize: part + 4096, wantErr: true},
		{name: "larger window", window: part + 4096, wantErr: true},
		{name: "smaller window", window: part - 4096, wantErr: true},
		{name: "window of the partition's size", window: part},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm, err := ReadManifest(t.Context(), bytes.NewReader(p), k.verifier)
			if err != nil {
				t.Fatal(err)
			}
			cfg := ApplyConfig{TargetSize: tt.cfgSize, StartOp: tt.startOp}
			var content func() []byte
			if tt.file != nil {
				path := filepath.Join(t.TempDir(), "usr.img")
				if err := os.WriteFile(path, tt.file, 0o644); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				cfg.Target, cfg.Sync = f, f.Sync
				content = func() []byte {
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					return b
				}
			} else {
				w := &sizedTarget{data: old(tt.window)}
				cfg.Target = w
				content = func() []byte { return w.data }
			}
			before := bytes.Clone(content())
			err = vm.Apply(t.Context(), bytes.NewReader(p[vm.PayloadOffset(tt.startOp):]), cfg)
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(content(), img) {
					t.Fatal("the target is not the partition")
				}
				return
			}
			if !errors.Is(err, ErrTargetSize) {
				t.Fatalf("Apply = %v, want ErrTargetSize", err)
			}
			size := int64(len(before))
			if tt.cfgSize > 0 {
				size = tt.cfgSize
			}
			if want := fmt.Sprintf("target %d bytes, partition %d bytes", size, part); !strings.Contains(err.Error(), want) {
				t.Fatalf("Apply = %q, want it to name both sizes (%q)", err, want)
			}
			if !bytes.Equal(content(), before) {
				t.Fatal("the refused target was changed")
			}
		})
	}
}

// TestTargetSizeUnknown: a target that cannot say its size is refused.
func TestTargetSizeUnknown(t *testing.T) {
	k := getKeys(t)
	p := buildSigned(t, testImage(testChunk, 32), BuildConfig{})
	// failingTarget can be written and re-read but has no size.
	_, err := Apply(t.Context(), bytes.NewReader(p), k.verifier, ApplyConfig{Target: &failingTarget{n: 1 << 30}})
	if err == nil || !strings.Contains(err.Error(), "target size unknown") {
		t.Fatalf("Apply = %v, want a refusal of a target of unknown size", err)
	}
}

// errReader returns its payload, then fails with err instead of ending.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

// TestErrorKinds: the caller tells a failing target (TargetError) from a failing reader
// (ReadError) and from a refused payload (a sentinel), with errors.As and errors.Is, and
// each message names what the applier was doing.
func TestErrorKinds(t *testing.T) {
	k := getKeys(t)
	img := testImage(4*testChunk, 33)
	p := buildSigned(t, img, BuildConfig{Compression: ReplaceZstd})
	vm, err := ReadManifest(t.Context(), bytes.NewReader(p), k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	data := p[vm.DataStart:]
	cut := vm.PayloadOffset(2) - vm.DataStart + 10
	tampered := bytes.Clone(data)
	tampered[len(tampered)-10] ^= 0xff
	eio := &os.PathError{Op: "fsync", Path: "usr.img", Err: syscall.EIO}
	tests := []struct {
		name   string
		data   io.Reader
		write  bool // the target fails writes after operation 0
		sync   bool // the target's sync fails
		is     error
		kind   string // "target", "read" or "" (a refusal)
		prefix string
	}{
		{name: "write", data: bytes.NewReader(data), write: true, is: errDiskFull, kind: "target",
			prefix: "payload: writing operation 1: "},
		{name: "sync", data: bytes.NewReader(data), sync: true, is: syscall.EIO, kind: "target",
			prefix: "payload: syncing target: fsync usr.img: "},
		{name: "reader", data: &errReader{r: bytes.NewReader(data[:cut]), err: syscall.ECONNRESET}, is: syscall.ECONNRESET,
			kind: "read", prefix: "payload: reading operation 2 data: "},
		{name: "reader cut short", data: &errReader{r: bytes.NewReader(data[:cut]), err: fmt.Errorf("connection: %w", io.ErrUnexpectedEOF)},
			is: io.ErrUnexpectedEOF, kind: "read", prefix: "payload: reading operation 2 data: connection: "},
		{name: "payload ends early", data: bytes.NewReader(data[:cut]), is: ErrTruncated, prefix: "payload: truncated: reading operation 2 data"},
		{name: "reader after the last operation", data: &errReader{r: bytes.NewReader(data), err: syscall.ECONNRESET},
			is: syscall.ECONNRESET, kind: "read", prefix: "payload: reading after the last operation: "},
		{name: "tampered data", data: bytes.NewReader(tampered), is: ErrDataHash, prefix: "payload: operation data hash mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "usr.img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cfg := ApplyConfig{Target: f, Sync: f.Sync}
			if tt.write {
				cfg.Target, cfg.TargetSize = &failingTarget{n: testChunk}, int64(len(img))
			}
			if tt.sync {
				cfg.Sync = func() error { return eio }
			}
			err = vm.Apply(t.Context(), tt.data, cfg)
			kind := ""
			if errors.As(err, new(*TargetError)) {
				kind = "target"
			}
			if errors.As(err, new(*ReadError)) {
				kind += "read"
			}
			if kind != tt.kind {
				t.Errorf("Apply = %v: a %q error, want %q", err, kind, tt.kind)
			}
			if msg := err.Error(); !errors.Is(err, tt.is) || !strings.HasPrefix(msg, tt.prefix) || strings.Count(msg, "payload: ") != 1 {
				t.Errorf("Apply = %q, want %q… wrapping %v", msg, tt.prefix, tt.is)
			}
		})
	}
}
