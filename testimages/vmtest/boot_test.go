package vmtest

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/testimages/image"
	"github.com/switchyard-os/switchyard/testimages/qemu"
)

var bootLine = regexp.MustCompile(`^switchyard-boot: partition=(\d+) label=(\S+) version=(\S+)$`)

// slotOp applies a slots operation to the disk image from the host side, as the update engine
// would on the device.
func slotOp(t *testing.T, disk string, op func(*gpt.Table) error) []slots.Slot {
	t.Helper()
	ctx := context.Background()
	d, err := blockdev.Open(ctx, disk, blockdev.Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tb, err := slots.Apply(ctx, d, op)
	if err != nil {
		t.Fatal(err)
	}
	return slots.List(tb)
}

func state(t *testing.T, disk string, n int) slots.State {
	t.Helper()
	for _, s := range slotOp(t, disk, func(*gpt.Table) error { return nil }) {
		if s.Number == n {
			return s.State
		}
	}
	t.Fatalf("no slot %d", n)
	return slots.State{}
}

// TestBoot boots a disk with 1.0.0 on USR-A and 2.0.0 on USR-B three times: the fresh disk
// boots A; after the host flips B (tries 1) it boots B and the try is consumed on disk; with
// B at tries 0 and not successful the next boot falls back to A.
func TestBoot(t *testing.T) {
	env := newEnv(t)
	disk := env.Disk(t, &image.OS{Version: "1.0.0"}, &image.OS{Version: "2.0.0"})

	boots := []struct {
		name      string
		before    func(*gpt.Table) error
		partition string
		version   string
		after     map[int]slots.State
	}{
		{
			name: "fresh disk boots A", partition: "3", version: "1.0.0",
			after: map[int]slots.State{3: {Priority: 1, Successful: true}, 4: {}},
		},
		{
			name:      "flipped B boots once",
			before:    func(tb *gpt.Table) error { return slots.Flip(tb, layout.NumUSRB) },
			partition: "4", version: "2.0.0",
			after: map[int]slots.State{3: {Priority: 1, Successful: true}, 4: {Priority: 2, Tries: 0}},
		},
		{
			name: "B without tries falls back to A", partition: "3", version: "1.0.0",
			after: map[int]slots.State{3: {Priority: 1, Successful: true}, 4: {Priority: 2, Tries: 0}},
		},
	}
	var vm *qemu.VM
	for _, b := range boots {
		t.Run(b.name, func(t *testing.T) {
			if b.before != nil {
				slotOp(t, disk, b.before)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			start := time.Now()
			if vm == nil {
				vm = env.Start(t, disk, nil)
			} else if err := vm.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			v := vm
			m, err := v.Expect(ctx, bootLine)
			if err != nil {
				t.Fatal(err)
			}
			if m[1] != b.partition || m[3] != b.version {
				t.Fatalf("booted partition %s version %s, want %s %s", m[1], m[3], b.partition, b.version)
			}
			if _, err := v.Expect(ctx, regexp.MustCompile(`^switchyard-testos: up version=`+regexp.QuoteMeta(b.version)+` partition=`+b.partition+`$`)); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Expect(ctx, regexp.MustCompile(`^switchyard-testos: service sy-health exited code=0$`)); err != nil {
				t.Fatal(err)
			}
			ran, err := v.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("boot to power-off took %v (QEMU process %v, kvm=%v)", time.Since(start).Round(time.Millisecond), ran.Round(time.Millisecond), env.KVM)
			for n, want := range b.after {
				if got := state(t, disk, n); got != want {
					t.Fatalf("after the boot partition %d is %v, want %v", n, got, want)
				}
				if got := cgptShow(t, disk, n); got != "" && got != want {
					t.Fatalf("cgpt shows partition %d as %v, want %v", n, got, want)
				}
			}
		})
		if t.Failed() {
			return
		}
	}
}

// cgptShow reads a slot's state with Debian's cgpt, an independent judge; it returns the zero
// State and logs loudly when cgpt is missing.
func cgptShow(t *testing.T, disk string, n int) any {
	t.Helper()
	bin, err := exec.LookPath("cgpt")
	if err != nil {
		t.Log("LOUD NOTE: cgpt is missing; GPT states are not cross-checked (run: apt-get install cgpt)")
		return ""
	}
	var v [3]int
	for i, f := range []string{"-P", "-T", "-S"} {
		out, err := exec.Command(bin, "show", "-i", strconv.Itoa(n), f, disk).CombinedOutput()
		if err != nil {
			t.Fatalf("cgpt show: %v\n%s", err, out)
		}
		if v[i], err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil {
			t.Fatalf("cgpt show %s: %q", f, out)
		}
	}
	return slots.State{Priority: v[0], Tries: v[1], Successful: v[2] == 1}
}

// TestNoBootablePartition boots a disk on which neither USR partition may boot: the boot
// selector must say so on the console and power the machine off, and write nothing.
func TestNoBootablePartition(t *testing.T) {
	env := newEnv(t)
	disk := env.Disk(t, &image.OS{Version: "1.0.0"}, &image.OS{Version: "2.0.0"})
	ctx := context.Background()
	d, err := blockdev.Open(ctx, disk, blockdev.Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := gpt.Read(ctx, d, d.Size(), d.SectorSize())
	if err != nil {
		t.Fatal(err)
	}
	// Raw attributes: slots refuses to leave a disk unbootable, which is the case under test.
	if err := tb.SetAttributes(layout.NumUSRA, slots.State{Priority: 1}.Encode(0)); err != nil {
		t.Fatal(err)
	}
	if err := tb.Write(ctx, d); err != nil {
		t.Fatal(err)
	}
	d.Close()

	tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	vm := env.Start(t, disk, nil)
	if _, err := vm.Expect(tctx, regexp.MustCompile(`^switchyard-boot: NO BOOTABLE USR PARTITION on /dev/vda \(3/USR-A priority=1 tries=0 successful=0; 4/USR-B priority=0 tries=0 successful=0\); powering off$`)); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Wait(tctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range vm.Lines() {
		if bootLine.MatchString(l) {
			t.Fatalf("a partition booted: %s", l)
		}
	}
	if got := state(t, disk, layout.NumUSRA); got != (slots.State{Priority: 1}) {
		t.Fatalf("USR-A is now %v", got)
	}
}
