package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// timeZero is the modification time of every file in a test image tree.
var timeZero = time.Unix(1700000000, 0)

// mkExt4 makes an ext4 image of sizeMiB from the files (path -> content) with mke2fs -d,
// with a fixed UUID, hash seed and time, as a reproducible image build would.
func mkExt4(t testing.TB, files map[string][]byte, sizeMiB int) []byte {
	t.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("SKIPPING: mke2fs not found (apt-get install e2fsprogs; make test installs it)")
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for p, b := range files {
		full := filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, timeZero, timeZero); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "fs.img")
	cmd := exec.Command("mke2fs", "-q", "-t", "ext4", "-b", "4096", "-U", "4a6f8cbe-57b8-4a54-9f0e-2b8c1c8e7a11",
		"-E", "hash_seed=0d0e1a2b-3c4d-5e6f-7a8b-9c0d1e2f3a4b,root_owner=0:0", "-d", tree, img, fmt.Sprintf("%dM", sizeMiB))
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ext4Pair returns two small ext4 images whose trees differ as a point release's do: files
// changed in place (bytes replaced, bytes inserted, so that the rest shifts), a file moved
// to another directory, a file added and one removed; the rest is the same.
func ext4Pair(t testing.TB) (old, img []byte) {
	t.Helper()
	ext4PairOnce.Do(func() { ext4PairOld, ext4PairNew = makeExt4Pair(t) })
	if ext4PairOld == nil {
		t.Skip("SKIPPING: no ext4 image pair (see the first test that made it)")
	}
	return ext4PairOld, ext4PairNew
}

// The pair is made once per test binary: mke2fs is the slow part of the delta tests.
var (
	ext4PairOnce             sync.Once
	ext4PairOld, ext4PairNew []byte
)

func makeExt4Pair(t testing.TB) (old, img []byte) {
	t.Helper()
	base := map[string][]byte{}
	for i := 0; i < 24; i++ {
		base[fmt.Sprintf("usr/lib/lib%02d.so", i)] = testImage(48<<10+i*4096+i*37, uint64(100+i))
	}
	base["usr/bin/tool"] = testImage(300<<10, 7)
	base["usr/share/doc/README"] = bytes.Repeat([]byte("switchyard delta updates\n"), 2000)
	base["usr/lib/old-only.so"] = testImage(40<<10, 8)
	next := map[string][]byte{}
	for p, b := range base {
		next[p] = b
	}
	// Changed in place: a few bytes replaced, and 100 bytes inserted in the middle.
	tool := append([]byte(nil), base["usr/bin/tool"]...)
	copy(tool[1000:], "version 2.0")
	tool = append(tool[:150<<10], append(bytes.Repeat([]byte{0xCC}, 100), tool[150<<10:]...)...)
	next["usr/bin/tool"] = tool
	lib := append([]byte(nil), base["usr/lib/lib05.so"]...)
	copy(lib[5000:], "patched")
	next["usr/lib/lib05.so"] = lib
	// Moved.
	next["usr/lib/moved/lib09.so"] = base["usr/lib/lib09.so"]
	delete(next, "usr/lib/lib09.so")
	// Added and removed.
	next["usr/lib/new-only.so"] = testImage(64<<10, 11)
	delete(next, "usr/lib/old-only.so")
	return mkExt4(t, base, 8), mkExt4(t, next, 8)
}

