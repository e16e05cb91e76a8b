package rebootlock_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchyard-os/switchyard/rebootlock"
)

func TestLockUnlockIdempotent(t *testing.T) {
	c := startCluster(t, 1, nil)
	cli := c.client(t, rebootlock.EtcdConfig{})
	s := newSem(t, cli, "default", rebootlock.Options{})
	ctx := ctxT(t, 30*time.Second)

	h := rebootlock.Holder{ID: "m1", Hostname: "host1", BootID: "b1", FromVersion: "1.0", ToVersion: "1.1"}
	if err := s.TryLock(ctx, h); err != nil {
		t.Fatalf("first lock: %v", err)
	}
	if err := s.TryLock(ctx, h); err != nil {
		t.Fatalf("second lock of the same holder must succeed: %v", err)
	}
	if err := s.Lock(ctx, h); err != nil {
		t.Fatalf("waiting lock of an existing holder must return at once: %v", err)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Holders) != 1 || st.Holders[0].ID != "m1" || st.Holders[0].Hostname != "host1" ||
		st.Holders[0].ToVersion != "1.1" || !st.Holders[0].Alive || st.Holders[0].Stale || st.Max != 1 || st.MaxSet {
		t.Fatalf("status after lock: %+v", st)
	}
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "m2"}); !errors.Is(err, rebootlock.ErrFull) {
		t.Fatalf("second holder with max 1: got %v, want ErrFull", err)
	}
	for range 2 {
		if err := s.Unlock(ctx, "m1"); err != nil {
			t.Fatalf("unlock: %v", err)
		}
	}
	if err := s.Unlock(ctx, "never-held"); err != nil {
		t.Fatalf("unlock of a non-holder must succeed: %v", err)
	}
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "m2"}); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	c := startCluster(t, 1, nil)
	cli := c.client(t, rebootlock.EtcdConfig{})
	w := newWaits()
	s := newSem(t, cli, "g1", rebootlock.Options{Waiting: w.hook})
	ctx := ctxT(t, 30*time.Second)
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- s.Lock(ctx, rebootlock.Holder{ID: "b"}) }()
	w.await(t, got)
	if err := s.Unlock(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not get the freed slot")
	}
	// A cancelled wait returns the context's error and takes nothing.
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- s.Lock(cctx, rebootlock.Holder{ID: "c"}) }()
	w.await(t, got)
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if st, err := s.Status(ctx); err != nil || st.Holding("c") {
		t.Fatalf("after a cancelled wait: %+v, %v", st, err)
	}
}

func TestSetMax(t *testing.T) {
	c := startCluster(t, 1, nil)
	cli := c.client(t, rebootlock.EtcdConfig{})
	w := newWaits()
	s := newSem(t, cli, "g", rebootlock.Options{Waiting: w.hook})
	ctx := ctxT(t, 30*time.Second)

	for _, bad := range []int{0, -1} {
		if _, err := s.SetMax(ctx, bad); !errors.Is(err, rebootlock.ErrInvalidMax) {
			t.Errorf("SetMax(%d): %v, want ErrInvalidMax", bad, err)
		}
	}
	old, err := s.SetMax(ctx, 3)
	if err != nil || old != 1 {
		t.Fatalf("SetMax(3) = %d, %v", old, err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := s.TryLock(ctx, rebootlock.Holder{ID: id}); err != nil {
			t.Fatalf("lock %s: %v", id, err)
		}
	}
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "d"}); !errors.Is(err, rebootlock.ErrFull) {
		t.Fatalf("fourth: %v", err)
	}
	// Lowering keeps the three holders and admits nobody until below the new max.
	if old, err := s.SetMax(ctx, 2); err != nil || old != 3 {
		t.Fatalf("SetMax(2) = %d, %v", old, err)
	}
	st, _ := s.Status(ctx)
	if len(st.Holders) != 3 || st.Max != 2 {
		t.Fatalf("after lowering: %d holders, max %d", len(st.Holders), st.Max)
	}
	s.Unlock(ctx, "a")
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "d"}); !errors.Is(err, rebootlock.ErrFull) {
		t.Fatalf("2 holders with max 2: %v", err)
	}
	// Raising wakes a waiter at once.
	got := make(chan error, 1)
	go func() { got <- s.Lock(ctx, rebootlock.Holder{ID: "d"}) }()
	w.await(t, got)
	if _, err := s.SetMax(ctx, 3); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("raising max did not admit the waiter")
	}
}

