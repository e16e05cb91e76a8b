package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/catalog"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

func (f *fixture) offered(machine, version string) bool {
	f.t.Helper()
	_, err := f.send(omaha.NewUpdateCheckRequest(host(machine, version), false)).Offer("")
	if err != nil && err != omaha.ErrNoUpdate {
		f.t.Fatalf("%s: %v", machine, err)
	}
	return err == nil
}

func (f *fixture) setPolicy(p policy.Policy) store.Group {
	f.t.Helper()
	return ok(f.admin.SetPolicy(context.Background(), store.FlatcarAppID, "stable", p, 0))(f.t)
}

func TestPolicyValidationAndVersions(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		ctx := context.Background()
		bad := 150
		_, err := f.admin.SetPolicy(ctx, store.FlatcarAppID, "stable", policy.Policy{Percent: &bad, MaxPerPeriod: 3, Windows: []string{"Mon 25:00 1h UTC"}}, 0)
		if !adminclient.IsStatus(err, http.StatusBadRequest) {
			t.Fatalf("bad policy: %v, want 400", err)
		}
		for _, frag := range []string{"percent 150", "period", "window"} {
			if !strings.Contains(err.Error(), frag) {
				t.Errorf("error %q does not name %q", err, frag)
			}
		}
		cur := ok(f.admin.GetPolicy(ctx, store.FlatcarAppID, "stable"))(t)
		if _, err := f.viewer.SetPolicy(ctx, store.FlatcarAppID, "stable", policy.Policy{}, 0); !adminclient.IsStatus(err, http.StatusForbidden) {
			t.Errorf("viewer write: %v, want 403", err)
		}
		// Two operators read version N; the first write wins, the second gets 409.
		half := 50
		g := ok(f.admin.SetPolicy(ctx, store.FlatcarAppID, "stable", policy.Policy{Percent: &half}, *cur.Version))(t)
		if g.Version != *cur.Version+1 || g.Policy.PercentOrAll() != 50 {
			t.Errorf("after the write: %+v", g)
		}
		if _, err := f.admin.SetPolicy(ctx, store.FlatcarAppID, "stable", policy.Policy{MaxInFlight: 3}, *cur.Version); !adminclient.IsStatus(err, http.StatusConflict) {
			t.Errorf("stale write: %v, want 409", err)
		}
		if got := ok(f.admin.GetPolicy(ctx, store.FlatcarAppID, "stable"))(t); got.Policy.PercentOrAll() != 50 || got.Policy.MaxInFlight != 0 {
			t.Errorf("the stale write changed the policy: %+v", got.Policy)
		}
	})
}

