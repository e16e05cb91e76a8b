package layout_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/gpttest"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

func TestWriteFile(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(map[int]string{512: "512", 4096: "4096"}[ss], func(t *testing.T) {
			ctx := context.Background()
			img := filepath.Join(t.TempDir(), "disk.img")
			usr := bytes.Repeat([]byte("switchyard usr "), 50000) // 750 kB
			if err := layout.WriteFile(ctx, img, layout.Options{SectorSize: ss}, bytes.NewReader(usr)); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			tab, err := gpt.Read(ctx, bytes.NewReader(raw), int64(len(raw)), ss)
			if err != nil || !tab.Clean() {
				t.Fatalf("read: %v", err)
			}
			want := []struct {
				n     int
				label string
				typ   gpt.GUID
			}{
				{1, "EFI-SYSTEM", layout.TypeEFI()}, {2, "BIOS-BOOT", layout.TypeBIOS()}, {3, "USR-A", layout.TypeUSR()},
				{4, "USR-B", layout.TypeUSR()}, {6, "OEM", layout.TypeData()}, {7, "OEM-CONFIG", layout.TypeReserved()},
				{9, "ROOT", layout.TypeResize()},
			}
			es := tab.Entries()
			if len(es) != len(want) {
				t.Fatalf("%d partitions, want %d", len(es), len(want))
			}
			for i, w := range want {
				e := es[i]
				if e.Number != w.n || e.Name != w.label || e.Type != w.typ {
					t.Errorf("partition %d: %d %q %s; want %d %q %s", i, e.Number, e.Name, e.Type, w.n, w.label, w.typ)
				}
				if e.FirstLBA*uint64(ss)%layout.MiB != 0 {
					t.Errorf("%s starts at LBA %d, not 1 MiB aligned", e.Name, e.FirstLBA)
				}
			}
			a, _ := tab.Entry(3)
			b, _ := tab.Entry(4)
			if a.ID != layout.IDUSRA() || b.ID != layout.IDUSRB() {
				t.Errorf("USR GUIDs %s, %s", a.ID, b.ID)
			}
			if slots.Decode(a.Attributes) != (slots.State{Priority: 1, Successful: true}) || b.Attributes != 0 {
				t.Errorf("USR-A %#x, USR-B %#x", a.Attributes, b.Attributes)
			}
			if got := raw[a.FirstLBA*uint64(ss):][:len(usr)]; !bytes.Equal(got, usr) {
				t.Error("USR-A does not hold the filesystem image")
			}
			if n, err := layout.Find(tab, layout.LabelUSRB); err != nil || n != 4 {
				t.Errorf("Find(USR-B) = %d, %v", n, err)
			}
			if n, err := layout.Other(tab, 4); err != nil || n != 3 {
				t.Errorf("Other(4) = %d, %v", n, err)
			}
			if _, err := layout.Other(tab, 9); err == nil {
				t.Error("Other(9) succeeded")
			}
			if _, err := layout.Find(tab, "USR-C"); !errors.Is(err, layout.ErrNoSuchLabel) {
				t.Errorf("Find(USR-C) = %v", err)
			}
			disk := img
			if ss == 4096 {
				disk = gpttest.Loop(t, img, ss, false)
			}
			gpttest.SgdiskVerify(t, disk)
			for n, w := range map[int][3]int{3: {1, 0, 1}, 4: {0, 0, 0}} {
				if p, tr, s := gpttest.CgptState(t, disk, n); [3]int{p, tr, s} != w {
					t.Errorf("cgpt: partition %d is %d/%d/%d, want %v", n, p, tr, s, w)
				}
			}
		})
	}
}

func TestPlanRejects(t *testing.T) {
	tests := []struct {
		name string
		opts layout.Options
		msg  string
	}{
		{"sector size", layout.Options{SectorSize: 2048}, "sector size"},
		{"alignment", layout.Options{SectorSize: 4096, Align: 512}, "alignment"},
		{"unaligned size", layout.Options{Sizes: layout.Sizes{EFI: 1000, BIOS: 512, USR: 512, OEM: 512, OEMConfig: 512, Root: 512}}, "EFI-SYSTEM size 1000"},
		{"disk too small", layout.Options{DiskSize: 1 << 20}, "disk size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := layout.Plan(tc.opts); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Plan = %v, want %q", err, tc.msg)
			}
		})
	}
	// Production sizes plan a disk of Flatcar's shape without writing anything.
	specs, sectors, err := layout.Plan(layout.Options{Sizes: layout.Production()})
	if err != nil {
		t.Fatal(err)
	}
	if usr := specs[2]; usr.LastLBA-usr.FirstLBA+1 != layout.GiB/512 || sectors < 4*layout.GiB/512 {
		t.Fatalf("production USR-A %d sectors, disk %d", usr.LastLBA-usr.FirstLBA+1, sectors)
	}
}

func TestUSRImageTooLarge(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, []byte("previous contents"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := layout.WriteFile(context.Background(), img, layout.Options{}, bytes.NewReader(make([]byte, layout.Small().USR+1)))
	if !errors.Is(err, layout.ErrTooLarge) || !strings.Contains(err.Error(), "USR-A") {
		t.Fatalf("WriteFile = %v, want ErrTooLarge", err)
	}
	if b, _ := os.ReadFile(img); string(b) != "previous contents" {
		t.Fatal("a failed WriteFile replaced the file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("a failed WriteFile left %d files", len(ents))
	}
}