// buildDeltaSigned builds and signs a delta of img against old.
func buildDeltaSigned(t testing.TB, old, img []byte) ([]byte, *Manifest) {
	t.Helper()
	p := buildSigned(t, img, BuildConfig{Source: bytes.NewReader(old), SourceSize: int64(len(old)), SourceVersion: "1.2.2"})
	e, err := ReadEnvelope(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	return p, e.Manifest
}

func countTypes(m *Manifest) map[Type]int {
	n := map[Type]int{}
	for _, op := range m.Operations {
		n[op.Type]++
	}
	return n
}

func TestDeltaRoundTrip(t *testing.T) {
	k := getKeys(t)
	ext4Old, ext4New := ext4Pair(t)
	synth := testImage(2<<20, 6)
	shifted := append(append(make([]byte, 0, len(synth)), synth[3*4096:]...), synth[:3*4096]...)
	edited := append([]byte(nil), synth...)
	copy(edited[5*testChunk+100:], "a change in chunk five")
	grown := append(append([]byte(nil), synth...), testImage(1<<20, 60)...)
	// Moved by 3 MiB and edited in every block: no block is found as it is, and the source
	// at the same offset is other data, so only the similarity index finds the old bytes.
	big := testImage(6<<20, 61)
	moved := make([]byte, 8<<20)
	copy(moved[3<<20:], big[:5<<20])
	for off := 3<<20 + 2000; off < len(moved); off += 4096 {
		moved[off] ^= 0x5a
	}
	bigSrc := append(append([]byte(nil), big...), make([]byte, 2<<20)...)
	tests := []struct {
		name      string
		old, img  []byte
		maxRatio  float64 // delta size / full payload size
		wantTypes []Type
	}{
		{"ext4 point release", ext4Old, ext4New, 0.25, []Type{SourceCopy, SourceZstd}},
		{"identical", synth, synth, 0.01, []Type{SourceCopy}},
		{"blocks moved", synth, shifted, 0.02, []Type{SourceCopy}},
		{"bytes changed", synth, edited, 0.05, []Type{SourceCopy, SourceZstd}},
		{"target larger than source", synth, grown, 0.8, []Type{SourceCopy}},
		{"source larger than target", grown, synth, 0.02, []Type{SourceCopy}},
		{"edited in every block and moved", bigSrc, moved, 0.1, []Type{SourceZstd}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Against a zstd full payload: the Go xz encoder would take most of the test's time.
			full := buildSigned(t, tt.img, BuildConfig{Compression: ReplaceZstd})
			p, m := buildDeltaSigned(t, tt.old, tt.img)
			if m.FormatVersion() != FormatVersionDelta || m.Source.Size != uint64(len(tt.old)) ||
				m.Source.SHA256 != sha256.Sum256(tt.old) || m.Source.Version != "1.2.2" {
				t.Fatalf("delta names source %+v", m.Source)
			}
			types := countTypes(m)
			for _, want := range tt.wantTypes {
				if types[want] == 0 {
					t.Errorf("no %s operation: %v", want, types)
				}
			}
			if r := float64(len(p)) / float64(len(full)); r > tt.maxRatio {
				t.Errorf("delta %d bytes is %.3f of the full payload's %d, want at most %.3f", len(p), r, len(full), tt.maxRatio)
			}
			got, err := applyToFile(t, p, k.verifier, ApplyConfig{Source: bytes.NewReader(tt.old), SourceSize: int64(len(tt.old))})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.img) {
				t.Fatal("delta result differs from the image")
			}
		})
	}
}

