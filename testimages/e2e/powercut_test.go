package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/testimages/qemu"
	"github.com/switchyard-os/switchyard/testimages/vmtest"
)

// gptTail is how much of the disk's end the flip watcher reads: the backup entry array (32
// sectors for 128 entries) and the backup header, the first things a GPT write changes.
const gptTail = 64 * 512

// TestPowerCut cuts the power twice in one update from v1 to v2:
//
//  1. at a random point of the payload write (the server sends the payload over a slow link
//     and counts it; the cut comes once a random 25–75% of it has gone out);
//  2. during the GPT flip: the host watches the disk image's backup GPT (written first by
//     gpt.Table.Write) and kills QEMU the moment it changes, before the primary copy is
//     written.
//
// After each cut the guest must boot v1 from USR-A, and the next attempt must carry on: the
// download resumes with an HTTP Range request, the whole update costs less than 1.2 times the
// payload, and the update completes on v2.
func TestPowerCut(t *testing.T) {
	env := vmtest.New(t)
	ctx := timeout(t, 8*time.Minute)
	w := newWorld(t, "e2e-powercut")
	v1 := w.guestOS(ctx, env, "1.0.0", releaseOpts{})
	v2 := w.guestOS(ctx, env, "2.0.0", releaseOpts{})
	w.publish("2.0.0", usr(ctx, t, env, v2))
	size := w.published["2.0.0"]
	disk := env.Disk(t, &v1, nil)
	m := machine{id: "e2e00000000000000000000000000003", group: "e2e-powercut"}

	// The link is slow (1 MiB/s) for the whole test: the cut needs time to land inside the
	// write, and on a fast link the bytes the server sends stop measuring what the guest read
	// (the guest's TCP window, several MiB, absorbs an abandoned response).
	w.rate.Store(1 << 20)

	// Cut 1: during the payload write.
	frac := 0.25 + rand.Float64()/2
	cutAt := int64(frac * float64(size))
	t.Logf("cut 1: after %d of %d payload bytes (%.0f%%)", cutAt, size, frac*100)
	vm := env.Start(t, disk, m.cmdline(), env.Forward(443, w.addr))
	expectBoot(ctx, t, vm, "3", "1.0.0")
	expectLog(ctx, t, vm, "payload manifest verified")
	waitFor(ctx, t, "the payload to reach the cut point", func() bool { return w.served.Load() >= cutAt })
	vm.Kill()
	first := w.served.Load()
	t.Logf("power cut after %d payload bytes sent", first)
	if first >= size {
		t.Fatalf("the whole payload (%d bytes) was sent before the cut", size)
	}
	if slices.ContainsFunc(vm.Lines(), func(l string) bool { return bytes.Contains([]byte(l), []byte("payload written and verified")) }) {
		t.Fatal("the payload write finished before the cut")
	}
	// The half-written partition cannot boot.
	judgeSlot(t, disk, layout.NumUSRB, slots.State{})
	judgeSlot(t, disk, layout.NumUSRA, slots.State{Priority: 1, Successful: true})

	// Cut 2: during the flip of the resumed attempt.
	before := readTail(t, disk)
	if err := vm.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	expectBoot(ctx, t, vm, "3", "1.0.0")
	resumed := expectLog(ctx, t, vm, "resuming the download")
	t.Logf("resumed: %s", resumed[0])
	if tail := readTail(t, disk); !bytes.Equal(tail, before) {
		t.Fatal("the backup GPT changed before the flip (boot or target preparation wrote new attributes)")
	}
	cut := cutOnChange(ctx, t, vm, disk, before)
	t.Logf("cut 2: the backup GPT changed, QEMU killed %v later", cut.Round(time.Microsecond))
	tb := readGPT(t, disk)
	if tb.Clean() {
		t.Logf("LOUD NOTE: the cut came after the whole flip was written (both GPT copies agree); the flip was not interrupted this run")
	} else {
		t.Logf("the cut interrupted the flip: primary %v, backup %v", tb.PrimaryErr(), tb.BackupErr())
	}
	// Whatever the cut left, one whole copy decides. The flip writes the backup first: while
	// the primary is valid it is the old table and USR-B is not bootable yet; a cut inside
	// the primary's own write (entries new, header old) leaves it invalid, and then the
	// backup, written whole before the primary was touched, is the new table.
	flipped := slot(t, disk, layout.NumUSRB).Tries == 1
	if !tb.Clean() && tb.PrimaryErr() == nil && flipped {
		t.Fatalf("an interrupted flip with the old primary intact reads as flipped")
	}
	if !tb.Clean() && tb.PrimaryErr() != nil && !flipped {
		t.Fatalf("a flip cut inside the primary's write does not read as the backup's new table: primary %v", tb.PrimaryErr())
	}
	if !flipped {
		// cgpt reads the primary copy too: USR-B is still the unbootable target.
		judgeSlot(t, disk, layout.NumUSRB, slots.State{})
	}

	if err := vm.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if flipped {
		// The flip reached the disk before the cut: the new version boots, as it must.
		expectBoot(ctx, t, vm, "4", "2.0.0")
	} else {
		expectBoot(ctx, t, vm, "3", "1.0.0")
		// The boot selector repaired the table from the primary.
		if tb := readGPT(t, disk); !tb.Clean() {
			t.Errorf("the GPT is not clean after the boot: primary %v, backup %v", tb.PrimaryErr(), tb.BackupErr())
		}
		// The next attempt completes: flip, reboot, v2.
		expectSelfReboot(ctx, t, vm)
		if err := vm.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		expectBoot(ctx, t, vm, "4", "2.0.0")
	}
	expectLog(ctx, t, vm, "update confirmed")
	waitFor(ctx, t, "the server to record the update complete", func() bool {
		i := w.instance(m.id)
		return i.Status == store.StatusComplete && i.Version == "2.0.0"
	})
	judgeSlot(t, disk, layout.NumUSRB, slots.State{Priority: 2, Successful: true})

	total := w.served.Load()
	ranges := w.rangeStarts()
	t.Logf("payload %d bytes: %d sent before cut 1, %d in total (%.2fx); Range requests from %v",
		size, first, total, float64(total)/float64(size), ranges)
	if !slices.ContainsFunc(ranges, func(s int64) bool { return s > 0 }) {
		t.Errorf("no Range request resumed the download (Range starts %v)", ranges)
	}
	if total < size*12/10 {
		return
	}
	if bug := unsyncedCheckpoint(vm.Lines()); bug != "" {
		// The daemon syncs the partition before each checkpoint; a resumed payload that
		// fails its partition hash means a checkpoint outran the data it covers.
		t.Errorf("the resumed payload failed its partition hash after a power cut (%s): a download "+
			"checkpoint was saved before the writes it covers were on the disk; %d bytes sent for a %d-byte payload",
			bug, total, size)
		return
	}
	t.Errorf("%d bytes sent for a %d-byte payload: the download was not resumed", total, size)
}