func TestRolloutPolicyInTheHandler(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		ctx := context.Background()

		t.Run("percent", func(t *testing.T) {
			zero := 0
			f.setPolicy(policy.Policy{Percent: &zero})
			if f.offered("p1", "4081.1.0") {
				t.Error("0 percent offered")
			}
			twenty := 20
			f.setPolicy(policy.Policy{Percent: &twenty})
			var in []string
			for i := range 200 {
				m := fmt.Sprintf("pct-%d", i)
				if f.offered(m, "4081.1.0") {
					in = append(in, m)
				}
			}
			if len(in) < 20 || len(in) > 60 {
				t.Errorf("20%% offered %d of 200", len(in))
			}
			// Raising the percentage keeps every host already in.
			sixty := 60
			f.setPolicy(policy.Policy{Percent: &sixty})
			for _, m := range in {
				if !f.offered(m, "4081.1.0") {
					t.Fatalf("%s dropped when the percentage rose", m)
				}
			}
		})
		t.Run("cap per period and re-serve", func(t *testing.T) {
			f.setPolicy(policy.Policy{MaxPerPeriod: 2, Period: policy.Duration(time.Hour)})
			n := 0
			for i := range 6 {
				if f.offered(fmt.Sprintf("cap-%d", i), "4081.1.0") {
					n++
				}
			}
			if n != 2 {
				t.Errorf("%d grants under a cap of 2", n)
			}
			// cap-0 was granted: it keeps getting the release although the cap is full.
			if !f.offered("cap-0", "4081.1.0") {
				t.Error("a granted host was not re-served")
			}
			st := ok(f.admin.RolloutStatus(ctx, store.FlatcarAppID, "stable", ""))(t)
			if !st.Counted || st.Granted != 2 || st.InFlight != 2 || st.Version != "4081.2.0" {
				t.Errorf("rollout status %+v", st)
			}
		})
		t.Run("halt on a rollback and resume", func(t *testing.T) {
			f.setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 1})
			h := host("halt-1", "4081.1.0")
			if !f.offered(h.MachineID, h.Version) {
				t.Fatal("no offer before the halt")
			}
			f.send(omaha.NewEventRequest(h, omaha.EventInstalled()))
			// The new version fails to boot; the host rolls back and says so (3/0, 44).
			f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRollback(0)))
			g := ok(f.admin.GetGroup(ctx, store.FlatcarAppID, "stable"))(t)
			if !g.Halted() || !strings.Contains(g.HaltReason, "1 rollbacks") {
				t.Fatalf("group not halted: %+v", g)
			}
			if f.offered("halt-2", "4081.1.0") {
				t.Error("a halted group offered an update")
			}
			st := ok(f.admin.RolloutStatus(ctx, store.FlatcarAppID, "stable", ""))(t)
			if st.RolledBack != 1 || st.HaltReason == "" {
				t.Errorf("rollout status %+v", st)
			}
			// Only an explicit resume restarts it.
			ok(f.admin.SetPaused(ctx, store.FlatcarAppID, "stable", false))(t)
			if !f.offered("halt-2", "4081.1.0") {
				t.Error("no offer after the resume")
			}
		})
		t.Run("pause", func(t *testing.T) {
			f.setPolicy(policy.Policy{})
			ok(f.admin.SetPaused(ctx, store.FlatcarAppID, "stable", true))(t)
			if f.offered("pause-1", "4081.1.0") {
				t.Error("a paused group offered an update")
			}
			ok(f.admin.SetPaused(ctx, store.FlatcarAppID, "stable", false))(t)
			if !f.offered("pause-1", "4081.1.0") {
				t.Error("no offer after the resume")
			}
		})
		t.Run("blocked pinned promoted", func(t *testing.T) {
			f.setPolicy(policy.Policy{Blocked: []string{"4081.2.0"}})
			if f.offered("blk-1", "4081.1.0") {
				t.Error("a blocked version was offered")
			}
			f.setPolicy(policy.Policy{Pin: "4081.1.5"})
			if f.offered("pin-1", "4081.1.0") {
				t.Error("a pin to a missing release offered something")
			}
			f.setPolicy(policy.Policy{})
			ok(f.admin.CreateChannel(ctx, store.FlatcarAppID, "beta"))(t)
			ch := ok(f.admin.Promote(ctx, store.FlatcarAppID, "stable", "beta"))(t)
			if ch.Releases["amd64-usr"].Version != "4081.2.0" {
				t.Errorf("promoted channel %+v", ch)
			}
			if _, err := f.admin.Promote(ctx, store.FlatcarAppID, "nope", "beta"); !adminclient.IsStatus(err, http.StatusNotFound) {
				t.Errorf("promote from a missing channel: %v", err)
			}
		})
	})
}