// patternTarget is a target file filled with 0xA5, so that a test can tell which blocks
// were written.
func patternTarget(t *testing.T, size int) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "target.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(bytes.Repeat([]byte{0xA5}, size)); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestDeltaFlippedSourceBlock: a source block that differs from the delta's source is
// refused with ErrSourceHash (an ErrSourceMismatch) before the operation that reads it
// writes a byte, for both operation kinds that read the source.
func TestDeltaFlippedSourceBlock(t *testing.T) {
	k := getKeys(t)
	old, img := ext4Pair(t)
	p, m := buildDeltaSigned(t, old, img)
	for _, typ := range []Type{SourceCopy, SourceZstd} {
		t.Run(typ.String(), func(t *testing.T) {
			idx := -1
			for i, op := range m.Operations {
				if op.Type == typ {
					idx = i
					break
				}
			}
			if idx < 0 {
				t.Fatalf("the delta has no %s operation", typ)
			}
			op := m.Operations[idx]
			bad := append([]byte(nil), old...)
			e := op.Src[len(op.Src)-1]
			bad[(e.Start+e.Count-1)*uint64(m.BlockSize)+17] ^= 0x40
			f := patternTarget(t, len(img))
			_, err := Apply(context.Background(), bytes.NewReader(p), k.verifier, ApplyConfig{Target: f, Source: bytes.NewReader(bad), SourceSize: int64(len(bad))})
			if !errors.Is(err, ErrSourceHash) || !errors.Is(err, ErrSourceMismatch) {
				t.Fatalf("Apply: %v, want ErrSourceHash and ErrSourceMismatch", err)
			}
			got, rerr := os.ReadFile(f.Name())
			if rerr != nil {
				t.Fatal(rerr)
			}
			for _, d := range op.Dst {
				bs := uint64(m.BlockSize)
				if !bytes.Equal(got[d.Start*bs:(d.Start+d.Count)*bs], bytes.Repeat([]byte{0xA5}, int(d.Count*bs))) {
					t.Fatalf("operation %d wrote its extent %+v although its source failed", idx, d)
				}
			}
		})
	}
}

// TestDeltaWrongSource: a source of another size is refused before anything is written;
// no source at all is ErrNoSource; CheckSource finds a flipped byte anywhere.
func TestDeltaWrongSource(t *testing.T) {
	ctx := context.Background()
	k := getKeys(t)
	old, img := ext4Pair(t)
	p, _ := buildDeltaSigned(t, old, img)
	t.Run("size", func(t *testing.T) {
		f := patternTarget(t, len(img))
		short := old[:len(old)-4096]
		_, err := Apply(ctx, bytes.NewReader(p), k.verifier, ApplyConfig{Target: f, Source: bytes.NewReader(short)})
		if !errors.Is(err, ErrSourceMismatch) {
			t.Fatalf("Apply: %v, want ErrSourceMismatch", err)
		}
		if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, bytes.Repeat([]byte{0xA5}, len(img))) {
			t.Fatal("target written although the source is the wrong size")
		}
	})
	t.Run("none", func(t *testing.T) {
		f := patternTarget(t, len(img))
		_, err := Apply(ctx, bytes.NewReader(p), k.verifier, ApplyConfig{Target: f})
		if !errors.Is(err, ErrNoSource) || !errors.Is(err, ErrSourceMismatch) {
			t.Fatalf("Apply: %v, want ErrNoSource", err)
		}
	})
	t.Run("CheckSource", func(t *testing.T) {
		vm, err := ReadManifest(ctx, bytes.NewReader(p), k.verifier)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.CheckSource(ctx, bytes.NewReader(old), int64(len(old))); err != nil {
			t.Fatalf("CheckSource of the right source: %v", err)
		}
		bad := append([]byte(nil), old...)
		bad[len(bad)-1] ^= 1 // a byte no operation reads
		if err := vm.CheckSource(ctx, bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrSourceMismatch) {
			t.Fatalf("CheckSource of a flipped source: %v, want ErrSourceMismatch", err)
		}
		if err := vm.CheckSource(ctx, bytes.NewReader(old[:4096]), 0); !errors.Is(err, ErrSourceMismatch) {
			t.Fatalf("CheckSource of a short source: %v, want ErrSourceMismatch", err)
		}
	})
}

