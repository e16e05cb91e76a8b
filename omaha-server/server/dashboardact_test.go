package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/dashboard"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

var metaRe = regexp.MustCompile(`<meta name="switchyard-(\w+)" content="([^"]*)">`)

// pageMeta signs in with tok and returns the page's switchyard-* meta values.
func pageMeta(t *testing.T, base, tok string) map[string]string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.AddCookie(&http.Cookie{Name: dashboard.CookieName, Value: tok})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	for _, m := range metaRe.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	if out["csrf"] == "" {
		t.Fatalf("the page for the token has no CSRF token:\n%s", b)
	}
	return out
}

// TestDashboardActions drives the dashboard's bridge to the admin API at the HTTP level on
// the real server and SQLite store: only a same-origin request of an admin session with
// its CSRF token writes; a viewer's forged write is the admin API's 403; cross-site
// requests, a missing or another session's CSRF token and routes the page does not use
// are refused; and nothing refused changes the group.
func TestDashboardActions(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := newFixtureConfig(t, st, server.Config{Dashboard: server.NewDashboard(st, nil, nil)})
	f.setup()
	admin, viewer := token(t, st, store.RoleAdmin), token(t, st, store.RoleViewer)
	am, vm := pageMeta(t, f.srv.URL, admin), pageMeta(t, f.srv.URL, viewer)
	if am["act"] != "yes" || am["role"] != "admin" {
		t.Errorf("admin page: %v, want act=yes role=admin", am)
	}
	if vm["act"] != "no" || vm["role"] != "viewer" {
		t.Errorf("viewer page: %v, want act=no role=viewer", vm)
	}
	if am["csrf"] == vm["csrf"] {
		t.Error("two sessions share a CSRF token")
	}
	host := strings.TrimPrefix(f.srv.URL, "http://")
	pause := "/dashboard/api/admin/apps/" + store.FlatcarAppID + "/groups/stable/rollout/pause"
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		cookie     string
		csrf       string
		header     map[string]string
		wantStatus int
		wantError  string
	}{
		{name: "no session", method: "POST", path: pause, csrf: am["csrf"], wantStatus: 401, wantError: "not signed in"},
		{name: "no CSRF token", method: "POST", path: pause, cookie: admin, wantStatus: 403, wantError: "CSRF"},
		{name: "the viewer's CSRF token", method: "POST", path: pause, cookie: admin, csrf: vm["csrf"], wantStatus: 403, wantError: "CSRF"},
		{name: "cross-origin Origin", method: "POST", path: pause, cookie: admin, csrf: am["csrf"],
			header: map[string]string{"Origin": "http://evil.example"}, wantStatus: 403, wantError: "cross-site"},
		{name: "another port of the same host (same site, other origin)", method: "POST", path: pause, cookie: admin, csrf: am["csrf"],
			header: map[string]string{"Origin": "http://127.0.0.1:1"}, wantStatus: 403, wantError: "cross-site"},
		{name: "Sec-Fetch-Site same-site", method: "POST", path: pause, cookie: admin, csrf: am["csrf"],
			header: map[string]string{"Sec-Fetch-Site": "same-site"}, wantStatus: 403, wantError: "cross-site"},
		{name: "Sec-Fetch-Site cross-site", method: "POST", path: pause, cookie: admin, csrf: am["csrf"],
			header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://" + host}, wantStatus: 403, wantError: "cross-site"},
		{name: "viewer session forging a write", method: "POST", path: pause, cookie: viewer, csrf: vm["csrf"],
			header: map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, wantStatus: 403, wantError: "viewer token may only read"},
		{name: "a route the page does not use", method: "POST", path: "/dashboard/api/admin/tokens", cookie: admin, csrf: am["csrf"], wantStatus: 404},
		{name: "viewer reads the instance list", method: "GET", path: "/dashboard/api/admin/instances?app=" + store.FlatcarAppID, cookie: viewer, csrf: vm["csrf"], wantStatus: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, f.srv.URL+tc.path, nil)
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: dashboard.CookieName, Value: tc.cookie})
			}
			if tc.csrf != "" {
				req.Header.Set(dashboard.CSRFHeader, tc.csrf)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantError) {
				t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.wantStatus, tc.wantError)
			}
			if g := ok(st.GetGroup(ctx, store.FlatcarAppID, "stable"))(t); g.Paused {
				t.Fatalf("a refused request paused the group")
			}
		})
	}

	// Another site cannot sign a browser in (into the attacker's session) or out.
	for _, path := range []string{"/login", "/logout"} {
		req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader("token="+admin))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("cross-site POST %s: %d, cookies %v; want 403 and none", path, resp.StatusCode, resp.Cookies())
		}
	}

	// The admin session's same-origin write goes through the admin API's handler and
	// answers with its JSON; the group is paused in the store.
	req, _ := http.NewRequest("POST", f.srv.URL+pause, nil)
	req.AddCookie(&http.Cookie{Name: dashboard.CookieName, Value: admin})
	req.Header.Set(dashboard.CSRFHeader, am["csrf"])
	req.Header.Set("Origin", "http://"+host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var g store.Group
	err = json.NewDecoder(resp.Body).Decode(&g)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || !g.Paused {
		t.Fatalf("admin pause: %d %+v %v", resp.StatusCode, g, err)
	}
	if g := ok(st.GetGroup(ctx, store.FlatcarAppID, "stable"))(t); !g.Paused {
		t.Fatal("the admin's pause is not in the store")
	}
}

// TestInstancePagingByLastCheck: GET /api/v1/instances?sort=last_check pages newest check
// first with its own cursor, keeps the filters, and refuses an unknown sort or a cursor of
// the other order.
func TestInstancePagingByLastCheck(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		f := newFixtureConfig(t, st, server.Config{Now: func() time.Time { return now }})
		f.setup()
		ctx := context.Background()
		var want []string
		for i := range 7 {
			m := fmt.Sprintf("check-%02d", i)
			want = append([]string{m}, want...)
			f.send(omaha.NewUpdateCheckRequest(host(m, "4081.1.0"), false))
			now = now.Add(time.Minute)
		}
		var got []string
		var sizes []int
		after := ""
		for range 10 {
			page, next, err := f.viewer.ListInstancesPage(ctx, store.InstanceFilter{Limit: 3, ByLastCheck: true}, after)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page))
			for _, in := range page {
				got = append(got, in.MachineID)
			}
			if next == "" {
				break
			}
			after = next
		}
		if fmt.Sprint(sizes) != "[3 3 1]" || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pages of %v: %v, want %v", sizes, got, want)
		}
		for _, q := range []string{"sort=size", "sort=last_check&after=" + adminapi.InstanceCursor(store.FlatcarAppID, "check-03")} {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/instances?"+q, nil)
			req.Header.Set("Authorization", "Bearer "+token(t, st, store.RoleViewer))
			resp, err := http.DefaultClient.Do(req)
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
