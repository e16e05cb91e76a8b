package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	sytuf "github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/switchyard-os/switchyard/update-engine/disk"
)

// nearImage is src with a few bytes changed in its second and fifth chunks: a point
// release, whose other chunks a delta copies from the source.
func nearImage(src []byte, chunk int64) []byte {
	b := bytes.Clone(src)
	for _, off := range []int64{chunk + 100, 4*chunk + 5000} {
		copy(b[off:], "a changed file in the new release")
	}
	return b
}

// publishDelta builds a delta payload from USR-A's image to the release's, signs it with
// the payload key, pins it in TUF as its own target (source_version fromVersion, beside the
// full payload's) and uploads it for the release with the new targets metadata.
func (w *world) publishDelta(usrSize, chunk int64) []byte {
	t, ctx := w.t, context.Background()
	src := usrImage(int(usrSize), 7)
	pp := filepath.Join(w.dir, "delta.sy")
	f, err := os.Create(pp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := payload.Build(ctx, bytes.NewReader(w.image), int64(len(w.image)), f, payload.BuildConfig{Version: toVersion, Board: board,
		ChunkSize: chunk, TempDir: t.TempDir(), Source: bytes.NewReader(src), SourceSize: int64(len(src)), SourceVersion: fromVersion})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	ps, err := keys.NewSigner(w.payKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.SignFile(ctx, pp, ps); err != nil {
		t.Fatal(err)
	}
	delta, err := os.ReadFile(pp)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tufRepo.AddTarget(board+"/"+toVersion+"/delta-"+fromVersion+".sy", repo.Target{Length: int64(len(delta)), SHA256: sha256.Sum256(delta),
		Custom: sytuf.Custom{Version: toVersion, Board: board, Channels: []string{"stable"}, ReleaseCounter: 4001,
			PartitionSize: int64(m.PartitionSize), PartitionSHA256: hex.EncodeToString(m.PartitionSHA256[:]),
			Extra: map[string]any{sytuf.FieldSourceVersion: fromVersion}}}); err != nil {
		t.Fatal(err)
	}
	targets, err := w.tufRepo.SignTargets(sytuf.Expiry(w.tufNow, sytuf.DefaultTargetsExpiry), w.targetsSigner)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(w.admin.UploadDelta(ctx, store.FlatcarAppID, board, toVersion, adminapi.DeltaMetadata{SourceVersion: fromVersion,
		FileName: "delta-" + fromVersion + ".sy", Size: int64(len(delta))}, targets, bytes.NewReader(delta)))
	return delta
}

// TestDeltaEndToEnd runs update-engine against a real omaha-server that holds a release
// with a delta payload from the host's version, pinned in TUF beside the full payload:
//   - the host downloads only the delta, applies it from USR-A (read-only) and flips;
//   - with one source block flipped on USR-A, the delta is refused before USR-B gets a
//     byte, 3/0 with code 1001 is reported, and in the same run the host checks in again,
//     gets the full payload and updates.
func TestDeltaEndToEnd(t *testing.T) {
	const usrSize, chunk = 2 << 20, 128 << 10
	setup := func(t *testing.T) (*world, []byte) {
		w := newWorld(t, worldOptions{usrSize: usrSize, chunk: chunk, nearSource: true})
		delta := w.publishDelta(usrSize, chunk)
		if len(delta)*4 > len(w.payload) {
			t.Fatalf("the delta is %d bytes, the full payload %d", len(delta), len(w.payload))
		}
		return w, delta
	}
	t.Run("delta applies", func(t *testing.T) {
		w, delta := setup(t)
		activeBefore := w.activeBytes()
		out, err := w.engine(t.Context(), w.conf(fromVersion, "USR-A"), "-once")
		if err != nil || !strings.Contains(out, "updated to "+toVersion+" on USR-B") {
			t.Fatalf("-once: %q, %v", out, err)
		}
		if got := w.events(); !reflect.DeepEqual(got, []string{"13/1", "14/1", "3/1"}) {
			t.Errorf("events %v", got)
		}
		if got := w.partitionB(); !bytes.Equal(got[:len(w.image)], w.image) {
			t.Fatal("USR-B does not hold the new image")
		}
		if w.activeBytes() != activeBefore {
			t.Fatal("the active partition changed")
		}
		if b := w.slot(layout.NumUSRB); b.Priority != 2 || b.Tries != 1 {
			t.Errorf("USR-B after the flip: %+v", b)
		}
		if served := w.served.Load(); served > int64(len(delta))+64<<10 {
			t.Errorf("the server sent %d payload bytes for a %d-byte delta (full payload %d)", served, len(delta), len(w.payload))
		}
	})
	t.Run("flipped source block falls back to the full payload", func(t *testing.T) {
		w, _ := setup(t)
		// Flip a byte of USR-A in the last chunk, which the delta copies from the source.
		d := &disk.Disk{Path: w.diskPath, Active: "USR-B"}
		win, err := d.OpenTarget(t.Context(), layout.NumUSRA)
		if err != nil {
			t.Fatal(err)
		}
		one := make([]byte, 1)
		win.ReadAt(one, usrSize-chunk+4096)
		one[0] ^= 0xff
		if _, err := win.WriteAt(one, usrSize-chunk+4096); err != nil {
			t.Fatal(err)
		}
		win.Close()
		activeBefore := w.activeBytes()
		out, err := w.engine(t.Context(), w.conf(fromVersion, "USR-A"), "-once")
		if err != nil || !strings.Contains(out, "updated to "+toVersion+" on USR-B") {
			t.Fatalf("-once: %q, %v", out, err)
		}
		if got, want := w.events(), []string{"13/1", "3/0 code=1001", "13/1", "14/1", "3/1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		if got := w.partitionB(); !bytes.Equal(got[:len(w.image)], w.image) {
			t.Fatal("USR-B does not hold the new image")
		}
		if w.activeBytes() != activeBefore {
			t.Fatal("the active partition changed")
		}
		if served := w.served.Load(); served < int64(len(w.payload)) {
			t.Errorf("the server sent %d payload bytes, less than the full payload's %d", served, len(w.payload))
		}
	})
}