// TestTimeoutCountsAsFailure: a grant with no 3/1 within the timeout is timed out and
// counts towards the halt.
// TestRolloutStatusWithoutRelease: when a group has no pinned version and its channel
// offers no release for the board, GET …/rollout answers 200 with "no_release": true, a
// reason, an empty version and zero counts (not the counts of every version).
func TestRolloutStatusWithoutRelease(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		ctx := context.Background()
		// One grant on 4081.2.0 in group stable, counted.
		f.setPolicy(policy.Policy{MaxInFlight: 5})
		if !f.offered("nr-1", "4081.1.0") {
			t.Fatal("no offer")
		}
		ok(f.admin.CreateChannel(ctx, store.FlatcarAppID, "empty"))(t)
		for _, g := range []adminapi.GroupInput{
			{Name: "idle", Track: strp("idle"), Channel: strp("empty")},
			{Name: "loose", Track: strp("loose")},
			{Name: "pinned", Track: strp("pinned"), Channel: strp("empty")},
		} {
			ok(f.admin.CreateGroup(ctx, store.FlatcarAppID, g))(t)
		}
		ok(f.admin.SetPolicy(ctx, store.FlatcarAppID, "pinned", policy.Policy{Pin: "4081.2.0"}, 0))(t)
		ok(f.admin.SetPaused(ctx, store.FlatcarAppID, "idle", true))(t)
		viewer := token(t, st, store.RoleViewer)

		tests := []struct {
			name, group, query string
			noRelease          bool
			reason, version    string
			granted            int
			paused             bool
		}{
			{name: "channel offers the board", group: "stable", version: "4081.2.0", granted: 1},
			{name: "no release for the board", group: "stable", query: "board=arm64-usr", noRelease: true,
				reason: `channel "stable" offers no release for board arm64-usr`},
			{name: "empty channel", group: "idle", noRelease: true, paused: true,
				reason: `channel "empty" offers no release for board amd64-usr`},
			{name: "no channel", group: "loose", noRelease: true, reason: `group "loose" follows no channel and pins no version`},
			{name: "pinned", group: "pinned", version: "4081.2.0"},
			{name: "explicit version", group: "idle", query: "version=4081.2.0", version: "4081.2.0", paused: true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
					f.srv.URL+"/api/v1/apps/"+store.FlatcarAppID+"/groups/"+tt.group+"/rollout?"+tt.query, nil)
				req.Header.Set("Authorization", "Bearer "+viewer)
				resp, err := f.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				var raw map[string]any
				if err := json.Unmarshal(body, &raw); err != nil {
					t.Fatal(err)
				}
				if raw["no_release"] != tt.noRelease {
					t.Errorf("no_release = %v, want %v (explicit in the JSON)\n%s", raw["no_release"], tt.noRelease, body)
				}
				var got adminapi.RolloutReport
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				if got.Group != tt.group || got.Reason != tt.reason || got.Version != tt.version || got.Granted != tt.granted || got.Paused != tt.paused {
					t.Errorf("rollout status %s", body)
				}
			})
		}
		// The typed client carries the same answer.
		got := ok(f.admin.RolloutStatus(ctx, store.FlatcarAppID, "loose", ""))(t)
		if !got.NoRelease || got.Version != "" || got.Reason == "" {
			t.Errorf("client: %+v", got)
		}
	})
}

func strp(s string) *string { return &s }

func TestTimeoutCountsAsFailure(t *testing.T) {
	var now atomic.Int64
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			now.Store(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli())
			var st store.Store
			var err error
			if kind == "sqlite" {
				st, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), clock)
			} else {
				st, err = postgres.Open(context.Background(), cluster.DB(t), postgres.Options{Now: clock})
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			f := newFixtureClock(t, st, clock)
			f.setup()
			f.setPolicy(policy.Policy{Timeout: policy.Duration(time.Hour), HaltFailures: 2, HaltOf: 3})
			for _, m := range []string{"t1", "t2"} {
				if !f.offered(m, "4081.1.0") {
					t.Fatalf("%s: no offer", m)
				}
			}
			now.Add((2 * time.Hour).Milliseconds())
			f.offered("t3", "4081.1.0")
			g := ok(f.admin.GetGroup(context.Background(), store.FlatcarAppID, "stable"))(t)
			if !g.Halted() || !strings.Contains(g.HaltReason, "2 timeouts") {
				t.Errorf("after two timeouts: %+v", g)
			}
		})
	}
}

