package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/etcdtest"
	"github.com/switchyard-os/switchyard/testimages/qemu"
	"github.com/switchyard-os/switchyard/testimages/vmtest"
)

// startEtcd runs a one-member etcd on free loopback ports and returns its client address.
func startEtcd(t testing.TB) netip.AddrPort {
	t.Helper()
	u, err := url.Parse(etcdtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	return netip.MustParseAddrPort(u.Host)
}

// holdersLog follows a group's holders prefix through an etcd watch: every change, in
// revision order, with the holder set after it.
type holdersLog struct {
	mu      sync.Mutex
	current map[string]bool
	max     int
	changes []string // "+id" or "-id", in order
	held    map[string][][2]int64
	since   map[string]int64
}

func watchHolders(ctx context.Context, t testing.TB, cli *clientv3.Client, prefix string) *holdersLog {
	t.Helper()
	h := &holdersLog{current: map[string]bool{}, held: map[string][][2]int64{}, since: map[string]int64{}}
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("%d holders before the test", len(resp.Kvs))
	}
	wc := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	go func() {
		for wr := range wc {
			h.mu.Lock()
			for _, ev := range wr.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), prefix)
				switch ev.Type {
				case clientv3.EventTypePut:
					if !h.current[id] {
						h.current[id] = true
						h.since[id] = ev.Kv.ModRevision
						h.changes = append(h.changes, "+"+id)
					}
				case clientv3.EventTypeDelete:
					if h.current[id] {
						delete(h.current, id)
						h.held[id] = append(h.held[id], [2]int64{h.since[id], ev.Kv.ModRevision})
						h.changes = append(h.changes, "-"+id)
					}
				}
				h.max = max(h.max, len(h.current))
			}
			h.mu.Unlock()
		}
	}()
	return h
}

func (h *holdersLog) snapshot() (changes []string, maxHolders int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.changes), h.max
}

