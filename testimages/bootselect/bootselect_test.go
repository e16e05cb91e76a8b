package bootselect

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

func image(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := layout.WriteFile(context.Background(), p, layout.Options{}, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func withDisk(t *testing.T, path string, fn func(d *blockdev.Disk)) {
	t.Helper()
	d, err := blockdev.Open(context.Background(), path, blockdev.Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fn(d)
}

func choose(t *testing.T, path string) (Choice, error) {
	t.Helper()
	var c Choice
	var err error
	withDisk(t, path, func(d *blockdev.Disk) { c, err = Choose(context.Background(), d) })
	return c, err
}

func apply(t *testing.T, path string, op func(*gpt.Table) error) {
	t.Helper()
	withDisk(t, path, func(d *blockdev.Disk) {
		if _, err := slots.Apply(context.Background(), d, op); err != nil {
			t.Fatal(err)
		}
	})
}

// cgptState asks Debian's cgpt, an independent reader, for a partition's P/T/S.
func cgptState(t *testing.T, path string, n int) string {
	t.Helper()
	bin, err := exec.LookPath("cgpt")
	if err != nil {
		return ""
	}
	var parts []string
	for _, f := range []string{"-P", "-T", "-S"} {
		out, err := exec.Command(bin, "show", "-i", string(rune('0'+n)), f, path).CombinedOutput()
		if err != nil {
			t.Fatalf("cgpt show: %v\n%s", err, out)
		}
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	return strings.Join(parts, "/")
}

func TestChooseSequence(t *testing.T) {
	if _, err := exec.LookPath("cgpt"); err != nil {
		t.Log("LOUD NOTE: cgpt is missing, so on-disk states are not cross-checked; run: apt-get install cgpt")
	}
	img := image(t)
	steps := []struct {
		name      string
		before    func(*gpt.Table) error
		partition int
		label     string
		tries     int
		cgptB     string // USR-B after the boot, as cgpt shows it
	}{
		{name: "fresh disk boots A", partition: 3, label: layout.LabelUSRA, cgptB: "0/0/0"},
		{name: "flipped B boots once", before: func(tb *gpt.Table) error { return slots.Flip(tb, 4) }, partition: 4, label: layout.LabelUSRB, cgptB: "2/0/0"},
		{name: "B without tries falls back to A", partition: 3, label: layout.LabelUSRA, cgptB: "2/0/0"},
		{name: "B marked good boots B", before: func(tb *gpt.Table) error { return slots.MarkGood(tb, 4) }, partition: 4, label: layout.LabelUSRB, cgptB: "2/0/1"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				apply(t, img, st.before)
			}
			c, err := choose(t, img)
			if err != nil {
				t.Fatal(err)
			}
			if c.Slot.Number != st.partition || c.Slot.Label != st.label || c.Tries != st.tries {
				t.Fatalf("chose %d %s tries %d, want %d %s tries %d", c.Slot.Number, c.Slot.Label, c.Tries, st.partition, st.label, st.tries)
			}
			if c.Root.Number != layout.NumRoot {
				t.Fatalf("ROOT is partition %d", c.Root.Number)
			}
			if got := cgptState(t, img, 4); got != "" && got != st.cgptB {
				t.Fatalf("cgpt shows USR-B as %s, want %s", got, st.cgptB)
			}
			want := "switchyard-boot: partition=" + string(rune('0'+st.partition)) + " label=" + st.label + " version=1.2.3"
			if got := c.Line("1.2.3"); got != want {
				t.Fatalf("Line = %q, want %q", got, want)
			}
		})
	}
}

func TestChooseNothingBootable(t *testing.T) {
	img := image(t)
	withDisk(t, img, func(d *blockdev.Disk) {
		tb, err := gpt.Read(context.Background(), d, d.Size(), d.SectorSize())
		if err != nil {
			t.Fatal(err)
		}
		// Raw attribute edits: slots refuses to brick a disk, which is the point here.
		if err := tb.SetAttributes(3, slots.State{Priority: 1}.Encode(0)); err != nil {
			t.Fatal(err)
		}
		if err := tb.Write(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	})
	before, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	c, err := choose(t, img)
	if !IsNoBootable(err) {
		t.Fatalf("err = %v, want ErrNoBootable", err)
	}
	if len(c.States) != 2 || !strings.Contains(Describe(c.States), "3/USR-A priority=1 tries=0 successful=0") {
		t.Fatalf("states %q", Describe(c.States))
	}
	after, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("a failed choice wrote to the disk")
	}
}

func TestChooseNoGPT(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blank.img")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := choose(t, p); err == nil || IsNoBootable(err) || !errors.Is(err, gpt.ErrNoProtectiveMBR) && !strings.Contains(err.Error(), "gpt") {
		t.Fatalf("err = %v, want a GPT error", err)
	}
}

func TestPartitionDevice(t *testing.T) {
	for _, tc := range []struct {
		disk string
		n    int
		want string
	}{
		{disk: "/dev/vda", n: 3, want: "/dev/vda3"},
		{disk: "/dev/nvme0n1", n: 9, want: "/dev/nvme0n1p9"},
		{disk: "/dev/mmcblk0", n: 4, want: "/dev/mmcblk0p4"},
	} {
		t.Run(tc.disk, func(t *testing.T) {
			if got := PartitionDevice(tc.disk, tc.n); got != tc.want {
				t.Fatalf("PartitionDevice = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestChooseRepairsDamagedPrimary damages the primary GPT header: gptprio.next still boots
// from the backup, and its write leaves both copies valid again, as GRUB's repair does.
func TestChooseRepairsDamagedPrimary(t *testing.T) {
	img := image(t)
	apply(t, img, func(tb *gpt.Table) error { return slots.Flip(tb, 4) })
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("garbage!"), 512+16); err != nil { // header CRC field and on
		t.Fatal(err)
	}
	f.Close()
	c, err := choose(t, img)
	if err != nil {
		t.Fatal(err)
	}
	if c.Slot.Number != 4 {
		t.Fatalf("chose %d, want 4 from the backup table", c.Slot.Number)
	}
	withDisk(t, img, func(d *blockdev.Disk) {
		tb, err := gpt.Read(context.Background(), d, d.Size(), d.SectorSize())
		if err != nil {
			t.Fatal(err)
		}
		if !tb.Clean() {
			t.Fatalf("table not clean after the boot: primary %v, backup %v", tb.PrimaryErr(), tb.BackupErr())
		}
		if s, _ := slots.Get(tb, 4); s.Tries != 0 {
			t.Fatalf("USR-B tries %d after the boot, want 0", s.Tries)
		}
	})
	if bin, err := exec.LookPath("sgdisk"); err == nil {
		if out, err := exec.Command(bin, "-v", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
			t.Fatalf("sgdisk -v: %v\n%s", err, out)
		}
	}
}
