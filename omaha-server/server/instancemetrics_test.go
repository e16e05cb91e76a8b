package server_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

var instanceSeries = regexp.MustCompile(`^switchyard_omaha_server_instances\{app="([^"]*)",channel="([^"]*)",group="([^"]*)",status="([^"]*)",version="([^"]*)"\} (\S+)$`)

// scrapeInstances reads the switchyard_omaha_server_instances series of the fixture's
// /metrics, keyed "app group channel version status", and the dropped-series gauge.
func (f *fixture) scrapeInstances() (map[string]int, int) {
	f.t.Helper()
	code, body := f.get("/metrics")
	if code != 200 {
		f.t.Fatalf("/metrics: HTTP %d", code)
	}
	got, dropped := map[string]int{}, -1
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "switchyard_omaha_server_instances_dropped_series "); ok {
			dropped, _ = strconv.Atoi(v)
		}
		m := instanceSeries.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[6])
		if err != nil {
			f.t.Fatalf("%s: %v", line, err)
		}
		got[strings.Join([]string{m[1], m[3], m[2], m[5], m[4]}, " ")] = n
	}
	return got, dropped
}

// countedFleet counts the store's instances by the gauge's labels (the channel being the
// group's) by listing every instance.
func countedFleet(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	ctx := context.Background()
	want := map[string]int{}
	for _, a := range ok(st.ListApps(ctx))(t) {
		channel := map[string]string{}
		for _, g := range ok(st.ListGroups(ctx, a.ID))(t) {
			channel[g.Name] = g.Channel
		}
		for _, in := range ok(st.ListInstances(ctx, store.InstanceFilter{AppID: a.ID, Limit: 100000}))(t) {
			want[strings.Join([]string{a.ID, in.Group, channel[in.Group], in.Version, string(in.Status)}, " ")]++
		}
	}
	return want
}

// fleetTraffic adds a group edge following channel edge (through the first fixture) and
// checks in hosts through the fixtures in turn: every host checks, some download, some
// install and some fail; a few are in edge.
func fleetTraffic(t *testing.T, fs ...*fixture) {
	ctx, app := context.Background(), store.FlatcarAppID
	ok(fs[0].admin.CreateChannel(ctx, app, "edge"))(t)
	ok(fs[0].admin.SetChannel(ctx, app, "edge", "amd64-usr", "4081.2.0"))(t)
	edge := "edge"
	ok(fs[0].admin.CreateGroup(ctx, app, adminapi.GroupInput{Name: "edge-hosts", Track: &edge, Channel: &edge}))(t)
	for i := range 12 {
		f := fs[i%len(fs)]
		h := host(fmt.Sprintf("gauge-%02d", i), "4081.1.0")
		if i%6 == 5 {
			h.Track = "edge"
		}
		f.send(omaha.NewUpdateCheckRequest(h, false))
		f = fs[(i+1)%len(fs)]
		switch i % 4 {
		case 1:
			f.send(omaha.NewEventRequest(h, omaha.EventDownloadStarted()))
		case 2:
			f.send(omaha.NewEventRequest(h, omaha.EventDownloadStarted()))
			f.send(omaha.NewEventRequest(h, omaha.EventInstalled()))
		case 3:
			f.send(omaha.NewEventRequest(h, omaha.EventError(omaha.ErrorCodeDownloadTransferError, "")))
		}
	}
}

// TestInstancesGauge scrapes /metrics after real check-ins: the gauge equals a count over
// the instances, moves with the next event, and leaves out keys that dropped to zero.
func TestInstancesGauge(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		fleetTraffic(t, f)
		got, dropped := f.scrapeInstances()
		want := countedFleet(t, st)
		if !maps.Equal(got, want) || dropped != 0 {
			t.Fatalf("gauge %v (dropped %d), want %v", got, dropped, want)
		}
		app := store.FlatcarAppID
		if n := got[app+" stable stable 4081.1.0 update-granted"]; n != 3 {
			t.Errorf("hosts granted the update and silent since: %d, want 3 (%v)", n, got)
		}
		if n := got[app+" edge-hosts edge 4081.1.0 downloading"]; n != 1 {
			t.Errorf("hosts of group edge-hosts on channel edge downloading: %d, want 1 (%v)", n, got)
		}
		// The hosts that reported an install report the reboot into the new version.
		for _, m := range []string{"gauge-02", "gauge-06", "gauge-10"} {
			f.send(omaha.NewUpdateCheckRequest(host(m, "4081.2.0"), false, omaha.EventRebooted("4081.1.0")))
		}
		got, _ = f.scrapeInstances()
		if want := countedFleet(t, st); !maps.Equal(got, want) {
			t.Fatalf("after the reboots: gauge %v, want %v", got, want)
		}
		if _, ok := got[app+" stable stable 4081.1.0 installed"]; ok {
			t.Errorf("a key that dropped to zero is still exported: %v", got)
		}
	})
}

