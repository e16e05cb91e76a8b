package payload

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/signing/keys"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/seeds from a freshly built payload")

// Seeds: testdata/seeds/*.bin are payload heads (header, manifest, signatures and a little
// data) written by TestWriteSeeds with -update-seeds from small built payloads (xz, zstd,
// delta with SOURCE_COPY). testdata/seeds/*.manifest are their bare manifests.

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

func TestWriteSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/seeds")
	}
	img := testImage(1<<20, 9)
	old := testImage(1<<20, 10)
	copy(old, img[:512<<10])
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
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest fails validation: %v", err)
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
		vm, err := Apply(context.Background(), &p, v, ApplyConfig{Target: sink, Workers: 2})
		if err == nil {
			if s, n := sink.Sum(); s != vm.Manifest.PartitionSHA256 || uint64(n) != vm.Manifest.PartitionSize {
				t.Fatal("Apply succeeded with a wrong result")
			}
		}
	})
}
