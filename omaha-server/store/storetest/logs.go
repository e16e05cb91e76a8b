package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// testLogs checks an instance's status history and events as written by check-ins and
// read back newest first: hosts whose check-ins interleave never see each other's rows,
// a limit takes the newest, age retention leaves the newer rows readable, and pruning an
// instance removes its rows and nobody else's.
func testLogs(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	hosts := []string{"old", "a", "b", "c"}
	const rounds = 6
	for r := range rounds {
		for i, m := range hosts {
			at := t0.Add(time.Duration(r*len(hosts)+i) * time.Minute)
			if m == "old" && r > 0 {
				continue // seen once, long ago: pruned below
			}
			err := s.Checkin(ctx, appID, m, func(cur *store.Instance) (*store.InstanceUpdate, error) {
				in := instance(m, at)
				if cur != nil {
					in = *cur
					in.LastCheck = at
				}
				return &store.InstanceUpdate{Instance: in,
					History: []store.StatusChange{{Status: store.StatusDownloading, Version: fmt.Sprintf("%s.%d", m, r), At: at}},
					Events: []store.Event{
						{AppID: appID, MachineID: m, Type: 13, Result: r, At: at},
						{AppID: appID, MachineID: m, Type: 14, Result: r, At: at},
					}}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(m string, limit, wantRounds, fromRound int) {
		t.Helper()
		ev := must(s.ListEvents(ctx, appID, m, limit))(t)
		if len(ev) != 2*wantRounds {
			t.Fatalf("%s: %d events with limit %d, want %d: %+v", m, len(ev), limit, 2*wantRounds, ev)
		}
		for i, e := range ev {
			r, typ := fromRound-i/2, 14-i%2
			if e.MachineID != m || e.Result != r || e.Type != typ {
				t.Fatalf("%s: event %d = %+v, want round %d type %d (newest first)", m, i, e, r, typ)
			}
		}
		d := must(s.GetInstances(ctx, m, limit))(t)
		if len(d) != 1 {
			t.Fatalf("%s: %d instances", m, len(d))
		}
		want := min(rounds, limit)
		if limit <= 0 {
			want = rounds
		}
		if h := d[0].History; len(h) != want || h[0].Version != fmt.Sprintf("%s.%d", m, rounds-1) || h[want-1].Version != fmt.Sprintf("%s.%d", m, rounds-want) {
			t.Fatalf("%s: history with limit %d = %+v", m, limit, h)
		}
	}
	for _, m := range []string{"a", "b", "c"} {
		check(m, 0, rounds, rounds-1)
		check(m, 4, 2, rounds-1)
	}
	// "old" (seen only in round 0) goes with its rows; then the events before round 3.
	p, err := s.Prune(ctx, store.Retention{InstancesBefore: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Pruned{Instances: 1, History: 1, Events: 2}); p != want {
		t.Errorf("pruned %+v, want %+v", p, want)
	}
	cut := t0.Add(3 * time.Duration(len(hosts)) * time.Minute)
	if p, err = s.Prune(ctx, store.Retention{EventsBefore: cut}); err != nil {
		t.Fatal(err)
	}
	if want := (store.Pruned{Events: 3 * 3 * 2}); p != want { // a, b, c: rounds 0-2, two events each
		t.Errorf("pruned %+v, want %+v", p, want)
	}
	if _, err := s.GetInstances(ctx, "old", 0); err == nil {
		t.Error("the pruned instance is still there")
	}
	if ev := must(s.ListEvents(ctx, appID, "old", 0))(t); len(ev) != 0 {
		t.Errorf("events of the pruned instance: %+v", ev)
	}
	for _, m := range []string{"a", "b", "c"} {
		check(m, 0, rounds-3, rounds-1)
	}
	// New check-ins after retention chain on.
	at := t0.Add(time.Hour)
	err = s.Checkin(ctx, appID, "a", func(cur *store.Instance) (*store.InstanceUpdate, error) {
		in := *cur
		in.LastCheck = at
		return &store.InstanceUpdate{Instance: in, Events: []store.Event{{AppID: appID, MachineID: "a", Type: 3, Result: 2, At: at}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev := must(s.ListEvents(ctx, appID, "a", 0))(t); len(ev) != 2*(rounds-3)+1 || ev[0].Type != 3 || ev[1].Type != 14 || ev[1].Result != rounds-1 {
		t.Errorf("after retention and a new event: %+v", ev)
	}
}

// testInstanceColumns writes a known host's row with every combination of its indexed
// columns changed (they are rewritten only when they change) and reads it back whole,
// through the key and through the filters those indexes serve.
func testInstanceColumns(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	want := instance("cols", t0)
	if err := s.Checkin(ctx, appID, "cols", func(*store.Instance) (*store.InstanceUpdate, error) {
		return &store.InstanceUpdate{Instance: want}, nil
	}); err != nil {
		t.Fatal(err)
	}
	for mask := range 1 << 5 {
		at := t0.Add(time.Duration(mask+1) * time.Second)
		err := s.Checkin(ctx, appID, "cols", func(cur *store.Instance) (*store.InstanceUpdate, error) {
			if cur == nil || *cur != want {
				t.Fatalf("mask %05b: cur = %+v, want %+v", mask, cur, want)
			}
			n := *cur
			n.LastCheck, n.StatusAt, n.BootID, n.LastErrorCode, n.UpdateVersion = at, at, fmt.Sprintf("{boot-%d}", mask), int64(mask), fmt.Sprintf("4081.%d.0", mask)
			if mask&1 != 0 {
				n.Group = fmt.Sprintf("g%d", mask)
			}
			if mask&2 != 0 {
				n.Status = []store.Status{store.StatusDownloading, store.StatusComplete}[mask%2]
			}
			if mask&4 != 0 {
				n.Version = fmt.Sprintf("4081.%d.1", mask)
			}
			if mask&8 != 0 {
				n.IP = fmt.Sprintf("10.0.0.%d", mask)
			}
			if mask&16 != 0 {
				n.Alias = fmt.Sprintf("host-%d", mask)
			}
			want = n
			return &store.InstanceUpdate{Instance: n}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		d := must(s.GetInstances(ctx, "cols", 0))(t)
		if len(d) != 1 || d[0].Instance != want {
			t.Fatalf("mask %05b: read back %+v, want %+v", mask, d, want)
		}
		l := must(s.ListInstances(ctx, store.InstanceFilter{AppID: appID, Group: want.Group, Version: want.Version, Status: want.Status}))(t)
		if len(l) != 1 || l[0] != want {
			t.Fatalf("mask %05b: listed by group, version and status: %+v", mask, l)
		}
	}
}