// unsyncedCheckpoint finds, in one boot of the console, a resumed payload that then failed
// its partition hash (error code 15), and returns that line.
func unsyncedCheckpoint(lines []string) string {
	resumed := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "=== qemu: boot "):
			resumed = false
		case strings.Contains(l, `msg="resuming the payload"`):
			resumed = true
		case resumed && strings.Contains(l, `msg="update failed"`) && strings.Contains(l, "code=15 ") &&
			strings.Contains(l, "partition hash mismatch"):
			return l[strings.Index(l, "msg="):]
		}
	}
	return ""
}

func readTail(t testing.TB, disk string) []byte {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, gptTail)
	if _, err := f.ReadAt(b, fi.Size()-gptTail); err != nil {
		t.Fatal(err)
	}
	return b
}

// cutOnChange polls the end of the disk image until it differs from before, then kills QEMU
// and returns how long after the change was seen the process was gone.
func cutOnChange(ctx context.Context, t testing.TB, vm *qemu.VM, disk string, before []byte) time.Duration {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	off := fi.Size() - gptTail
	b := make([]byte, gptTail)
	for {
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, before) {
			seen := time.Now()
			vm.Kill()
			return time.Since(seen)
		}
		if ctx.Err() != nil {
			t.Fatalf("waiting for the flip: %v; console tail:\n%s", ctx.Err(), vm.Tail(15))
		}
		time.Sleep(100 * time.Microsecond)
	}
}
