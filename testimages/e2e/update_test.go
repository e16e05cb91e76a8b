package e2e

import (
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/policy"
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
	ctx := timeout(t, 6*time.Minute)
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

// TestRollback: v2 runs from USR-A and installs a broken v3 (its application check fails).
// v3 boots once on USR-B, which spends its only try; the daemon's health checks fail, so it
// does not mark USR-B good. The machine is then power-cycled (what a hardware watchdog or an
// operator does to a host whose service is down): the boot selector falls back to v2 on USR-A,
// and the daemon reports the rollback (3/0, errorcode 44), which the server records. The
// group's policy halts the rollout at one failure: the server stops offering v3.
func TestRollback(t *testing.T) {
	env := vmtest.New(t)
	ctx := timeout(t, 6*time.Minute)
	w := newWorld(t, "e2e-rollback")
	v2 := w.guestOS(ctx, env, "2.0.0", releaseOpts{})
	v3 := w.guestOS(ctx, env, "3.0.0", releaseOpts{broken: true})
	w.publish("3.0.0", usr(ctx, t, env, v3))
	// One failed attempt of the last one halts the group's rollout.
	if _, err := w.admin.SetPolicy(ctx, store.FlatcarAppID, "e2e-rollback", policy.Policy{HaltFailures: 1, HaltOf: 1}, 0); err != nil {
		t.Fatal(err)
	}
	disk := env.Disk(t, &v2, nil)
	m := machine{id: "e2e00000000000000000000000000002", group: "e2e-rollback"}

	vm := env.Start(t, disk, m.cmdline(), env.Forward(443, w.addr))
	expectBoot(ctx, t, vm, "3", "2.0.0")
	expectSelfReboot(ctx, t, vm)
	judgeSlot(t, disk, layout.NumUSRB, slots.State{Priority: 2, Tries: 1})

	if err := vm.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	expectBoot(ctx, t, vm, "4", "3.0.0")
	expectLog(ctx, t, vm, "booted the new partition: running health checks")
	// The daemon ran the release's own check, which said why.
	if l := expectLog(ctx, t, vm, "health checks failed"); !regexp.MustCompile(`app-check: version 3\.0\.0 does not come up`).MatchString(l[0]) {
		t.Errorf("the health failure does not carry app-check's message: %s", l[0])
	}
	// The try is spent and nothing marked USR-B good: the next boot cannot choose it.
	judgeSlot(t, disk, layout.NumUSRB, slots.State{Priority: 2, Tries: 0})
	judgeSlot(t, disk, layout.NumUSRA, slots.State{Priority: 1, Successful: true})
	if got := w.events(m.id); slices.Contains(got, "3/2 prev=2.0.0") {
		t.Fatalf("the broken release was confirmed: events %v", got)
	}

	vm.Kill()
	if err := vm.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	expectBoot(ctx, t, vm, "3", "2.0.0")
	expectLog(ctx, t, vm, "the update did not stick")
	waitFor(ctx, t, "the server to record the rollback", func() bool {
		return slices.Contains(w.events(m.id), "3/0 code=44")
	})
	d, err := w.admin.GetInstance(ctx, m.id)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []store.Status
	for _, i := range d {
		for _, h := range i.History {
			statuses = append(statuses, h.Status)
		}
	}
	if !slices.Contains(statuses, store.StatusRolledBack) {
		t.Errorf("the instance's status history %v has no %s", statuses, store.StatusRolledBack)
	}
	if i := w.instance(m.id); i.Version != "2.0.0" {
		t.Errorf("the server sees version %s, want 2.0.0", i.Version)
	}
	judgeSlot(t, disk, layout.NumUSRA, slots.State{Priority: 1, Successful: true})

	// The rollback tripped the group's automatic halt: the server says so, and the guest's
	// next checks on v2 are answered noupdate although the channel still points at v3.
	g, err := w.admin.GetGroup(ctx, store.FlatcarAppID, "e2e-rollback")
	if err != nil {
		t.Fatal(err)
	}
	if !g.Halted() {
		t.Fatalf("the group's rollout is not halted after the rollback (policy %+v)", g.Policy)
	}
	t.Logf("rollout halted: %s", g.HaltReason)
	rs, err := w.admin.RolloutStatus(ctx, store.FlatcarAppID, "e2e-rollback", "3.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if rs.RolledBack != 1 || rs.Complete != 0 || rs.HaltReason == "" {
		t.Errorf("rollout status of 3.0.0: %+v, want one rollback, none complete, halted", rs)
	}
	expectLog(ctx, t, vm, "no update available")
	expectLog(ctx, t, vm, "no update available")
	evs := w.events(m.id)
	if i := slices.Index(evs, "3/0 code=44"); slices.Contains(evs[i+1:], "13/1") {
		t.Errorf("the halted rollout was offered again: events %v", evs)
	}
	judgeSlot(t, disk, layout.NumUSRB, slots.State{Priority: 2, Tries: 0})
}
