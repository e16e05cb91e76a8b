package payload

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/signing/keys"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/seeds from a freshly built payload")

// Seeds: testdata/seeds/*.bin are payload heads (header, manifest, signatures and a little
// data) written by TestWriteSeeds with -update-seeds from small built payloads (xz, zstd,
// and a format 2 delta with SOURCE_COPY and SOURCE_ZSTD). testdata/seeds/*.manifest are their bare manifests.

func seedFiles(f *testing.F, glob string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "seeds", glob))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s: %v", glob, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// seedSource is the source image of the delta seed (1 MiB; its first half is the seed
// image's), also handed to FuzzReadPayload so that delta seeds reach the source operations.
var seedSource = func() []byte {
	old := testImage(1<<20, 10)
	copy(old, testImage(1<<20, 9)[:512<<10])
	return old
}()

func TestWriteSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/seeds")
	}
	img := testImage(1<<20, 9)
	old := seedSource
	dir := filepath.Join("testdata", "seeds")
	os.MkdirAll(dir, 0o755)
	for name, cfg := range map[string]BuildConfig{
		"xz":    {Compression: ReplaceXZ},
		"zstd":  {Compression: ReplaceZstd},
		"delta": {Compression: ReplaceXZ, Source: bytes.NewReader(old), SourceSize: int64(len(old)), SourceVersion: "1.2.2"},
	} {
		p := buildSigned(t, img, cfg)
		e, err := ReadEnvelope(bytes.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		head := p[:min(len(p), int(e.DataStart())+256)]
		os.WriteFile(filepath.Join(dir, name+".bin"), head, 0o644)
		os.WriteFile(filepath.Join(dir, name+".manifest"), e.ManifestBytes, 0o644)
	}
}

func FuzzParseHeader(f *testing.F) {
	seedFiles(f, "*.bin")
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < HeaderSize {
			return
		}
		h, err := ParseHeader(b[:HeaderSize])
		if err != nil {
			return
		}
		out, _ := h.MarshalBinary()
		if !bytes.Equal(out, b[:HeaderSize]) {
			t.Fatalf("header does not round-trip")
		}
		if h.ManifestLength > MaxManifestSize || h.SignatureSection > MaxSignatureSection {
			t.Fatal("bounds not enforced")
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	seedFiles(f, "*.manifest")
	f.Fuzz(func(t *testing.T, b []byte) {
		// Every input is tried as both formats: a full payload's and a delta's.
		for _, version := range []uint32{FormatVersion, FormatVersionDelta} {
			m, err := ParseManifestVersion(version, b)
			if err != nil {
				continue
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("parsed manifest fails validation: %v", err)
			}
			if m.FormatVersion() != version {
				t.Fatalf("format %d manifest parsed as format %d", m.FormatVersion(), version)
			}
			out, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, b) {
				t.Fatal("manifest does not round-trip")
			}
			if m.DataSize() > m.PartitionSize {
				t.Fatal("data section larger than the partition")
			}
			for i, op := range m.Operations {
				var src uint64
				for _, e := range op.Src {
					src += e.Count * uint64(m.BlockSize)
				}
				if m.Source != nil && (src > MaxSourceRead || (op.Type == SourceZstd && uint64(m.OpSize(i)) > MaxPatchSize)) {
					t.Fatalf("operation %d: delta bounds not enforced", i)
				}
			}
		}
	})
}

// fuzzSource is the source partition of FuzzSourceZstd: 64 KiB of image-like bytes.
var fuzzSource = testImage(64<<10, 21)

// FuzzSourceZstd feeds arbitrary bytes to the SOURCE_ZSTD decoder as the data of an
// operation that writes a 64 KiB partition against fuzzSource (the data and source hashes
// in the manifest match, so the bytes reach the decoder). Applying either fails or writes
// exactly the manifest's partition. Seeds: real patches of edited copies of fuzzSource.
func FuzzSourceZstd(f *testing.F) {
	for _, edit := range []func([]byte){
		func(b []byte) {},
		func(b []byte) { copy(b[1000:], "edited") },
		func(b []byte) { copy(b[4096:], b[8192:20000]) },
	} {
		img := append([]byte(nil), fuzzSource...)
		edit(img)
		p, m := buildDeltaSigned(f, fuzzSource, img)
		e, _ := ReadEnvelope(bytes.NewReader(p))
		for _, op := range m.Operations {
			if op.Type == SourceZstd {
				f.Add(p[e.DataStart()+int64(op.DataOffset):][:op.DataLength])
			}
		}
	}
	src := Extent{0, uint64(len(fuzzSource) / 4096)}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > len(fuzzSource) {
			return
		}
		m := &Manifest{BlockSize: 4096, PartitionSize: uint64(len(fuzzSource)), Version: "2", Board: "b",
			Source: &Source{Size: uint64(len(fuzzSource)), SHA256: sha256.Sum256(fuzzSource), Version: "1"},
			Operations: []Operation{{Type: SourceZstd, Dst: []Extent{src}, Src: []Extent{src},
				DataLength: uint64(len(data)), SHA256: sha256.Sum256(data), SourceSHA256: sha256.Sum256(fuzzSource)}}}
		sink := NewHashingSink()
		v := &Verified{Manifest: m}
		err := v.Apply(context.Background(), bytes.NewReader(data), ApplyConfig{Target: sink, Source: bytes.NewReader(fuzzSource), Workers: 1})
		if _, n := sink.Sum(); uint64(n) > m.PartitionSize {
			t.Fatalf("%d bytes written to a %d-byte partition", n, m.PartitionSize)
		}
		if err != nil && !errors.Is(err, ErrDecompress) && !errors.Is(err, ErrPartitionHash) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

func FuzzReadPayload(f *testing.F) {
	seedFiles(f, "*.bin")
	priv, err := keys.NewPrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		f.Fatal(err)
	}
	signer, _ := keys.NewSigner(priv)
	v, _ := keys.NewVerifier(priv.Public())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		e, err := readRaw(r)
		if err != nil {
			return
		}
		// Re-sign whatever manifest bytes came in, so the fuzzer reaches the manifest
		// parser and the applier, not only the signature check.
		e.Signatures = nil
		if err := e.AddSignature(context.Background(), signer); err != nil {
			t.Fatal(err)
		}
		var p bytes.Buffer
		if err := e.WriteHead(&p); err != nil {
			t.Fatal(err)
		}
		p.Write(b[len(b)-r.Len():])
		// Whatever the bytes, applying either fails or produces the manifest's partition.
		sink := NewHashingSink()
		vm, err := Apply(context.Background(), &p, v, ApplyConfig{Target: sink, Workers: 2, Source: bytes.NewReader(seedSource)})
		if err == nil {
			if s, n := sink.Sum(); s != vm.Manifest.PartitionSHA256 || uint64(n) != vm.Manifest.PartitionSize {
				t.Fatal("Apply succeeded with a wrong result")
			}
		}
	})
}
