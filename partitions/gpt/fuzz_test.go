package gpt_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/gpttest"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzRead from seedImages")

// seedImages are small valid tables (4 entries, so one sector of entries) and damaged
// variants; testdata/fuzz/FuzzRead holds them, written by `go test -run TestWriteSeeds
// -write-seeds`.
func seedImages(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, ss := range []int{512, 4096} {
		sectors := uint64(24)
		l := gpt.Layout{SectorSize: ss, Sectors: sectors, DiskGUID: diskID, NumEntries: 4}
		first, last := l.UsableRange()
		l.Partitions = []gpt.NewPartition{
			{Number: 1, Type: usrType, ID: idA, FirstLBA: first, LastLBA: first + 3, Attributes: 0x0101 << 48, Name: "USR-A"},
			{Number: 2, Type: usrType, ID: idB, FirstLBA: first + 4, LastLBA: last, Attributes: 0x0032 << 48, Name: "USR-B"},
		}
		m := &gpttest.Mem{B: make([]byte, int(sectors)*ss), SectorSz: ss}
		if err := gpt.Create(context.Background(), m, l); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("valid-%d", ss)] = bytes.Clone(m.B)
		torn := bytes.Clone(m.B)
		torn[ss+50] ^= 0xff
		out[fmt.Sprintf("torn-primary-%d", ss)] = torn
		noBackup := bytes.Clone(m.B)
		clear(noBackup[len(noBackup)-ss:])
		out[fmt.Sprintf("no-backup-%d", ss)] = noBackup
		out[fmt.Sprintf("truncated-%d", ss)] = bytes.Clone(m.B[:len(m.B)/2])
	}
	return out
}

func TestWriteSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -write-seeds to regenerate testdata/fuzz/FuzzRead")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seedImages(t) {
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzRead feeds arbitrary images to Read at both sector sizes. Read must not panic; a
// table it accepts must survive Repair and an attribute Write, after which both copies are
// valid and agree, and sector 0 is unchanged.
func FuzzRead(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		for _, ss := range []int{512, 4096} {
			m := &gpttest.Mem{B: bytes.Clone(data), SectorSz: ss}
			tab, err := gpt.Read(context.Background(), m, m.Size(), ss)
			if err != nil {
				if tab != nil {
					t.Fatal("Read returned a table with an error")
				}
				continue
			}
			_ = tab.Header()
			es := tab.Entries()
			if err := tab.Repair(context.Background(), m); err != nil {
				continue // a valid copy whose twin cannot be placed; nothing to check
			}
			if len(es) > 0 {
				if err := tab.SetAttributes(es[0].Number, es[0].Attributes^1<<48); err != nil {
					t.Fatal(err)
				}
			}
			if err := tab.Write(context.Background(), m); err != nil {
				t.Fatalf("Write after a successful repair: %v", err)
			}
			again, err := gpt.Read(context.Background(), m, m.Size(), ss)
			if err != nil || !again.Clean() {
				t.Fatalf("re-read after Write: %v", err)
			}
			if !bytes.Equal(m.B[:512], data[:512]) {
				t.Fatal("sector 0 changed")
			}
		}
	})
}