// TestDeltaResume applies a delta, undoes the operations from k on, and resumes at k with
// the payload read from Verified.PayloadOffset(k), as an HTTP Range request would.
func TestDeltaResume(t *testing.T) {
	ctx := context.Background()
	k := getKeys(t)
	old, img := ext4Pair(t)
	p, m := buildDeltaSigned(t, old, img)
	// Resume at an operation with data, so that the data offset matters.
	start := -1
	for i, op := range m.Operations {
		if op.Type == SourceZstd && i > 0 {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatal("no SOURCE_ZSTD operation after the first")
	}
	f := patternTarget(t, len(img))
	vm, err := ReadManifest(ctx, bytes.NewReader(p), k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Apply(ctx, bytes.NewReader(p[vm.DataStart:]), ApplyConfig{Target: f, Source: bytes.NewReader(old)}); err != nil {
		t.Fatal(err)
	}
	bs := int64(m.BlockSize)
	for _, op := range m.Operations[start:] {
		for _, d := range op.Dst {
			if _, err := f.WriteAt(make([]byte, int64(d.Count)*bs), int64(d.Start)*bs); err != nil {
				t.Fatal(err)
			}
		}
	}
	rest := bytes.NewReader(p[vm.PayloadOffset(start):])
	if err := vm.Apply(ctx, rest, ApplyConfig{Target: f, Source: bytes.NewReader(old), StartOp: start}); err != nil {
		t.Fatalf("resumed apply: %v", err)
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, img) {
		t.Fatal("resumed result differs")
	}
}

// TestDeltaManifestRules: format 2 validation.
func TestDeltaManifestRules(t *testing.T) {
	data := []byte("patch")
	base := func() *Manifest {
		return &Manifest{BlockSize: 4096, PartitionSize: 8 * 4096, Version: "2", Board: "b",
			Source: &Source{Size: 8 * 4096, Version: "1"},
			Operations: []Operation{
				{Type: SourceCopy, Dst: []Extent{{0, 4}}, Src: []Extent{{4, 4}}},
				{Type: SourceZstd, Dst: []Extent{{4, 4}}, Src: []Extent{{0, 2}}, DataLength: uint64(len(data)), SHA256: sha256.Sum256(data)},
			}}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	b, err := base().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifestVersion(FormatVersionDelta, b)
	if err != nil || m.Source.Version != "1" || m.Operations[1].Type != SourceZstd {
		t.Fatalf("round trip: %+v, %v", m, err)
	}
	if _, err := ParseManifest(b); err == nil {
		t.Fatal("a format 2 manifest parsed as format 1")
	}
	tests := []struct {
		name   string
		change func(m *Manifest)
		want   error
	}{
		{"SOURCE_ZSTD in format 1", func(m *Manifest) { m.Source = nil }, ErrMalformedManifest},
		{"source extent beyond the source", func(m *Manifest) { m.Operations[0].Src[0].Start = 6 }, ErrExtentOutside},
		{"source not a block multiple", func(m *Manifest) { m.Source.Size = 4097 }, ErrMalformedManifest},
		{"no source version", func(m *Manifest) { m.Source.Version = "" }, ErrMalformedManifest},
		{"SOURCE_ZSTD without source", func(m *Manifest) { m.Operations[1].Src = nil }, ErrMalformedManifest},
		{"SOURCE_ZSTD without data", func(m *Manifest) { m.Operations[1].DataLength = 0 }, ErrDataLayout},
		{"source hash on a copy", func(m *Manifest) { m.Operations[0].SourceSHA256[0] = 1 }, ErrMalformedManifest},
		{"source read too large", func(m *Manifest) {
			m.PartitionSize, m.Source.Size = 4096*4096, 4096*4096
			m.Operations[0].Dst[0].Count, m.Operations[0].Src = 4092, []Extent{{4, 4092}}
			m.Operations[1].Dst[0].Start = 4092
		}, ErrOperationTooLarge},
		{"patch too large", func(m *Manifest) {
			m.PartitionSize, m.Source.Size = 4096*4096, 4096*4096
			m.Operations[0].Dst[0].Count, m.Operations[0].Src = 4, []Extent{{4, 4}}
			m.Operations[1].Dst[0].Count = 4092
		}, ErrOperationTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.change(m)
			if err := m.Validate(); !errors.Is(err, tt.want) {
				t.Fatalf("Validate: %v, want %v", err, tt.want)
			}
		})
	}
}
