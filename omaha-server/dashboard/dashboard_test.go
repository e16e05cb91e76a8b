package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// memSource is a Source over fixed data. The server's integration test runs the dashboard
// on the real store; this one checks the page and its sign-in on their own.
type memSource struct {
	instances []store.Instance
	timeline  []VersionSample
}

func (m *memSource) ListApps(context.Context) ([]store.App, error) {
	return []store.App{{ID: store.FlatcarAppID, Name: "Flatcar"}}, nil
}

func (m *memSource) ListChannels(context.Context, string) ([]store.Channel, error) {
	return []store.Channel{
		{Name: "stable", Releases: map[string]store.Release{"amd64-usr": {Version: "4081.2.0", Board: "amd64-usr"}}},
		{Name: "beta", Releases: map[string]store.Release{"amd64-usr": {Version: "4116.1.0", Board: "amd64-usr"}}},
	}, nil
}

func (m *memSource) ListGroups(context.Context, string) ([]store.Group, error) {
	return []store.Group{
		{Name: "prod-eu", Track: "stable", Channel: "stable", UpdatesEnabled: true},
		{Name: "canary", Track: "beta", Channel: "beta", UpdatesEnabled: true},
	}, nil
}

func (m *memSource) StatusCounts(context.Context, string) ([]StatusCount, error) {
	out := map[[3]string]int{}
	for _, i := range m.instances {
		out[[3]string{i.Group, string(i.Status), i.Version}]++
	}
	var counts []StatusCount
	for k, n := range out {
		counts = append(counts, StatusCount{Group: k[0], Status: store.Status(k[1]), Version: k[2], Count: n})
	}
	return counts, nil
}

func (m *memSource) VersionTimeline(context.Context, string, time.Time) ([]VersionSample, error) {
	return m.timeline, nil
}

func (m *memSource) SearchInstances(_ context.Context, _, q string, limit int) ([]store.Instance, error) {
	var out []store.Instance
	for _, i := range m.instances {
		if strings.HasPrefix(i.MachineID, q) || i.Version == q {
			out = append(out, i)
		}
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (m *memSource) GetInstances(_ context.Context, id string, _ int) ([]store.InstanceDetail, error) {
	for _, i := range m.instances {
		if i.MachineID == id {
			return []store.InstanceDetail{{Instance: i, History: []store.StatusChange{{Status: store.StatusComplete, Version: i.Version, At: i.LastCheck}}}}, nil
		}
	}
	return nil, store.ErrNotFound
}

func (m *memSource) ListEvents(_ context.Context, _, id string, _ int) ([]store.Event, error) {
	return []store.Event{{MachineID: id, Type: 3, Result: 0, ErrorCode: 9, Version: "4081.2.0"}}, nil
}

type tokens map[string]store.Role

func (t tokens) LookupToken(_ context.Context, hash string) (store.Token, error) {
	for tok, role := range t {
		if hashToken(tok) == hash {
			return store.Token{Role: role}, nil
		}
	}
	return store.Token{}, store.ErrNotFound
}

func hashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

const viewerToken = "syt_viewer-token-for-tests"

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	src := &memSource{}
	for i := range 40 {
		v, st := "4081.2.0", store.StatusComplete
		switch {
		case i%5 == 0:
			v, st = "4054.1.0", store.StatusDownloading
		case i%7 == 0:
			v, st = "4054.1.0", store.StatusError
		}
		g := "prod-eu"
		if i < 6 {
			g = "canary"
		}
		src.instances = append(src.instances, store.Instance{MachineID: fmt.Sprintf("machine-%03d", i), Group: g, Version: v, Status: st, LastCheck: now, AppID: store.FlatcarAppID, Board: "amd64-usr"})
	}
	for d := 10; d >= 0; d-- {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		src.timeline = append(src.timeline, VersionSample{At: at, Version: "4054.1.0", Count: 4 * d}, VersionSample{At: at, Version: "4081.2.0", Count: 40 - 4*d})
	}
	d := New(Config{Source: src, Tokens: tokens{viewerToken: store.RoleViewer}, Hash: hashToken, Now: func() time.Time { return now }})
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func TestSignIn(t *testing.T) {
	srv := newTestServer(t)
	jar, _ := cookiejar.New(nil)
	// The Secure cookie is kept for http://127.0.0.1 by browsers; Go's jar drops it, so the
	// test carries it by hand.
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := c.Get(srv.URL + "/dashboard/api/summary")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("summary without a session: %d, want 401", resp.StatusCode)
	}

	resp, err = c.PostForm(srv.URL+"/login", url.Values{"token": {"syt_wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("bad token: %d with %d cookies, want 401 and none", resp.StatusCode, len(resp.Cookies()))
	}

	resp, err = c.Get(srv.URL + "/?token=" + viewerToken + "&app=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("?token= link: %d, want 303", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "token") || loc != "/?app=x" {
		t.Fatalf("redirect to %q: want the clean URL /?app=x", loc)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", cookie)
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/dashboard/api/summary", nil)
	req.AddCookie(cookie)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Summary
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("summary: %d %v", resp.StatusCode, err)
	}
	if len(s.Groups) != 2 || s.Fleet != 40 {
		t.Fatalf("summary has %d groups and %d instances, want 2 and 40", len(s.Groups), s.Fleet)
	}
	for _, g := range s.Groups {
		if g.Name == "prod-eu" && g.OnTarget == 0 {
			t.Errorf("prod-eu shows no instance on its target: %+v", g)
		}
	}

	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/dashboard/api/instances?limit=100000", nil)
	req.AddCookie(cookie)
	resp2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Fatalf("huge limit: %d, want 400", resp2.StatusCode)
	}
}

// TestBrowser loads the page in Debian's chromium, headless, through the ?token= link, and
// checks what a person would see; it saves a screenshot under build/screenshots.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIPPING the browser test: chromium is not installed (apt-get install chromium; make test installs it)")
	}
	srv := newTestServer(t)
	link := srv.URL + "/?token=" + viewerToken
	profile := t.TempDir()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--virtual-time-budget=10000"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, append(args, "--dump-dom", link)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	dom := string(out)
	for _, want := range []string{"Switchyard fleet", "prod-eu", "canary", "4081.2.0", "4116.1.0", "(40 instances)", "<svg", "machine-"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if strings.Contains(dom, "Admin or viewer token") {
		t.Fatal("the browser was left on the sign-in form")
	}
	shots := filepath.Join("..", "..", "build", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, _ := filepath.Abs(filepath.Join(shots, "dashboard.png"))
	os.Remove(shot)
	if _, err := exec.CommandContext(ctx, chromium, append(args, "--window-size=1280,1100", "--screenshot="+shot, link)...).Output(); err != nil {
		t.Fatalf("chromium --screenshot: %v", err)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
		t.Fatalf("screenshot %s missing or empty: %v", shot, err)
	}
	t.Logf("screenshot saved at %s", shot)
}
