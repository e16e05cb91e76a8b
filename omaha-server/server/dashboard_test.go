package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/dashboard"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// TestDashboardOnTheStore runs the whole server with the dashboard over a real SQLite
// store: hosts check in through Omaha, the maintenance loop samples the versions, and the
// dashboard's JSON shows the counts, the rollout state, the timeline and the search.
func TestDashboardOnTheStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := newFixtureConfig(t, st, server.Config{Dashboard: server.NewDashboard(st, nil, nil)})
	f.setup()
	half := 50
	f.setPolicy(policy.Policy{Percent: &half})
	for i := range 20 {
		h := host(fmt.Sprintf("dash-%02d", i), "4081.1.0")
		h.MachineAlias = fmt.Sprintf("node-%02d", i)
		f.send(omaha.NewUpdateCheckRequest(h, false))
	}
	// The maintenance loop samples once at start; the test waits for that sample, then
	// stops the loop.
	sampled := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		server.RunMaintenance(ctx, sampleSignal{Store: st, sampled: sampled}, server.Maintenance{SampleEvery: time.Hour})
	}()
	if err := <-sampled; err != nil {
		t.Fatalf("the maintenance loop's sample: %v", err)
	}
	if tl, err := st.VersionTimeline(ctx, store.FlatcarAppID, time.Now().Add(-time.Hour)); err != nil || len(tl) == 0 {
		t.Fatalf("after the sample: timeline %v, %v", tl, err)
	}
	cancel()
	<-done

	tok := token(t, st, store.RoleViewer)
	get := func(path string, out any) int {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: dashboard.CookieName, Value: tok})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil && resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
	var sum dashboard.Summary
	if code := get("/dashboard/api/summary", &sum); code != 200 {
		t.Fatalf("summary: %d", code)
	}
	// The sample, then the live point from the current counts.
	if sum.Fleet != 20 || len(sum.Groups) != 1 || len(sum.Timeline) != 2 || sum.Timeline[0].Count != 20 || sum.Timeline[0].Live ||
		sum.Timeline[1].Count != 20 || !sum.Timeline[1].Live {
		t.Fatalf("summary %+v", sum)
	}
	g := sum.Groups[0]
	granted := g.Counts[store.StatusUpdateGranted]
	if granted == 0 || granted == 20 || g.Counts[store.StatusUndefined]+granted != 20 || g.Rollout == nil || g.Rollout.Percent != 50 {
		t.Errorf("group summary %+v (rollout %+v)", g, g.Rollout)
	}
	for _, tt := range []struct {
		q    string
		want int
	}{{"dash-0", 10}, {"node-1", 10}, {"127.0.0.1", 20}, {"4081.1.0", 20}, {"nobody", 0}} {
		var found []store.Instance
		if code := get("/dashboard/api/instances?q="+tt.q, &found); code != 200 || len(found) != tt.want {
			t.Errorf("search %q: %d, %d found, want %d", tt.q, code, len(found), tt.want)
		}
	}
	// The page itself is served at / (sign-in form without a session).
	resp, err := http.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /: %d", resp.StatusCode)
	}
}

// sampleSignal is a store that reports each SampleVersions result on sampled (dropping
// results nobody waits for).
type sampleSignal struct {
	store.Store
	sampled chan<- error
}

func (s sampleSignal) SampleVersions(ctx context.Context, at, keepSince time.Time) error {
	err := s.Store.SampleVersions(ctx, at, keepSince)
	select {
	case s.sampled <- err:
	default:
	}
	return err
}
