package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// manualClock is a clock the test advances by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestRolloutAndFailureMetrics: the group gauges follow halts, pauses and resumes (also
// those written by another server on the same store, after one catalog TTL), and error
// events are counted by base error code with unknown codes folded into "other".
func TestRolloutAndFailureMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		clk := &manualClock{t: time.Now().UTC()}
		f := newFixtureConfig(t, st, server.Config{Now: clk.Now, CatalogTTL: time.Second})
		f.setup()
		ctx := context.Background()
		app := store.FlatcarAppID
		series := func(name string, v int) string {
			return fmt.Sprintf(`%s{app=%q,group="stable"} %d`, name, app, v)
		}
		expect := func(step string, want ...string) {
			t.Helper()
			_, m := f.get("/metrics")
			for _, w := range want {
				if !strings.Contains(m, w+"\n") {
					t.Errorf("%s: /metrics lacks %s", step, w)
				}
			}
		}
		expect("start", series("switchyard_omaha_server_group_halted", 0), series("switchyard_omaha_server_group_paused", 0))

		f.setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 1})
		h := host("halt-1", "4081.1.0")
		if !f.offered(h.MachineID, h.Version) {
			t.Fatal("no offer")
		}
		f.send(omaha.NewEventRequest(h, omaha.EventInstalled()))
		f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRollback(0)))
		// The halt is written in the check-in's transaction: the cached snapshot sees it
		// after one TTL.
		clk.Add(2 * time.Second)
		expect("halted", series("switchyard_omaha_server_group_halted", 1), series("switchyard_omaha_server_group_paused", 0),
			fmt.Sprintf(`switchyard_omaha_server_update_failures_total{app=%q,code="44"} 1`, app))

		ok(f.admin.SetPaused(ctx, app, "stable", false))(t)
		f.setPolicy(policy.Policy{})
		ok(f.admin.SetPaused(ctx, app, "stable", true))(t)
		expect("paused", series("switchyard_omaha_server_group_halted", 0), series("switchyard_omaha_server_group_paused", 1))

		// Another replica resumes: seen once the snapshot is older than the TTL.
		if _, err := st.SetRolloutState(ctx, app, "stable", false); err != nil {
			t.Fatal(err)
		}
		expect("within the TTL", series("switchyard_omaha_server_group_paused", 1))
		clk.Add(2 * time.Second)
		expect("after the TTL", series("switchyard_omaha_server_group_paused", 0))

		for i, e := range []*omaha.Event{
			omaha.EventError(omaha.ErrorCodeOmahaResponseInvalid|omaha.ErrorFlagTestOmahaURL, ""),
			omaha.EventError(omaha.ErrorCodeDownloadTransferError, ""),
			omaha.EventError(omaha.ErrorCodeDownloadTransferError|omaha.ErrorFlagResumed, ""),
			omaha.EventError(omaha.HTTPErrorCode(503), ""),
			omaha.EventError(123456, ""),
			omaha.EventError(7777, ""),
			{Type: omaha.EventTypeUpdateComplete, Result: omaha.EventResultError},
			omaha.EventInstalled(),
		} {
			f.send(omaha.NewEventRequest(host(fmt.Sprintf("fail-%d", i), "4081.1.0"), e))
		}
		failures := func(code string, n int) string {
			return fmt.Sprintf(`switchyard_omaha_server_update_failures_total{app=%q,code=%q} %d`, app, code, n)
		}
		expect("failures", failures("34", 1), failures("9", 2), failures("2503", 1), failures("other", 2), failures("none", 1), failures("44", 1))
		_, m := f.get("/metrics")
		if n := strings.Count(m, "switchyard_omaha_server_update_failures_total{"); n != 6 {
			t.Errorf("%d failure series, want 6:\n%s", n, m)
		}
	})
}
