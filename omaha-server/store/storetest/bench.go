package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Counter is a store whose check-ins can stop maintaining the instance counts, for
// BenchCheckins's baseline (sqlite.Store and postgres.Store).
type Counter interface {
	SetCounting(on bool)
}

// benchCycle is what a host reports, one check-in after the other, in BenchCheckins: an
// update from one version to the other and back, every check-in a new (version, status),
// so that every one of them moves the host between two instance counts.
var benchCycle = []struct {
	status store.Status
	next   bool // on the version it updates to
}{
	{store.StatusUpdateGranted, false}, {store.StatusDownloading, false}, {store.StatusDownloaded, false},
	{store.StatusInstalled, false}, {store.StatusComplete, true}, {store.StatusUndefined, true},
}

// BenchCheckins measures the check-in path of st with and without the maintenance of the
// instance counts, in the same run: hosts check in from concurrency goroutines (one
// request per host in flight, as Omaha hosts do), each check-in writing one status-history
// row and one event and moving its host to a new version or status (the worst case for the
// counts: an idle host's check-in moves nothing). Rounds alternate without, with, with,
// without, four times over in slices, so a drift of the machine's speed falls on both
// alike; it reports checkins/s of each
// and their ratio (with-counts / without; 1 means free).
func BenchCheckins(b *testing.B, st store.Store, c Counter, hosts, perRound, concurrency int) {
	ctx := context.Background()
	if _, err := st.CreateApp(ctx, store.App{ID: appID, Name: "Flatcar"}); err != nil {
		b.Fatal(err)
	}
	versions := [2]string{"4081.2.0", "4116.0.0"}
	step := make([]int, hosts) // each host's position in benchCycle; a host belongs to one goroutine
	at := time.UnixMilli(1_700_000_000_000).UTC()
	run := func(n int) time.Duration {
		var wg sync.WaitGroup
		errs := make(chan error, concurrency)
		start := time.Now()
		for w := range concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				per := hosts / concurrency
				for k := range n / concurrency {
					h := w + (k%per)*concurrency
					machine := fmt.Sprintf("bench-%06d", h)
					s := benchCycle[step[h]%len(benchCycle)]
					v := versions[(step[h]/len(benchCycle)+btoi(s.next))%2]
					step[h]++
					err := st.Checkin(ctx, appID, machine, func(cur *store.Instance) (*store.InstanceUpdate, error) {
						in := instance(machine, at)
						if cur != nil {
							in = *cur
						}
						in.Version, in.Status, in.LastCheck, in.StatusAt = v, s.status, at, at
						return &store.InstanceUpdate{Instance: in,
							History: []store.StatusChange{{Status: s.status, Version: v, At: at}},
							Events:  []store.Event{{AppID: appID, MachineID: machine, Type: 13, Result: 1, Version: v, At: at}}}, nil
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	c.SetCounting(true)
	run(hosts) // every host once: the rounds update rows, as most check-ins do
	perRound = max(perRound, b.N)
	const parts = 4 // each round in slices, interleaved: the machine's drift falls on both
	n := perRound / parts / concurrency * concurrency
	var took [2]time.Duration // [without, with]
	for range parts {
		for _, with := range []bool{false, true, true, false} {
			c.SetCounting(with)
			took[btoi(with)] += run(n)
		}
	}
	n *= parts
	c.SetCounting(true)
	without := float64(2*n) / took[0].Seconds()
	with := float64(2*n) / took[1].Seconds()
	b.ReportMetric(without, "checkins/s-without-counts")
	b.ReportMetric(with, "checkins/s-with-counts")
	b.ReportMetric(with/without, "ratio")
	b.Logf("%d hosts, %d goroutines, 2×%d check-ins each way: %.0f/s without counts, %.0f/s with (ratio %.3f)",
		hosts, concurrency, n, without, with, with/without)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