func TestBadInput(t *testing.T) {
	c := startCluster(t, 1, nil)
	cli := c.client(t, rebootlock.EtcdConfig{})
	ctx := ctxT(t, 30*time.Second)

	for _, g := range []string{"", "a/b", "grüppe", "a b", "../x", strings.Repeat("a", 129)} {
		if _, err := rebootlock.New(cli, g, rebootlock.Options{}); !errors.Is(err, rebootlock.ErrInvalidGroup) {
			t.Errorf("group %q: %v, want ErrInvalidGroup", g, err)
		}
	}
	s := newSem(t, cli, "bad", rebootlock.Options{})
	for _, id := range []string{"", "a/b", "x\x00", "a\nb", "a\tb", "abc\u202egpj.exe", "\xff", strings.Repeat("i", 257)} {
		if err := s.TryLock(ctx, rebootlock.Holder{ID: id}); !errors.Is(err, rebootlock.ErrInvalidID) {
			t.Errorf("id %q: %v, want ErrInvalidID", id, err)
		}
	}
	// FleetLock allows any text as an id: spaces and other scripts are fine.
	for _, id := range []string{"web 1", "hôte-é", "节点", strings.Repeat("i", 256)} {
		if err := rebootlock.ValidateID(id); err != nil {
			t.Errorf("id %q: %v, want accepted", id, err)
		}
	}

	t.Run("garbage holder counts", func(t *testing.T) {
		if _, err := cli.Put(ctx, "/test/groups/bad/holders/ghost", "{not json"); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, "/test/groups/bad/holders/liar", `{"id":"other"}`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetMax(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.TryLock(ctx, rebootlock.Holder{ID: "real"}); !errors.Is(err, rebootlock.ErrFull) {
			t.Fatalf("two garbage holders with max 2: %v, want ErrFull", err)
		}
		st, err := s.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Holders) != 2 {
			t.Fatalf("holders: %+v", st.Holders)
		}
		for _, h := range st.Holders {
			if h.Malformed == "" {
				t.Errorf("holder %q not reported malformed", h.ID)
			}
		}
		if err := s.Unlock(ctx, "ghost"); err != nil {
			t.Fatal(err)
		}
		if err := s.TryLock(ctx, rebootlock.Holder{ID: "real"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("garbage config refuses locks", func(t *testing.T) {
		for _, v := range []string{"zzz", `{"max":0}`, `{"max":-4}`} {
			if _, err := cli.Put(ctx, "/test/groups/bad/config", v); err != nil {
				t.Fatal(err)
			}
			if err := s.TryLock(ctx, rebootlock.Holder{ID: "new"}); !errors.Is(err, rebootlock.ErrBadConfig) {
				t.Errorf("config %q: %v, want ErrBadConfig", v, err)
			}
			st, err := s.Status(ctx)
			if err != nil || st.ConfigError == "" {
				t.Errorf("config %q: status %+v, %v", v, st, err)
			}
		}
		if _, err := s.SetMax(ctx, 5); err != nil {
			t.Fatal(err)
		}
		if err := s.TryLock(ctx, rebootlock.Holder{ID: "new"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("etcd unreachable", func(t *testing.T) {
		port := freePorts(t, 1)[0]
		dead, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{"127.0.0.1:" + itoa(port)}})
		if err != nil {
			t.Fatal(err)
		}
		defer dead.Close()
		ds := newSem(t, dead, "g", rebootlock.Options{OpTimeout: 300 * time.Millisecond})
		start := time.Now()
		if err := ds.TryLock(ctx, rebootlock.Holder{ID: "a"}); err == nil || !strings.Contains(err.Error(), "rebootlock: reading group") {
			t.Fatalf("TryLock against no etcd: %v", err)
		}
		if err := ds.Lock(ctx, rebootlock.Holder{ID: "a"}); err == nil {
			t.Fatal("Lock against no etcd succeeded")
		}
		if _, err := ds.Status(ctx); err == nil {
			t.Fatal("Status against no etcd succeeded")
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("errors took %v; the per-request timeout is not applied", time.Since(start))
		}
	})

	t.Run("client config", func(t *testing.T) {
		for name, cfg := range map[string]rebootlock.EtcdConfig{
			"no endpoints":        {},
			"cert without key":    {Endpoints: []string{"x:1"}, CertFile: "/nonexistent.pem"},
			"key without cert":    {Endpoints: []string{"x:1"}, KeyFile: "/nonexistent.pem"},
			"missing CA":          {Endpoints: []string{"x:1"}, CAFile: "/nonexistent.pem"},
			"user without secret": {Endpoints: []string{"x:1"}, Username: "root"},
		} {
			if _, err := rebootlock.NewClient(cfg); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// gauge reads the value of a gauge with label group=g from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, g string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" && l.GetValue() == g {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{group=%q}", name, g)
	return 0
}

func TestStaleHolder(t *testing.T) {
	c := startCluster(t, 1, nil)
	cli := c.client(t, rebootlock.EtcdConfig{})
	ctx := ctxT(t, 30*time.Second)
	reg := prometheus.NewRegistry()
	m, err := rebootlock.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// The host: liveness and a reboot deadline of one second.
	host := newSem(t, cli, "g", rebootlock.Options{LivenessTTL: time.Second, RebootDeadline: time.Second})
	admin := newSem(t, cli, "g", rebootlock.Options{Metrics: m})
	if err := host.TryLock(ctx, rebootlock.Holder{ID: "gone", Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Reclaim(ctx, "gone"); !errors.Is(err, rebootlock.ErrAlive) {
		t.Fatalf("reclaim of a live holder: %v, want ErrAlive", err)
	}
	if err := admin.Reclaim(ctx, "nobody"); !errors.Is(err, rebootlock.ErrNotHolder) {
		t.Fatalf("reclaim of a non-holder: %v, want ErrNotHolder", err)
	}
	// The host goes down for its reboot and never comes back.
	host.Close()
	st := waitStatus(t, cli, admin, func(st rebootlock.Status) bool { return len(st.Holders) == 1 && st.Holders[0].Stale })
	if st.Holders[0].Alive || st.Holders[0].WithinDeadline {
		t.Fatalf("stale holder: %+v", st.Holders[0])
	}
	if got := gauge(t, reg, "switchyard_rebootlock_stale_holders", "g"); got != 1 {
		t.Fatalf("stale gauge = %v, want 1", got)
	}
	// Monitor keeps the gauge current without anyone calling Status.
	reg2 := prometheus.NewRegistry()
	m2, err := rebootlock.NewMetrics(reg2)
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogWatch()
	mon := newSem(t, cli, "g", rebootlock.Options{Metrics: m2, Logger: slog.New(logs)})
	mctx, stopMon := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() { mon.Monitor(mctx, 50*time.Millisecond); close(monDone) }()
	// Monitor logs the stale holder once it has read it (and set the gauge).
	logs.await(t, "reboot slot holder is stale: its host did not come back")
	if got := gauge(t, reg2, "switchyard_rebootlock_stale_holders", "g"); got != 1 {
		t.Fatalf("Monitor's stale gauge = %v, want 1", got)
	}
	if err := admin.Reclaim(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	logs.await(t, "stale reboot slot holder gone (released or reclaimed)")
	if got := gauge(t, reg2, "switchyard_rebootlock_stale_holders", "g"); got != 0 {
		t.Fatalf("Monitor's stale gauge after reclaim = %v, want 0", got)
	}
	stopMon()
	<-monDone
	st, _ = admin.Status(ctx)
	if len(st.Holders) != 0 || gauge(t, reg, "switchyard_rebootlock_stale_holders", "g") != 0 {
		t.Fatalf("after reclaim: %+v", st)
	}
}

func TestKeepAliveAfterReboot(t *testing.T) {
	c := startCluster(t, 1, nil)
	cli := c.client(t, rebootlock.EtcdConfig{})
	ctx := ctxT(t, 30*time.Second)
	before := newSem(t, cli, "g", rebootlock.Options{LivenessTTL: time.Second, RebootDeadline: time.Second})
	if err := before.TryLock(ctx, rebootlock.Holder{ID: "h"}); err != nil {
		t.Fatal(err)
	}
	before.Close()
	admin := newSem(t, cli, "g", rebootlock.Options{})
	waitStatus(t, cli, admin, func(st rebootlock.Status) bool { return len(st.Holders) == 1 && st.Holders[0].Stale })

	// After the reboot a new process re-establishes liveness while it checks health.
	after := newSem(t, cli, "g", rebootlock.Options{LivenessTTL: time.Second})
	kctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- after.KeepAlive(kctx, "h") }()
	waitStatus(t, cli, admin, func(st rebootlock.Status) bool { return len(st.Holders) == 1 && st.Holders[0].Alive })
	// The liveness lease is lost (what an etcd outage longer than the TTL does): KeepAlive
	// must bind the key to a new lease.
	const aliveKey = "/test/groups/g/alive/h"
	resp, err := cli.Get(ctx, aliveKey)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("alive key: %v, %v", resp, err)
	}
	lost := clientv3.LeaseID(resp.Kvs[0].Lease)
	wch := cli.Watch(ctx, aliveKey, clientv3.WithRev(resp.Header.Revision+1))
	if _, err := cli.Revoke(ctx, lost); err != nil {
		t.Fatal(err)
	}
	var deleted bool
	for rebound := false; !rebound; {
		wr, ok := <-wch
		if !ok {
			t.Fatal("watch ended before the alive key was bound again")
		}
		for _, ev := range wr.Events {
			switch {
			case ev.Type == clientv3.EventTypeDelete:
				deleted = true
			case deleted && clientv3.LeaseID(ev.Kv.Lease) != lost:
				rebound = true
			}
		}
	}
	if st, _ := admin.Status(ctx); len(st.Holders) != 1 || !st.Holders[0].Alive {
		t.Fatalf("liveness not kept: %+v", st)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := after.KeepAlive(ctx, "not-a-holder"); !errors.Is(err, rebootlock.ErrNotHolder) {
		t.Fatalf("keep-alive for a non-holder: %v", err)
	}
}

func TestAutoReclaim(t *testing.T) {
	c := startCluster(t, 1, nil)
	cli := c.client(t, rebootlock.EtcdConfig{})
	ctx := ctxT(t, 30*time.Second)
	dead := newSem(t, cli, "g", rebootlock.Options{LivenessTTL: time.Second, RebootDeadline: time.Second})
	if err := dead.TryLock(ctx, rebootlock.Holder{ID: "dead"}); err != nil {
		t.Fatal(err)
	}
	dead.Close()
	// Without auto reclaim a waiter that sees the stale holder waits.
	admin := newSem(t, cli, "g", rebootlock.Options{})
	waitStatus(t, cli, admin, func(st rebootlock.Status) bool { return len(st.Holders) == 1 && st.Holders[0].Stale })
	w := newWaits()
	manual := newSem(t, cli, "g", rebootlock.Options{Waiting: w.hook})
	mctx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() { got <- manual.Lock(mctx, rebootlock.Holder{ID: "w"}) }()
	w.await(t, got)
	cancel()
	if err := <-got; err == nil {
		t.Fatal("a waiter without auto reclaim got the slot of a stale holder")
	}
	if st, _ := admin.Status(ctx); !st.Holding("dead") {
		t.Fatalf("the stale holder lost its slot without auto reclaim: %+v", st.Holders)
	}
	auto := newSem(t, cli, "g", rebootlock.Options{AutoReclaimAfter: 500 * time.Millisecond})
	start := time.Now()
	if err := auto.Lock(ctx, rebootlock.Holder{ID: "w"}); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Fatalf("reclaimed after %v, before AutoReclaimAfter", time.Since(start))
	}
	st, _ := auto.Status(ctx)
	if len(st.Holders) != 1 || st.Holders[0].ID != "w" {
		t.Fatalf("after auto reclaim: %+v", st.Holders)
	}
}

// waitStatus returns the group's status once ok holds, re-reading it after every change of
// the group's keys (a watch; lease expiries are changes too).
func waitStatus(t *testing.T, cli *clientv3.Client, s *rebootlock.Semaphore, ok func(rebootlock.Status) bool) rebootlock.Status {
	t.Helper()
	ctx := ctxT(t, 15*time.Second)
	for {
		st, err := s.Status(ctx)
		if err == nil && ok(st) {
			return st
		}
		if ctx.Err() != nil {
			t.Fatalf("status never reached the expected state: %+v, %v", st, err)
		}
		if err != nil {
			continue // etcd failing (a leader election); the read retries with its own backoff
		}
		wctx, cancel := context.WithCancel(ctx)
		<-cli.Watch(wctx, "/test/groups/"+s.Group()+"/", clientv3.WithPrefix(), clientv3.WithRev(st.Revision+1))
		cancel()
	}
}