// TestFleet: three guests of one group update from v1 to v2 under REBOOT_STRATEGY=etcd-lock
// with the group's semaphore at max 1, against an embedded etcd the guests reach through
// guestfwd. A watch on the holders prefix records every change: there is never more than one
// holder, each guest holds the slot (and nobody else does) at the moment it reboots, and it
// gives the slot back only after it has confirmed v2.
func TestFleet(t *testing.T) {
	env := vmtest.New(t)
	ctx := timeout(t, 12*time.Minute)
	const group = "e2e-fleet"
	w := newWorld(t, group)
	v1 := w.guestOS(ctx, env, "1.0.0", releaseOpts{})
	v2 := w.guestOS(ctx, env, "2.0.0", releaseOpts{})
	w.publish("2.0.0", usr(ctx, t, env, v2))

	etcd := startEtcd(t)
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{"http://" + etcd.String()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	sem, err := rebootlock.New(cli, group, rebootlock.Options{Logger: env.Log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sem.Close() })
	if _, err := sem.SetMax(ctx, 1); err != nil {
		t.Fatal(err)
	}
	prefix := rebootlock.DefaultPrefix + "/groups/" + group + "/holders/"
	log := watchHolders(ctx, t, cli, prefix)

	holders := func(t testing.TB) []string {
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			t.Error(err)
			return nil
		}
		var ids []string
		for _, kv := range resp.Kvs {
			ids = append(ids, strings.TrimPrefix(string(kv.Key), prefix))
		}
		return ids
	}

	// An operator holds the slot while the guests install v2, so that all three are ready to
	// reboot at once and compete for one slot when it is given back.
	const operator = "operator-maintenance"
	if err := sem.Lock(ctx, rebootlock.Holder{ID: operator, Hostname: "e2e", Via: "updatectl"}); err != nil {
		t.Fatal(err)
	}
	type guest struct {
		m    machine
		disk string
		vm   *qemu.VM
	}
	var guests []*guest
	start := time.Now()
	for i := 1; i <= 3; i++ {
		g := &guest{m: machine{id: fmt.Sprintf("e2e0000000000000000000000000f%03d", i), group: group, conf: []string{
			"REBOOT_STRATEGY=etcd-lock",
			"LOCKSMITHD_ENDPOINT=http://" + guestName + ":2379",
			"LOCKSMITHD_GROUP=" + group,
		}}}
		g.disk = env.Disk(t, &v1, nil)
		g.vm = env.StartNamed(t, fmt.Sprintf("%s_guest%d", t.Name(), i), g.disk, g.m.cmdline(), env.Forward(443, w.addr), env.Forward(2379, etcd))
		guests = append(guests, g)
	}
	for _, g := range guests {
		expectBoot(ctx, t, g.vm, "3", "1.0.0")
		expectLog(ctx, t, g.vm, "update applied: waiting for the reboot window and lock")
	}
	t.Logf("the three guests installed v2 in %v and wait for the slot", time.Since(start).Round(time.Second))
	if got := holders(t); !slices.Equal(got, []string{operator}) {
		t.Fatalf("holders while the operator holds the slot: %v", got)
	}
	exited := make(chan int, len(guests))
	for i, g := range guests {
		go func() {
			g.vm.Wait(ctx)
			exited <- i
		}()
	}
	if err := sem.Unlock(ctx, operator); err != nil {
		t.Fatal(err)
	}

	var rebooted []string // machine ids in the order their guests rebooted
	for range guests {
		var i int
		select {
		case i = <-exited:
		case <-ctx.Done():
			t.Fatalf("waiting for a guest to reboot: %v", ctx.Err())
		}
		g := guests[i]
		// QEMU is gone: the guest rebooted itself, and it holds the slot alone.
		if got := holders(t); !slices.Equal(got, []string{g.m.id}) {
			t.Errorf("holders when %s rebooted: %v, want only it", g.m.id, got)
		}
		if !slices.Contains(g.vm.Lines(), "switchyard-testos: reboot") {
			t.Fatalf("guest %s stopped without rebooting itself; console tail:\n%s", g.m.id, g.vm.Tail(15))
		}
		rebooted = append(rebooted, g.m.id)
		judgeSlot(t, g.disk, layout.NumUSRB, slots.State{Priority: 2, Tries: 1})
		if err := g.vm.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		expectBoot(ctx, t, g.vm, "4", "2.0.0")
		expectLog(ctx, t, g.vm, "update confirmed")
		waitFor(ctx, t, g.m.id+" to give the slot back", func() bool { return !slices.Contains(holders(t), g.m.id) })
		if i := w.instance(g.m.id); i.Status != store.StatusComplete || i.Version != "2.0.0" {
			t.Errorf("the server has %s at %s %s, want complete 2.0.0", g.m.id, i.Version, i.Status)
		}
	}
	t.Logf("three guests updated in %v", time.Since(start).Round(time.Second))

	// Let the watch catch up with the last release.
	waitFor(ctx, t, "the watch to see every release", func() bool {
		ch, _ := log.snapshot()
		return len(ch) >= 8
	})
	changes, maxHolders := log.snapshot()
	t.Logf("holder changes in revision order: %v; reboots: %v", changes, rebooted)
	if maxHolders != 1 {
		t.Errorf("at most %d holders at once, want 1", maxHolders)
	}
	// One at a time: take, give back, take, give back …, in the order the guests rebooted.
	want := []string{"+" + operator, "-" + operator}
	for _, id := range rebooted {
		want = append(want, "+"+id, "-"+id)
	}
	if !slices.Equal(changes, want) {
		t.Errorf("holder changes %v, want %v (each guest takes and releases the slot before the next)", changes, want)
	}
	ids := slices.Clone(rebooted)
	sort.Strings(ids)
	if len(slices.Compact(ids)) != 3 {
		t.Errorf("reboots %v, want each of the three guests once", rebooted)
	}
}