// TestScaleOutSharesCounters: two servers that share nothing but one PostgreSQL database
// (separate stores, catalogs and row caches) serve 1,000 hosts at once under a cap of 10
// grants per period: exactly 10 are granted in total. Then a halt tripped through one is
// honoured by the other.
func TestScaleOutSharesCounters(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 hosts through two servers: skipped in -short")
	}
	url := cluster.DB(t)
	// The servers' clock (and so their catalog caches' TTL) is advanced by hand: a write
	// through one server reaches the other once its cached catalog is older than the TTL.
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	pastTTL := func() { now.Add((catalog.DefaultTTL + time.Millisecond).Milliseconds()) }
	var servers [2]*fixture
	for i := range servers {
		st, err := postgres.Open(context.Background(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		servers[i] = newFixtureClock(t, st, clock)
	}
	servers[0].setup()
	// Server 1 caches the catalog (no policy yet) with a ping; the policy written through
	// server 0 reaches it once that snapshot is older than the TTL: the next request
	// reloads it (while a reload runs, concurrent requests use the old snapshot, so the
	// reload is done before the burst).
	warm := omaha.NewPingRequest(host("warm", "4081.1.0"))
	servers[1].send(warm)
	servers[0].setPolicy(policy.Policy{MaxPerPeriod: 10, Period: policy.Duration(time.Hour), HaltFailures: 1, HaltOf: 5})
	pastTTL()
	servers[1].send(warm)
	var granted atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f := servers[i%2]
			body, _ := omaha.NewUpdateCheckRequest(host(fmt.Sprintf("so-%04d", i), "4081.1.0"), false).Marshal()
			code, out := f.post(body)
			if code != http.StatusOK {
				t.Errorf("status %d: %s", code, out)
				return
			}
			if strings.Contains(string(out), `status="ok"><urls>`) || strings.Contains(string(out), "<manifest") {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	if g := granted.Load(); g != 10 {
		t.Fatalf("%d grants across two servers under a cap of 10", g)
	}
	st := ok(servers[1].admin.RolloutStatus(context.Background(), store.FlatcarAppID, "stable", ""))(t)
	if st.Granted != 10 {
		t.Errorf("rollout status %+v", st)
	}
	// A granted host reports an error through server 0; server 1 stops at once.
	list := ok(servers[0].admin.ListInstances(context.Background(), store.InstanceFilter{Status: store.StatusUpdateGranted}))(t)
	if len(list) != 10 {
		t.Fatalf("%d granted instances", len(list))
	}
	h := host(list[0].MachineID, "4081.1.0")
	servers[0].send(omaha.NewEventRequest(h, omaha.EventError(omaha.ErrorCodeOmahaResponseInvalid, "")))
	servers[0].setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 5}) // lift the cap, keep the halt
	pastTTL()
	if servers[1].offered("so-new", "4081.1.0") {
		t.Error("server 1 offered an update after server 0 halted the rollout")
	}
}

func newFixtureClock(t *testing.T, st store.Store, now func() time.Time) *fixture {
	return newFixtureConfig(t, st, server.Config{Now: now})
}

// TestRefusedAnswerAfterSuccessEndsNoAttempt: a host that updated, then could not use the
// answer to a later plain check (it reports 3/0 with code 34, as update-engine does for an
// answer it refuses, e.g. error-internal while the store is down) does not turn its
// success into a failure, so a server-side outage cannot halt a rollout. The same report
// while the update is under way still ends the attempt as failed.
func TestRefusedAnswerAfterSuccessEndsNoAttempt(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		f.setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 1})
		h := host("answer-1", "4081.1.0")
		if !f.offered("answer-1", "4081.1.0") {
			t.Fatal("no offer")
		}
		f.send(omaha.NewEventRequest(h, omaha.EventInstalled()))
		// Rebooted into the new version: the attempt succeeded.
		h = host("answer-1", "4081.2.0")
		f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRebooted("4081.1.0")))
		if d := f.instance("answer-1"); d.Status != store.StatusComplete {
			t.Fatalf("after the reboot: %s, want complete", d.Status)
		}
		f.send(omaha.NewEventRequest(h, omaha.EventError(omaha.ErrorCodeOmahaResponseInvalid, "")))
		if g := ok(f.admin.GetGroup(context.Background(), store.FlatcarAppID, "stable"))(t); g.Halted() {
			t.Fatalf("a refused answer after a success halted the group: %s", g.HaltReason)
		}
		h2 := host("answer-2", "4081.1.0")
		if !f.offered("answer-2", "4081.1.0") {
			t.Fatal("no offer for the second host")
		}
		f.send(omaha.NewEventRequest(h2, omaha.EventError(omaha.ErrorCodeOmahaResponseInvalid, "")))
		if g := ok(f.admin.GetGroup(context.Background(), store.FlatcarAppID, "stable"))(t); !g.Halted() {
			t.Fatal("a refused offer during an update did not end the attempt as failed")
		}
	})
}
