package install

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	"github.com/switchyard-os/switchyard/update-engine/disk"
	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// buildDelta builds a signed delta payload from source to image (chunks identical at the
// same offset become SOURCE_COPY).
func buildDelta(t *testing.T, source, image []byte, chunk int64, key *keys.PrivateKey) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "delta.sy")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payload.Build(t.Context(), bytes.NewReader(image), int64(len(image)), out, payload.BuildConfig{
		Version: "4001.0.0", Board: "amd64-usr", ChunkSize: chunk, TempDir: t.TempDir(),
		Source: bytes.NewReader(source), SourceSize: int64(len(source)), SourceVersion: "4000.0.0",
	}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	s, err := keys.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.SignFile(t.Context(), p, s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writePartition overwrites partition n of the fixture's image with b at off.
func (f *fixture) writePartition(t *testing.T, n int, b []byte, off int64) {
	t.Helper()
	d := &disk.Disk{Path: f.diskPath, Active: map[int]string{3: "USR-B", 4: "USR-A"}[n]}
	w, err := d.OpenTarget(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestInstallDelta: a delta payload applies with the active partition (USR-A holds the
// source) read-only as its source and produces the new image. With one source block
// flipped — in the last chunk, which the delta copies from the source — the install fails
// with code 1001 (sourceMismatch) before it writes a byte: the target keeps its old
// contents, although earlier operations did not read the flipped block.
func TestInstallDelta(t *testing.T) {
	const size, chunk = 1 << 20, 128 << 10
	f := newFixture(t, size, chunk)
	source := usrImage(size, 1) // what newFixture put on USR-A
	image := bytes.Clone(source)
	rand.Read(image[2*chunk : 2*chunk+100])
	rand.Read(image[5*chunk+7 : 5*chunk+9000])
	delta := buildDelta(t, source, image, chunk, f.key)
	if len(delta) >= len(f.payload)/2 {
		t.Fatalf("delta is %d bytes, the full payload %d: not a delta", len(delta), len(f.payload))
	}
	sum := sha256.Sum256(delta)
	srv := serve(t, delta, 0, 0)
	job := func() *engine.Job {
		j := f.job(srv.URL, nil, nil)
		j.Offer.Package = omaha.Package{Name: "delta.sy", Size: uint64(len(delta))}
		j.Offer.SHA256, j.Offer.IsDeltaPayload = sum[:], true
		j.Target = engine.Target{Length: int64(len(delta)), SHA256: sum[:], Version: "4001.0.0", Board: "amd64-usr", SourceVersion: "4000.0.0"}
		j.Source = layout.NumUSRA
		return j
	}

	if err := f.installer(srv).Install(t.Context(), job()); err != nil {
		t.Fatal(err)
	}
	if got := f.partition(t, layout.NumUSRB); !bytes.Equal(got, image) {
		t.Fatal("the target differs from the new image")
	}
	if !bytes.Equal(f.partition(t, layout.NumUSRA), source) {
		t.Fatal("the active partition changed")
	}

	// A source block the delta copies (the last chunk is unchanged, so SOURCE_COPY) flipped.
	marker := bytes.Repeat([]byte{0x5a}, size)
	f.writePartition(t, layout.NumUSRB, marker, 0)
	flipped := bytes.Clone(source)
	flipped[7*chunk+4096] ^= 0xff
	f.writePartition(t, layout.NumUSRA, flipped[7*chunk:], 7*chunk)
	err := f.installer(srv).Install(t.Context(), job())
	if engine.CodeOf(err) != omaha.ErrorCodeDeltaSourceMismatch || !errors.Is(err, payload.ErrSourceHash) || !sourceMismatch(err) {
		t.Fatalf("install over a flipped source block: %v (code %d), want code %d", err, engine.CodeOf(err), omaha.ErrorCodeDeltaSourceMismatch)
	}
	if !bytes.Equal(f.partition(t, layout.NumUSRB), marker) {
		t.Fatal("the failed delta wrote to the target")
	}
	if !bytes.Equal(f.partition(t, layout.NumUSRA), flipped) {
		t.Fatal("the active partition changed")
	}
}
