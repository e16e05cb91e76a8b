package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

func image(t *testing.T, sectorSize int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	usrA := bytes.Repeat([]byte("USR-A contents "), 1<<14)
	if err := layout.WriteFile(context.Background(), p, layout.Options{SectorSize: sectorSize}, bytes.NewReader(usrA)); err != nil {
		t.Fatal(err)
	}
	return p
}

func partitionRange(t *testing.T, path string, n int) (int64, int64) {
	t.Helper()
	d := &Disk{Path: path, Active: "USR-A"}
	tb, bd, err := d.table(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	e, err := tb.Entry(n)
	if err != nil {
		t.Fatal(err)
	}
	ss := int64(tb.SectorSize())
	return int64(e.FirstLBA) * ss, int64(e.LastLBA-e.FirstLBA+1) * ss
}

// outside returns the SHA-256 of every byte of the image outside [off, off+size).
func outside(t *testing.T, path string, off, size int64) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write(b[:off])
	h.Write(b[off+size:])
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestCycleOnImage(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(map[int]string{512: "512", 4096: "4096"}[ss], func(t *testing.T) {
			ctx := t.Context()
			path := image(t, ss)
			d := &Disk{Path: path, Active: "USR-A"}
			a, b, err := d.Slots(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if a.Number != layout.NumUSRA || b.Number != layout.NumUSRB || !a.Successful || a.Priority != 1 {
				t.Fatalf("slots %+v %+v", a, b)
			}
			if err := d.Prepare(ctx, a.Number); err == nil {
				t.Error("Prepare of the active partition succeeded")
			}
			if err := d.Prepare(ctx, b.Number); err != nil {
				t.Fatal(err)
			}
			off, size := partitionRange(t, path, b.Number)
			before := outside(t, path, off, size)

			w, err := d.OpenTarget(ctx, b.Number)
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != size {
				t.Errorf("window size %d, partition %d", w.Size(), size)
			}
			fill := bytes.Repeat([]byte{0xAB}, int(size))
			if _, err := w.WriteAt(fill, 0); err != nil {
				t.Fatal(err)
			}
			for _, bad := range []struct{ n, off int64 }{{1, size}, {2, size - 1}, {1, -1}, {size + 1, 0}} {
				if _, err := w.WriteAt(make([]byte, bad.n), bad.off); !errors.Is(err, ErrOutOfRange) {
					t.Errorf("WriteAt(%d bytes at %d) = %v, want ErrOutOfRange", bad.n, bad.off, err)
				}
			}
			got := make([]byte, 16)
			if n, err := w.ReadAt(got, size-8); n != 8 {
				t.Errorf("ReadAt at the end: %d, %v", n, err)
			}
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			// Only the target's bytes changed (the GPT too: Prepare happened before).
			if after := outside(t, path, off, size); after != before {
				t.Fatal("bytes outside the target partition changed")
			}
			if _, err := d.OpenTarget(ctx, a.Number); err == nil {
				t.Error("OpenTarget of the active partition succeeded")
			}

			if err := d.Flip(ctx, b.Number); err != nil {
				t.Fatal(err)
			}
			_, b2, _ := d.Slots(ctx)
			if b2.Tries != 1 || b2.Successful || b2.Priority <= a.Priority {
				t.Errorf("after flip: %+v", b2)
			}
			// Boot (gptprio.next), then the new partition is the active one.
			bootNext(t, path)
			d2 := &Disk{Path: path, Active: "4"}
			a3, b3, err := d2.Slots(ctx)
			if err != nil || a3.Number != 4 || a3.Tries != 0 {
				t.Fatalf("after boot: %+v %+v %v", a3, b3, err)
			}
			if err := d2.MarkGood(ctx, 4); err != nil {
				t.Fatal(err)
			}
			to, err := d2.Rollback(ctx, 4)
			if err != nil || to != 3 {
				t.Fatalf("Rollback = %d, %v", to, err)
			}
		})
	}
}

func bootNext(t *testing.T, path string) {
	t.Helper()
	d := &Disk{Path: path, Active: "USR-A"}
	bd, err := d.open(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	if _, err := slots.Apply(context.Background(), bd, func(tb *gpt.Table) error { _, err := slots.Next(tb); return err }); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	path := image(t, 512)
	if _, _, err := (&Disk{Path: path, Active: "USR-C"}).Slots(ctx); !errors.Is(err, ErrLayout) {
		t.Errorf("unknown active label: %v", err)
	}
	if _, _, err := (&Disk{Path: filepath.Join(t.TempDir(), "none.img"), Active: "USR-A"}).Slots(ctx); err == nil {
		t.Error("missing image accepted")
	}
	junk := filepath.Join(t.TempDir(), "junk.img")
	os.WriteFile(junk, make([]byte, 1<<20), 0o644)
	if _, _, err := (&Disk{Path: junk, Active: "USR-A"}).Slots(ctx); err == nil {
		t.Error("an image without a GPT accepted")
	}
	// Without a configured active partition, /usr must be on this disk (it is not here).
	if _, _, err := (&Disk{Path: path}).Slots(ctx); err == nil {
		t.Error("an image file without --active-partition accepted")
	}
}

// TestOpenSource: the active partition opens read-only and reads its own bytes; every
// write is refused and the image is unchanged; the target partition is not a source.
func TestOpenSource(t *testing.T) {
	ctx := t.Context()
	path := image(t, 512)
	d := &Disk{Path: path, Active: "USR-A"}
	if _, err := d.OpenSource(ctx, layout.NumUSRB); err == nil {
		t.Error("OpenSource of the target partition succeeded")
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.OpenSource(ctx, layout.NumUSRA)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	got := make([]byte, 30)
	if _, err := w.ReadAt(got, 0); err != nil || string(got) != "USR-A contents USR-A contents " {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := w.WriteAt([]byte("x"), 0); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("a write to the source: %v, want ErrOutOfRange", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("the image changed")
	}
}
