package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// TestBrowserOnTheServer renders the dashboard of a whole server on the real SQLite store
// in headless Chromium: a small fleet checks in through the Omaha endpoint (stable rolls
// forward, one host fails; beta halts after two rollbacks), the version distribution is
// sampled three times, and the rendered page must show the groups with their counts, the
// halt with its reason, the version chart and the instance list. The screenshot goes to
// build/screenshots/dashboard-server.png.
func TestBrowserOnTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIPPING the browser test: chromium is not installed (apt-get install chromium)")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := newFixtureConfig(t, st, server.Config{Dashboard: server.NewDashboard(st, nil, nil)})
	f.setup()
	ok(f.admin.CreateChannel(ctx, store.FlatcarAppID, "beta"))(t)
	ok(f.admin.SetChannel(ctx, store.FlatcarAppID, "beta", "amd64-usr", "4081.2.0"))(t)
	beta := "beta"
	ok(f.admin.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "beta", Track: &beta, Channel: &beta}))(t)
	ok(f.admin.SetPolicy(ctx, store.FlatcarAppID, "beta", policy.Policy{HaltFailures: 2, HaltOf: 4}, 0))(t)

	sample := func(ago time.Duration) {
		now := time.Now()
		if err := st.SampleVersions(ctx, now.Add(-ago), now.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	hostOn := func(name, track string, i int) omaha.Host {
		h := host(fmt.Sprintf("%s-%02d-5c1f0e7a9b2d4c6e8f", name, i), "4081.1.0")
		h.Track, h.MachineAlias = track, fmt.Sprintf("%s-node-%02d", name, i)
		return h
	}
	// 30 hosts on stable, 8 on beta, all offered 4081.2.0.
	for i := range 30 {
		if o, _ := f.send(omaha.NewUpdateCheckRequest(hostOn("stable", "stable", i), false)).Offer(omaha.FlatcarAppID); o == nil {
			t.Fatalf("stable host %d got no offer", i)
		}
	}
	for i := range 8 {
		if o, _ := f.send(omaha.NewUpdateCheckRequest(hostOn("beta", "beta", i), false)).Offer(omaha.FlatcarAppID); o == nil {
			t.Fatalf("beta host %d got no offer", i)
		}
	}
	sample(3 * time.Hour)
	// 12 stable hosts update and reboot into 4081.2.0; one fails to write the payload.
	for i := range 12 {
		h := hostOn("stable", "stable", i)
		f.send(omaha.NewEventRequest(h, omaha.EventDownloadStarted(), omaha.EventDownloadFinished(), omaha.EventInstalled()))
		h.Version = "4081.2.0"
		f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRebooted("4081.1.0")))
	}
	f.send(omaha.NewEventRequest(hostOn("stable", "stable", 12), omaha.EventDownloadStarted(), omaha.EventError(omaha.ErrorCode(7), "")))
	sample(90 * time.Minute)
	// Two beta hosts roll back: 2 of the last 4 attempts failed, beta halts.
	for i := range 2 {
		f.send(omaha.NewEventRequest(hostOn("beta", "beta", i), omaha.EventDownloadStarted(), omaha.EventRollback(0)))
	}
	sample(0)
	g := ok(f.admin.GetGroup(ctx, store.FlatcarAppID, "beta"))(t)
	if !g.Halted() {
		t.Fatalf("beta did not halt: %+v", g)
	}

	link := f.srv.URL + "/?token=" + token(t, st, store.RoleViewer)
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=10000"}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, chromium, append(args, "--dump-dom", link)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	dom := string(out)
	if strings.Contains(dom, "Admin or viewer token") {
		t.Fatal("the browser was left on the sign-in form")
	}
	for _, want := range []string{
		"Switchyard fleet", "(38 instances)",
		// The groups, their counts and the rollout states.
		"stable → stable", "beta → beta", "40% on 4081.2.0", "complete 12", "update-granted 17", "error 1",
		"rolled-back 2", "update-granted 6",
		`class="tag halt"`, "halted", `<div class="muted halt-reason">` + g.HaltReason + "</div>",
		// The version chart: one area per version, with its legend.
		"<svg", "aria-label=\"versions over time\"", "<title>4081.1.0</title>", "<title>4081.2.0</title>", "peak 38",
		// The instance list the page loads.
		"stable-00-5c1f0e7a9b2d4c6e8f (stable-node-00)", "beta-07-5c1f0e7a9b2d4c6e8f (beta-node-07)",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if t.Failed() {
		os.WriteFile(filepath.Join(t.TempDir(), "dom.html"), out, 0o644)
		t.Logf("rendered DOM:\n%s", dom)
	}
	shots := filepath.Join(moduleRoot(t), "build", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(shots, "dashboard-server.png")
	os.Remove(shot)
	if _, err := exec.CommandContext(cctx, chromium, append(args, "--window-size=1280,1300", "--screenshot="+shot, link)...).Output(); err != nil {
		t.Fatalf("chromium --screenshot: %v", err)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot %s missing or empty: %v", shot, err)
	}
	t.Logf("screenshot saved at %s", shot)
}
