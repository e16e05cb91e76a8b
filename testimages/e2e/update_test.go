package e2e

import (
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/testimages/vmtest"
)

// TestUpdate: v1 boots from USR-A, its update-engine installs v2 onto USR-B and reboots the
// guest itself; the guest comes back on USR-B running v2, the daemon's health checks pass, it
// marks USR-B good, and the server records 3/2 and the instance complete on v2.
func TestUpdate(t *testing.T) {
	env := vmtest.New(t)
	ctx := timeout(t, 10*time.Minute)
	w := newWorld(t, "e2e-update")
	v1 := w.guestOS(ctx, env, "1.0.0", releaseOpts{})
	v2 := w.guestOS(ctx, env, "2.0.0", releaseOpts{})
	w.publish("2.0.0", usr(ctx, t, env, v2))
	disk := env.Disk(t, &v1, nil)
	m := machine{id: "e2e00000000000000000000000000001", group: "e2e-update"}

	start := time.Now()
	vm := env.Start(t, disk, m.cmdline(), env.Forward(443, w.addr))
	expectBoot(ctx, t, vm, "3", "1.0.0")
	expectLog(ctx, t, vm, "update-engine started")
	expectSelfReboot(ctx, t, vm)
	t.Logf("v1 boot, install of v2 and reboot took %v", time.Since(start).Round(time.Second))
	// The flip, as the boot loader will find it: USR-B tries 1 above USR-A.
	judgeSlot(t, disk, layout.NumUSRB, slots.State{Priority: 2, Tries: 1})
	judgeSlot(t, disk, layout.NumUSRA, slots.State{Priority: 1, Successful: true})
	if got := w.events(m.id); !reflect.DeepEqual(got, []string{"13/1", "14/1", "3/1"}) {
		t.Errorf("events before the reboot %v, want 13/1 14/1 3/1", got)
	}

	if err := vm.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	expectBoot(ctx, t, vm, "4", "2.0.0")
	expectLog(ctx, t, vm, "update confirmed")
	waitFor(ctx, t, "the server to record the update complete", func() bool {
		i := w.instance(m.id)
		return i.Status == store.StatusComplete && i.Version == "2.0.0"
	})
	t.Logf("whole update took %v", time.Since(start).Round(time.Second))
	if got := w.events(m.id); len(got) == 0 || got[len(got)-1] != "3/2 prev=1.0.0" {
		t.Errorf("events %v, want the last to be 3/2 prev=1.0.0", got)
	}
	judgeSlot(t, disk, layout.NumUSRB, slots.State{Priority: 2, Successful: true})
	judgeSlot(t, disk, layout.NumUSRA, slots.State{Priority: 1, Successful: true})
	// The payload went over the wire once.
	if got, size := w.served.Load(), w.published["2.0.0"]; got != size {
		t.Errorf("the server sent %d payload bytes for a %d-byte payload", got, size)
	}
	if r := w.rangeStarts(); len(r) != 0 {
		t.Errorf("Range requests %v in an uninterrupted update", r)
	}
	// Up to date: later checks get noupdate and the daemon stays idle on v2.
	expectLog(ctx, t, vm, "no update available")
	if n := vm.Boots(); n != 2 {
		t.Errorf("the guest booted %d times, want 2", n)
	}
}
