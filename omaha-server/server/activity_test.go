package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/webhook"
)

// syncBuffer is a log destination written by the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// activityLines returns the JSON log lines with msg "activity".
func (b *syncBuffer) activityLines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == "activity" {
			out = append(out, m)
		}
	}
	return out
}

// TestActivityThroughCheckins: with --notify-url, an automatic halt tripped by real Omaha
// check-ins (a grant, then the host's rollback) writes an activity entry with the
// reason and the system as actor, logs it as one JSON line, and reaches the webhook as a
// "halt"; the operator's resume through the admin API is recorded under the admin token
// and sent as a "resume". Viewers may read the log; bad filters are 400.
func TestActivityThroughCheckins(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		got := make(chan webhook.Message, 16)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var m webhook.Message
			body, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(body, &m); err != nil {
				t.Errorf("webhook body %q: %v", body, err)
			}
			got <- m
		}))
		defer recv.Close()
		var logs syncBuffer
		f := &fixture{t: t, st: st, dataDir: t.TempDir()}
		s, err := server.New(t.Context(), server.Config{DataDir: f.dataDir, ServerName: "test",
			Notify: &webhook.Config{URLs: []string{recv.URL}, Backoff: time.Millisecond}},
			st, slog.New(slog.NewJSONHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f.handler = s
		f.srv = httptest.NewServer(s)
		t.Cleanup(f.srv.Close)
		f.admin, _ = adminclient.New(f.srv.URL, token(t, st, store.RoleAdmin), f.srv.Client())
		f.viewer, _ = adminclient.New(f.srv.URL, token(t, st, store.RoleViewer), f.srv.Client())
		f.payload = make([]byte, 300<<10)
		rand.Read(f.payload)
		ctx := context.Background()
		next := func() webhook.Message {
			t.Helper()
			select {
			case m := <-got:
				return m
			case <-time.After(10 * time.Second):
				t.Fatal("no webhook call within 10s")
				return webhook.Message{}
			}
		}

		f.setup() // publishes a release and sets the channel: two webhook calls
		for _, want := range []string{webhook.TypePublish, webhook.TypePromote} {
			if m := next(); m.Type != want {
				t.Fatalf("setup sent %+v, want %s", m, want)
			}
		}
		f.setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 1}) // a policy edit: logged, not sent
		h := host("halt-1", "4081.1.0")
		if !f.offered(h.MachineID, h.Version) {
			t.Fatal("no offer before the halt")
		}
		f.send(omaha.NewEventRequest(h, omaha.EventInstalled()))
		f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRollback(0)))
		g := ok(f.admin.GetGroup(ctx, store.FlatcarAppID, "stable"))(t)
		if !g.Halted() {
			t.Fatalf("group not halted: %+v", g)
		}

		m := next()
		if m.Type != webhook.TypeHalt || m.Action != store.ActionGroupHalt || m.Reason != g.HaltReason || m.Actor != store.SystemActor ||
			m.Subject != "group/stable" || m.AppID != store.FlatcarAppID {
			t.Fatalf("webhook %+v, want the halt with reason %q", m, g.HaltReason)
		}
		halts := ok(f.viewer.ListActivity(ctx, store.ActivityFilter{Action: store.ActionGroupHalt}))(t)
		if len(halts) != 1 || halts[0].ID != m.ID || halts[0].Reason != g.HaltReason {
			t.Fatalf("halts in the log %+v", halts)
		}

		haltID := m.ID
		ok(f.admin.SetPaused(ctx, store.FlatcarAppID, "stable", false))(t)
		m = next()
		if m.Type != webhook.TypeResume || m.ActorTokenID == 0 || !strings.HasPrefix(m.Actor, "token ") ||
			!strings.Contains(string(m.Before), g.HaltReason) {
			t.Fatalf("resume webhook %+v", m)
		}

		all := ok(f.viewer.ListActivity(ctx, store.ActivityFilter{AppID: store.FlatcarAppID}))(t)
		var actions []string
		for _, a := range all {
			actions = append(actions, string(a.Action))
		}
		want := "group.resume group.halt group.policy group.create channel.set channel.create release.create app.create"
		if strings.Join(actions, " ") != want {
			t.Errorf("activity %q, want %q", strings.Join(actions, " "), want)
		}
		// One log line per entry, with the entry's fields.
		everything := ok(f.admin.ListActivity(ctx, store.ActivityFilter{}))(t) // the tokens' entries too
		lines := logs.activityLines(t)
		if len(lines) != len(everything) || len(everything) != len(all)+2 {
			t.Errorf("%d activity log lines for %d entries (%d of the app)", len(lines), len(everything), len(all))
		}
		var haltLine map[string]any
		for _, l := range lines {
			if l["action"] == string(store.ActionGroupHalt) {
				haltLine = l
			}
		}
		if haltLine == nil || haltLine["reason"] != g.HaltReason || haltLine["actor"] != store.SystemActor ||
			haltLine["subject"] != "group/stable" || haltLine["id"] != float64(haltID) {
			t.Errorf("halt log line %v", haltLine)
		}

		// Paging through the API walks every entry once; bad filters are refused.
		paged := ok(f.admin.ListActivity(ctx, store.ActivityFilter{Limit: 0}))(t)
		page, cursor, err := f.admin.ListActivityPage(ctx, store.ActivityFilter{Limit: 3}, "")
		if err != nil || len(page) != 3 || cursor == "" {
			t.Fatalf("first page of 3: %d entries, next %q, %v", len(page), cursor, err)
		}
		rest := ok(f.admin.ListActivity(ctx, store.ActivityFilter{BeforeID: page[2].ID}))(t)
		if len(page)+len(rest) != len(paged) {
			t.Errorf("pages hold %d+%d entries, want %d", len(page), len(rest), len(paged))
		}
		for _, q := range []string{"action=group.explode", "limit=0", "limit=1001", "after=x", "since=yesterday"} {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/activity?"+q, nil)
			req.Header.Set("Authorization", "Bearer "+token(t, st, store.RoleViewer))
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("?%s: %d, want 400", q, resp.StatusCode)
			}
		}
	})
}

