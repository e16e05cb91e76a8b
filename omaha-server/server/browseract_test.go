package server_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the acting dashboard's screenshot to docs/dashboard.png")

// css is a CSS selector for chromedp.
type css = chromedp.CSS

// TestBrowserActs drives the dashboard of a whole server on the real SQLite store in
// Debian's headless Chromium through chromedp, as an operator would: sign in with an admin
// token, pause a group and confirm, see the state in the page and in the store, resume; a
// halted group's resume warns that it reaches the whole group, and cancelling it changes
// nothing; edit a policy; filter the instances and open one, its error code named. The
// page refreshes itself: a change made through the API appears without a reload. Then a
// viewer session finds no controls and its forged write is 403, and a page of another
// origin cannot write with the admin's cookie. The screenshot (with the halted group's
// confirmation open) goes to build/screenshots/dashboard-acting.png, and with
// -update-screenshot to docs/dashboard.png.
func TestBrowserActs(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIPPING the browser test: chromium is not installed (apt-get install chromium; make test installs TEST_DEBS)")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := newFixtureConfig(t, st, server.Config{Dashboard: server.NewDashboard(st, nil, nil)})
	f.setup()
	app := store.FlatcarAppID
	ok(f.admin.CreateChannel(ctx, app, "beta"))(t)
	ok(f.admin.SetChannel(ctx, app, "beta", "amd64-usr", "4081.2.0"))(t)
	beta := "beta"
	ok(f.admin.CreateGroup(ctx, app, adminapi.GroupInput{Name: "beta", Track: &beta, Channel: &beta}))(t)
	ok(f.admin.SetPolicy(ctx, app, "beta", policy.Policy{HaltFailures: 2, HaltOf: 4}, 0))(t)
	hostOn := func(track string, i int) omaha.Host {
		h := host(fmt.Sprintf("%s-%02d-5c1f0e7a9b2d4c6e8f", track, i), "4081.1.0")
		h.Track, h.MachineAlias = track, fmt.Sprintf("%s-node-%02d", track, i)
		return h
	}
	for i := range 12 {
		f.send(omaha.NewUpdateCheckRequest(hostOn("stable", i), false))
	}
	for i := range 4 {
		f.send(omaha.NewUpdateCheckRequest(hostOn("beta", i), false))
	}
	for i := range 5 {
		h := hostOn("stable", i)
		f.send(omaha.NewEventRequest(h, omaha.EventDownloadStarted(), omaha.EventDownloadFinished(), omaha.EventInstalled()))
		h.Version = "4081.2.0"
		f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRebooted("4081.1.0")))
	}
	// stable-07 fails to download (error code 9); two beta hosts roll back and beta halts.
	f.send(omaha.NewEventRequest(hostOn("stable", 7), omaha.EventDownloadStarted(), omaha.EventError(omaha.ErrorCodeDownloadTransferError, "")))
	for i := range 2 {
		f.send(omaha.NewEventRequest(hostOn("beta", i), omaha.EventDownloadStarted(), omaha.EventRollback(0)))
	}
	if g := ok(st.GetGroup(ctx, app, "beta"))(t); !g.Halted() {
		t.Fatalf("beta did not halt: %+v", g)
	}
	// One sample an hour ago: the chart has history, per group too, and the live point.
	if err := st.SampleVersions(ctx, time.Now().Add(-time.Hour), time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	adminTok, viewerTok := token(t, st, store.RoleAdmin), token(t, st, store.RoleViewer)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1750),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true))
	tctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTimeout()
	actx, cancelAlloc := chromedp.NewExecAllocator(tctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// do runs steps. The page re-renders its tables on every refresh (an action's, and the
	// periodic one), so a button found just before a refresh is gone when it is clicked
	// ("Could not find node"): then nothing was clicked, and the step is tried again, as an
	// operator would click again. Dialogs are never re-rendered, so only a step's first
	// click, on a table, can meet a stale node.
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		err := chromedp.Do(bctx, steps...)
		for try := 1; err != nil && try < 3 && strings.Contains(err.Error(), "Could not find node with given id"); try++ {
			err = chromedp.Do(bctx, steps...)
		}
		if err != nil {
			dom, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("%s: %v\npage text:\n%s", what, err, dom)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("evaluating %s: %v", js, err)
		}
		return v
	}
	group := func(name string) store.Group { t.Helper(); return ok(st.GetGroup(ctx, app, name))(t) }
	// waitFor waits (polling in the page, no sleep) until the JavaScript condition holds.
	waitFor := func(what, cond string) {
		t.Helper()
		do(what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(40*time.Second)))
	}
	signIn := func(tok string) {
		t.Helper()
		do("sign in", chromedp.Navigate(f.srv.URL+"/"), chromedp.WaitVisible(css("#token")),
			chromedp.SendKeys(css("#token"), tok), chromedp.Submit(css("#token")),
			chromedp.WaitVisible(css(`#groups tr[data-group="stable"]`)))
	}

	// An admin signs in: controls for every group, a live chart with its axes.
	signIn(adminTok)
	waitFor("the instance list", `document.querySelectorAll("#instances tbody tr").length === 16`)
	if n := eval(`String(document.querySelectorAll("button[data-action]").length)`); n == "0" {
		t.Fatal("the admin's page has no controls")
	}
	chart := eval(`document.getElementById("chart").innerHTML + document.getElementById("legend").textContent`)
	for _, want := range []string{"<svg", ">hosts<", `class="ytick">16<`, "now (", "<title>4081.1.0</title>", "<title>4081.2.0</title>", "4081.2.0 (5 now)", "4081.1.0 (11 now)"} {
		if !strings.Contains(chart, want) {
			t.Errorf("the chart lacks %q before any sample: %s", want, chart)
		}
	}

	// Narrowed to beta: its four hosts, from its own samples.
	do("narrow the chart to beta", chromedp.SetValue(css("#chart-group"), "beta"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("chart-group").dispatchEvent(new Event("change"))`))
	waitFor("beta's chart", `document.getElementById("chart").textContent.includes("group beta")`)
	chart = eval(`document.getElementById("chart").innerHTML + document.getElementById("legend").textContent + "|" + document.getElementById("chart-note").textContent + "|"`)
	for _, want := range []string{`class="ytick">4<`, "4081.1.0 (4 now)", "||"} {
		if !strings.Contains(chart, want) {
			t.Errorf("beta's chart lacks %q: %s", want, chart)
		}
	}
	do("the chart of all groups", chromedp.SetValue(css("#chart-group"), ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("chart-group").dispatchEvent(new Event("change"))`))
	waitFor("the chart of all groups", `document.getElementById("chart").textContent.includes("all groups")`)

	// Pause stable, confirm: the page and the store say paused. Resume.
	do("pause stable", chromedp.Click(css(`button[data-action="pause"][data-group="stable"]`)),
		chromedp.WaitVisible(css("#confirm-ok")), chromedp.Click(css("#confirm-ok")))
	waitFor("stable shown paused", `!!document.querySelector('#groups tr[data-group="stable"][data-state="paused"]')`)
	if !group("stable").Paused {
		t.Fatal("the page shows stable paused, the store does not")
	}
	do("resume stable", chromedp.Click(css(`button[data-action="resume"][data-group="stable"]`)),
		chromedp.WaitVisible(css("#confirm-ok")), chromedp.Click(css("#confirm-ok")))
	waitFor("stable shown active", `!!document.querySelector('#groups tr[data-group="stable"][data-state="active"]')`)
	if group("stable").Paused {
		t.Fatal("the page shows stable resumed, the store does not")
	}

	// Resuming the halted beta warns that it reaches the whole group; cancel changes nothing.
	do("open beta's resume", chromedp.Click(css(`button[data-action="resume"][data-group="beta"]`)), chromedp.WaitVisible(css("#confirm-warn")))
	if w := eval(`document.getElementById("confirm-warn").textContent`); !strings.Contains(w, "halted automatically") || !strings.Contains(w, "all 4 hosts") {
		t.Errorf("the halted group's confirmation warns %q", w)
	}
	shot := ok(chromedp.Run(bctx, chromedp.FullScreenshot(100)))(t)
	do("cancel", chromedp.Click(css("#confirm-cancel")), chromedp.WaitNotVisible(css("#confirm-ok")))
	if !group("beta").Halted() {
		t.Fatal("a cancelled resume resumed the halted group")
	}
	do("resume beta", chromedp.Click(css(`button[data-action="resume"][data-group="beta"]`)),
		chromedp.WaitVisible(css("#confirm-ok")), chromedp.Click(css("#confirm-ok")))
	waitFor("beta shown active", `!!document.querySelector('#groups tr[data-group="beta"][data-state="active"]')`)
	if g := group("beta"); g.Halted() || g.Paused {
		t.Fatalf("beta after the confirmed resume: %+v", g)
	}

	// Edit stable's policy: 30% and a blocked version, saved through PUT …/policy.
	do("edit the policy", chromedp.Click(css(`button[data-action="policy"][data-group="stable"]`)), chromedp.WaitVisible(css("#p-percent")),
		chromedp.SetValue(css("#p-percent"), "30"), chromedp.SetValue(css("#p-blocked"), "4081.3.0"),
		chromedp.Click(css("#policy-save")), chromedp.WaitVisible(css("#confirm-ok")), chromedp.Click(css("#confirm-ok")))
	waitFor("the policy shown", `document.querySelector('#groups tr[data-group="stable"]').textContent.includes("30% cohort")`)
	if p := group("stable").Policy; p.PercentOrAll() != 30 || len(p.Blocked) != 1 || p.Blocked[0] != "4081.3.0" {
		t.Fatalf("stable's policy in the store: %+v", p)
	}

	// Filter the instances by status and open the failed one: code 9 is named.
	do("filter by status", chromedp.SetValue(css("#f-status"), "error"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-status").dispatchEvent(new Event("change"))`))
	waitFor("only the failed host", `document.querySelectorAll("#instances tbody tr").length === 1`)
	if v := eval(`document.querySelector("#instances tbody").textContent`); !strings.Contains(v, "9 — download transfer error") {
		t.Errorf("the instance list does not name the error code: %s", v)
	}
	do("open the instance", chromedp.Click(css(`#instances tr[data-machine^="stable-07"]`)), chromedp.WaitVisible(css("#history table.events")))
	if v := eval(`document.getElementById("history").textContent`); !strings.Contains(v, "9 — download transfer error") || !strings.Contains(v, "UpdateDownloadStarted") {
		t.Errorf("the instance view lacks the named error code or the events: %s", v)
	}

	// The page refreshes itself: a pause made through the API shows without a reload, and
	// the open instance view stays.
	ok(f.admin.SetPaused(ctx, app, "beta", true))(t)
	waitFor("the refresh shows beta paused", `!!document.querySelector('#groups tr[data-group="beta"][data-state="paused"]')`)
	if v := eval(`String(!!document.querySelector("#history table.events"))`); v != "true" {
		t.Error("the refresh closed the instance view")
	}

	// A page of another origin (same host, another port: same site, so the Strict cookie
	// is sent) posts a pause to the dashboard with the admin's session: refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/dashboard/api/admin/apps/%s/groups/stable/rollout/pause"></form><script>document.getElementById("f").submit()</script>`, f.srv.URL, app)
	}))
	defer evil.Close()
	do("the cross-site page", chromedp.Navigate(evil.URL), chromedp.WaitReady(css("body")))
	waitFor("the refused cross-site write", `document.body.innerText.includes("cross-site request refused")`)
	if group("stable").Paused {
		t.Fatal("a cross-site form paused the group")
	}

	// A viewer: no controls, and a write forged from the page is 403.
	do("sign out", chromedp.Navigate(f.srv.URL+"/"), chromedp.WaitVisible(css(`#groups tr[data-group="stable"]`)),
		chromedp.Click(css(`header button[type="submit"]`)), chromedp.WaitVisible(css("#token")))
	signIn(viewerTok)
	waitFor("the viewer's instance list", `document.querySelectorAll("#instances tbody tr").length > 0`)
	if n := eval(`String(document.querySelectorAll("button[data-action], #groups .controls button").length)`); n != "0" {
		t.Errorf("the viewer's page has %s controls", n)
	}
	forged := eval(`fetch("/dashboard/api/admin/apps/` + app + `/groups/stable/rollout/pause", {method: "POST",
		headers: {"X-CSRF-Token": document.querySelector('meta[name="switchyard-csrf"]').content}}).then(async r => r.status + " " + await r.text())`)
	if !strings.HasPrefix(forged, "403 ") || !strings.Contains(forged, "viewer") {
		t.Errorf("the viewer's forged write: %s", forged)
	}
	if group("stable").Paused {
		t.Fatal("the viewer's forged write paused the group")
	}

	shots := filepath.Join(moduleRoot(t), "build", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	out := []string{filepath.Join(shots, "dashboard-acting.png")}
	if *updateScreenshot {
		out = append(out, filepath.Join(moduleRoot(t), "docs", "dashboard.png"))
	}
	for _, p := range out {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot saved at %s", p)
	}
}