// TestInstancesGaugeCap: past the cap the largest series are kept and the others counted
// as dropped.
func TestInstancesGaugeCap(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixtureConfig(t, st, server.Config{MaxInstanceSeries: 2})
		f.setup()
		fleetTraffic(t, f)
		all := countedFleet(t, st)
		got, dropped := f.scrapeInstances()
		if len(got) != 2 || dropped != len(all)-2 {
			t.Fatalf("%d series, %d dropped; want 2 and %d: %v", len(got), dropped, len(all)-2, got)
		}
		least := 1 << 30
		for k, n := range got {
			if all[k] != n {
				t.Errorf("%s: %d, want %d", k, n, all[k])
			}
			least = min(least, n)
		}
		for k, n := range all {
			if _, kept := got[k]; !kept && n > least {
				t.Errorf("%s (%d) dropped while a series of %d was kept", k, n, least)
			}
		}
	})
}

// TestInstancesGaugeTwoServers runs two servers on one PostgreSQL database, checks hosts
// in through both (each host's check through one and its events through the other), and
// scrapes both: each reports exactly the instances there are.
func TestInstancesGaugeTwoServers(t *testing.T) {
	url := cluster.DB(t)
	open := func() store.Store {
		st, err := postgres.Open(context.Background(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	stA, stB := open(), open()
	a, b := newFixture(t, stA), newFixture(t, stB)
	a.setup()
	fleetTraffic(t, a, b)
	want := countedFleet(t, stA)
	total := 0
	for _, n := range want {
		total += n
	}
	if total != 12 {
		t.Fatalf("%d instances, want 12: %v", total, want)
	}
	for name, f := range map[string]*fixture{"A": a, "B": b} {
		if got, _ := f.scrapeInstances(); !maps.Equal(got, want) {
			t.Errorf("server %s: gauge %v, want %v", name, got, want)
		}
	}
}

// unansweredCounts is a store whose instance counts never come: StatusCounts waits for
// its context to end, after recording the deadline it was given.
type unansweredCounts struct {
	store.Store
	deadline chan time.Time
}

func (u unansweredCounts) StatusCounts(ctx context.Context, appID string) ([]store.StatusCount, error) {
	d, _ := ctx.Deadline()
	u.deadline <- d
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestInstancesGaugeStoreNotAnswering: the read has a deadline of InstancesScrapeTimeout;
// when it passes, /metrics still answers with everything else and no instance series.
func TestInstancesGaugeStoreNotAnswering(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := unansweredCounts{Store: st, deadline: make(chan time.Time, 1)}
	f := newFixture(t, u)
	f.setup()
	f.send(omaha.NewUpdateCheckRequest(host("m", "4081.1.0"), false))
	start := time.Now()
	code, body := f.get("/metrics")
	select {
	case d := <-u.deadline:
		if d.IsZero() || d.After(start.Add(server.InstancesScrapeTimeout+time.Second)) {
			t.Errorf("instance counts read with deadline %v, want within %s of %v", d, server.InstancesScrapeTimeout, start)
		}
	default:
		t.Error("the scrape did not read the instance counts")
	}
	if code != 200 || !strings.Contains(body, "switchyard_omaha_server_http_requests_total") {
		t.Fatalf("/metrics: HTTP %d without the other metrics:\n%s", code, body)
	}
	if strings.Contains(body, "switchyard_omaha_server_instances") {
		t.Errorf("instance series exported though the store did not answer")
	}
}