// TestActivityRetention: a Maintenance without an activity setting drops entries older
// than DefaultRetainActivity (the events' default) and keeps newer ones; a negative
// setting keeps them all.
func TestActivityRetention(t *testing.T) {
	if server.DefaultRetainActivity != server.DefaultRetainEvents {
		t.Errorf("activity kept %v, events %v", server.DefaultRetainActivity, server.DefaultRetainEvents)
	}
	for _, tt := range []struct {
		name     string
		retain   time.Duration
		wantLeft int
	}{
		{"default", 0, 1},
		{"kept", -1, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			st := sqliteStore(t, clock)
			ctx := context.Background()
			ok(st.CreateApp(ctx, store.App{ID: store.FlatcarAppID, Name: "Flatcar"}))(t)
			mu.Lock()
			now = now.Add(server.DefaultRetainActivity + time.Hour)
			mu.Unlock()
			ok(st.CreateChannel(ctx, store.Channel{AppID: store.FlatcarAppID, Name: "stable"}))(t)

			mctx, cancel := context.WithCancel(ctx)
			pruned := make(chan error, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				server.RunMaintenance(mctx, pruneSignal{Store: st, pruned: pruned},
					server.Maintenance{SampleEvery: -1, RetainActivity: tt.retain, Now: clock})
			}()
			select { // retention runs at start (instances and events by default too)
			case err := <-pruned:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("retention did not run")
			}
			cancel()
			<-done
			left := ok(st.ListActivity(ctx, store.ActivityFilter{}))(t)
			if len(left) != tt.wantLeft || left[0].Action != store.ActionChannelCreate {
				t.Errorf("left %d entries (%+v), want %d", len(left), left, tt.wantLeft)
			}
		})
	}
}

// TestActivityPanel: the dashboard's activity panel endpoint lists the latest entries of
// the application (a halt with its reason among them) for a signed-in viewer only, the
// page carries the panel and its script, and headless Chromium renders the entries into
// it (skipped without chromium or in -short mode).
func TestActivityPanel(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t, nil)
	f := newFixtureConfig(t, st, server.Config{Dashboard: server.NewDashboard(st, nil, nil)})
	f.setup()
	f.setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 1})
	h := host("panel-1", "4081.1.0")
	if !f.offered(h.MachineID, h.Version) {
		t.Fatal("no offer")
	}
	f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRollback(0)))
	g := ok(f.admin.GetGroup(ctx, store.FlatcarAppID, "stable"))(t)
	if !g.Halted() {
		t.Fatalf("not halted: %+v", g)
	}
	viewer := token(t, st, store.RoleViewer)
	get := func(path string, signedIn bool) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
		if signedIn {
			req.AddCookie(&http.Cookie{Name: "switchyard_dashboard", Value: viewer})
		}
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get("/dashboard/api/activity?app="+store.FlatcarAppID+"&limit=3", true)
	var entries []store.Activity
	if err := json.Unmarshal(body, &entries); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("activity: %d %s", resp.StatusCode, body)
	}
	if len(entries) != 3 || entries[0].Action != store.ActionGroupHalt || entries[0].Reason != g.HaltReason {
		t.Fatalf("latest entries %+v", entries)
	}
	if resp, _ := get("/dashboard/api/activity", false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a session: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get("/dashboard/api/activity?limit=1000", true); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("limit=1000: %d, want 400", resp.StatusCode)
	}
	if resp, js := get("/dashboard/activity.js", false); resp.StatusCode != http.StatusOK ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(string(js), "/dashboard/api/activity") {
		t.Errorf("activity.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, page := get("/", true)
	if !strings.Contains(string(page), `<section class="wide" id="activity">`) || !strings.Contains(string(page), `<script src="/dashboard/activity.js"></script>`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("the page lacks the panel, its script or a CSP that allows it")
	}

	if testing.Short() {
		t.Skip("the browser half is skipped in -short mode")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIPPING the browser half: chromium is not installed (apt-get install chromium)")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=10000", "--dump-dom", f.srv.URL+"/?token="+viewer).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	dom := string(out)
	i := strings.Index(dom, `id="activity"`)
	if i < 0 {
		t.Fatalf("no activity panel in the rendered page")
	}
	panel := dom[i:]
	for _, want := range []string{`<tr class="activity-entry halt">`, "group.halt", g.HaltReason, "group/stable", "system", "channel.set"} {
		if !strings.Contains(panel, want) {
			t.Errorf("the rendered panel lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("rendered panel:\n%s", panel)
	}
}
