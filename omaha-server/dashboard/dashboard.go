// Package dashboard serves omaha-server's operator page at "/": channels and their releases,
// groups with rollout progress and status counts, the fleet's version distribution over time
// as a chart (with a live last point from the current counts, narrowed to one group on
// request), instances filtered and paged, each with its status history and events, error
// codes named. The page polls every Config.Refresh and keeps open forms and the instance
// view across a refresh.
//
// The page is one embedded HTML file and one script (static/dashboard.js) with inline SVG:
// nothing to build, nothing fetched from elsewhere, and a Content-Security-Policy that runs
// no inline script. It reads JSON from /dashboard/api/, which this package serves from a
// Source the server wires in (the store, behind the small interface below).
//
// # Acting
//
// With Config.Admin set (the admin API's handler), an admin session acts from the page:
// pause and resume a group (also after an automatic halt), edit a group's policy (which also
// blocks versions), point a channel at a release or promote it from another channel. The
// page sends each action to /dashboard/api/admin/<admin API path>; act (actions.go) checks
// the request and forwards it to the admin API's own handlers with the session's token as
// the bearer token, so the rules, validation, versioning and the viewer's 403 are the
// CLI's, not a second implementation. Only the routes the page uses are forwarded.
// Every request through the bridge must be same-origin (Sec-Fetch-Site and Origin, when
// the browser sends them) and carry the session's CSRF token in X-CSRF-Token: an HMAC
// keyed by the session token, handed to the page in a meta tag, so another site can
// neither forge a write nor read the token. A viewer's page has no controls. Actions that
// reach a whole fleet (promote, set a channel's release, resume a halted group, a 100%
// rollout) ask for confirmation in the page, as does every other write.
//
// # Sign-in
//
// The dashboard takes the admin API's tokens (viewer or admin). A sign-in form posts the token;
// a link with ?token= does the same once and redirects to the clean URL, so the token does not
// stay in the address bar or the history. Either sets a cookie that is HttpOnly, Secure and
// SameSite=Strict, holding the token itself (the server stores only its hash, so the cookie
// is checked exactly like a bearer token on every request). Browsers treat http://localhost
// as a secure context, so the Secure cookie also works on a loopback server without TLS.
package dashboard

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// CookieName is the session cookie's name.
const CookieName = "switchyard_dashboard"

// Bounds on what one request may ask for.
const (
	maxSearchResults = 200
	maxQueryLen      = 128
	maxTokenLen      = 256
	historyLimit     = 50
	timelineSpan     = 30 * 24 * time.Hour
)

//go:embed static/index.html
var indexHTML string

//go:embed static/login.html
var loginHTML string

//go:embed static/dashboard.js
var dashboardJS []byte

// StatusCount is how many instances of a group are in one status on one version.
type StatusCount struct {
	Group   string       `json:"group"`
	Status  store.Status `json:"status"`
	Version string       `json:"version"`
	Count   int          `json:"count"`
}

// VersionSample is how many instances ran a version at one point in time.
type VersionSample struct {
	At      time.Time `json:"at"`
	Version string    `json:"version"`
	Count   int       `json:"count"`
	// Live marks the last point, computed from the current counts rather than sampled.
	Live bool `json:"live,omitempty"`
}

// RolloutState is a group's rollout state as the policy engine keeps it.
type RolloutState struct {
	Group      string `json:"group"`
	Paused     bool   `json:"paused"`
	HaltReason string `json:"halt_reason,omitempty"`
	Percent    int    `json:"percent"`
}

// Source is what the dashboard reads.
type Source interface {
	ListEvents(ctx context.Context, appID, machineID string, limit int) ([]store.Event, error)
	ListApps(ctx context.Context) ([]store.App, error)
	ListChannels(ctx context.Context, appID string) ([]store.Channel, error)
	ListGroups(ctx context.Context, appID string) ([]store.Group, error)
	StatusCounts(ctx context.Context, appID string) ([]StatusCount, error)
	VersionTimeline(ctx context.Context, appID string, since time.Time) ([]VersionSample, error)
	SearchInstances(ctx context.Context, appID, query string, limit int) ([]store.Instance, error)
	GetInstances(ctx context.Context, machineID string, historyLimit int) ([]store.InstanceDetail, error)
}

// Rollouts optionally adds rollout state (pause, halt, percentage) per group.
type Rollouts interface {
	RolloutStates(ctx context.Context, appID string) ([]RolloutState, error)
}

// GroupTimelines optionally adds the version distribution of one group over time.
type GroupTimelines interface {
	GroupVersionTimeline(ctx context.Context, appID, group string, since time.Time) ([]VersionSample, error)
}

// Tokens checks a token's hash, as the admin API does.
type Tokens interface {
	LookupToken(ctx context.Context, hash string) (store.Token, error)
}

// Config wires a Dashboard.
type Config struct {
	Source Source
	// Rollouts may be nil.
	Rollouts Rollouts
	Tokens   Tokens
	// Hash turns a token into its stored form.
	Hash   func(token string) string
	Logger *slog.Logger
	Now    func() time.Time
	// Admin, when set, is the admin API (serving /api/v1/…) the page's actions go to; nil
	// leaves the page read-only.
	Admin http.Handler
	// Refresh is how often the page reloads its data (DefaultRefresh when 0).
	Refresh time.Duration
}

// DefaultRefresh is how often the page reloads its data.
const DefaultRefresh = 15 * time.Second

// Dashboard is the operator page and its JSON endpoints.
type Dashboard struct {
	cfg   Config
	index *template.Template
	login *template.Template
}

// New returns a Dashboard.
func New(cfg Config) *Dashboard {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	return &Dashboard{
		cfg:   cfg,
		index: template.Must(template.New("index").Parse(indexHTML)),
		login: template.Must(template.New("login").Parse(loginHTML)),
	}
}

// WithAdmin returns a copy of d whose page acts through the admin API admin.
func (d *Dashboard) WithAdmin(admin http.Handler) *Dashboard {
	c := *d
	c.cfg.Admin = admin
	return &c
}

// Handler serves "/", "/login", "/logout" and "/dashboard/…".
func (d *Dashboard) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", d.page)
	m.HandleFunc("GET /dashboard/dashboard.js", d.script)
	m.HandleFunc("POST /login", d.signIn)
	m.HandleFunc("POST /logout", d.signOut)
	m.Handle("GET /dashboard/api/summary", d.api(d.summary))
	m.Handle("GET /dashboard/api/instances", d.api(d.search))
	m.Handle("GET /dashboard/api/instances/{machine}", d.api(d.instance))
	m.Handle("GET /dashboard/api/error-names", d.api(d.errorNames))
	d.registerActions(m)
	d.registerActivity(m) // activity.go
	return m
}

var errNoSession = errors.New("dashboard: not signed in")

// check returns the role of a valid token.
func (d *Dashboard) check(ctx context.Context, token string) (store.Role, error) {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenLen {
		return "", errNoSession
	}
	t, err := d.cfg.Tokens.LookupToken(ctx, d.cfg.Hash(token))
	if err != nil {
		return "", errNoSession
	}
	if t.Role != store.RoleAdmin && t.Role != store.RoleViewer {
		return "", errNoSession
	}
	return t.Role, nil
}

// session returns the request's session token and its role.
func (d *Dashboard) session(r *http.Request) (string, store.Role, error) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return "", "", errNoSession
	}
	tok := strings.TrimSpace(c.Value)
	role, err := d.check(r.Context(), tok)
	return tok, role, err
}

func (d *Dashboard) setCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: strings.TrimSpace(token), Path: "/",
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
		MaxAge: int((12 * time.Hour).Seconds()),
	})
}

func (d *Dashboard) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if tok := r.URL.Query().Get("token"); tok != "" {
		if _, err := d.check(r.Context(), tok); err != nil {
			d.renderLogin(w, http.StatusUnauthorized, "That token is not valid.")
			return
		}
		d.setCookie(w, tok)
		q := r.URL.Query()
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return
	}
	tok, role, err := d.session(r)
	if err != nil {
		d.renderLogin(w, http.StatusOK, "")
		return
	}
	page := pageData{Role: string(role), CSRF: csrfToken(tok), Refresh: int(d.cfg.Refresh / time.Millisecond)}
	page.CanAct = role == store.RoleAdmin && d.cfg.Admin != nil
	page.Bridge = d.cfg.Admin != nil
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := d.index.Execute(w, page); err != nil {
		d.cfg.Logger.Warn("dashboard: rendering page", "err", err)
	}
}

// pageData is what the page template fills in: the session's role, whether it may act,
// whether the admin API is reachable (without it, the instance list is the search), its
// CSRF token and the refresh interval in milliseconds.
type pageData struct {
	Role    string
	CanAct  bool
	Bridge  bool
	CSRF    string
	Refresh int
}

func (d *Dashboard) script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(dashboardJS)
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := d.login.Execute(w, struct{ Error string }{msg}); err != nil {
		d.cfg.Logger.Warn("dashboard: rendering sign-in", "err", err)
	}
}

func (d *Dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	// A sign-in posted by another site would put the victim in the attacker's session.
	if err := sameOrigin(r); err != nil {
		d.renderLogin(w, http.StatusForbidden, "Sign in from this server's own page.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		d.renderLogin(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	tok := r.PostForm.Get("token")
	if _, err := d.check(r.Context(), tok); err != nil {
		d.renderLogin(w, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	d.setCookie(w, tok)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (d *Dashboard) signOut(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (d *Dashboard) api(fn func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if _, _, err := d.session(r); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		v, err := fn(r)
		if err != nil {
			status := http.StatusInternalServerError
			var bad badRequest
			switch {
			case errors.As(err, &bad):
				status = http.StatusBadRequest
			case errors.Is(err, store.ErrNotFound):
				status = http.StatusNotFound
			default:
				d.cfg.Logger.Error("dashboard: query failed", "path", r.URL.Path, "err", err)
			}
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(v)
	})
}

type badRequest string

func (b badRequest) Error() string { return "dashboard: " + string(b) }

// Summary is what the page's overview shows for one application.
type Summary struct {
	Apps     []store.App     `json:"apps"`
	App      string          `json:"app"`
	Channels []store.Channel `json:"channels"`
	Groups   []GroupSummary  `json:"groups"`
	// Timeline is the version distribution over time, of the whole application or of
	// Group, ending in a live point from the current counts.
	Timeline []VersionSample `json:"timeline"`
	// Group is the group the timeline is narrowed to ("" for the whole application);
	// GroupHistory is false when only the live point could be given for it.
	Group        string `json:"group,omitempty"`
	GroupHistory bool   `json:"group_history,omitempty"`
	Fleet        int    `json:"fleet"`
}

// GroupSummary is a group with its status counts and rollout progress.
type GroupSummary struct {
	store.Group
	Counts map[store.Status]int `json:"counts"`
	Total  int                  `json:"total"`
	// OnTarget counts instances already on the channel's release for their board.
	OnTarget int           `json:"on_target"`
	Target   []string      `json:"target"`
	Rollout  *RolloutState `json:"rollout,omitempty"`
}

func (d *Dashboard) summary(r *http.Request) (any, error) {
	ctx := r.Context()
	apps, err := d.cfg.Source.ListApps(ctx)
	if err != nil {
		return nil, fmt.Errorf("dashboard: listing apps: %w", err)
	}
	s := Summary{Apps: apps, App: r.URL.Query().Get("app"), Group: r.URL.Query().Get("group")}
	if s.App == "" && len(apps) > 0 {
		s.App = apps[0].ID
	}
	if s.App == "" {
		return s, nil
	}
	if len(s.App) > maxQueryLen || len(s.Group) > maxQueryLen {
		return nil, badRequest("app id or group too long")
	}
	if s.Channels, err = d.cfg.Source.ListChannels(ctx, s.App); err != nil {
		return nil, fmt.Errorf("dashboard: listing channels: %w", err)
	}
	groups, err := d.cfg.Source.ListGroups(ctx, s.App)
	if err != nil {
		return nil, fmt.Errorf("dashboard: listing groups: %w", err)
	}
	counts, err := d.cfg.Source.StatusCounts(ctx, s.App)
	if err != nil {
		return nil, fmt.Errorf("dashboard: counting statuses: %w", err)
	}
	var states map[string]RolloutState
	if d.cfg.Rollouts != nil {
		rs, err := d.cfg.Rollouts.RolloutStates(ctx, s.App)
		if err != nil {
			return nil, fmt.Errorf("dashboard: reading rollouts: %w", err)
		}
		states = map[string]RolloutState{}
		for _, st := range rs {
			states[st.Group] = st
		}
	}
	targets := map[string][]string{}
	for _, c := range s.Channels {
		for _, rel := range c.Releases {
			targets[c.Name] = append(targets[c.Name], rel.Version)
		}
	}
	for _, g := range groups {
		gs := GroupSummary{Group: g, Counts: map[store.Status]int{}, Target: targets[g.Channel]}
		for _, c := range counts {
			if c.Group != g.Name {
				continue
			}
			gs.Counts[c.Status] += c.Count
			gs.Total += c.Count
			for _, t := range gs.Target {
				if c.Version == t {
					gs.OnTarget += c.Count
				}
			}
		}
		if st, ok := states[g.Name]; ok {
			gs.Rollout = &st
		}
		s.Fleet += gs.Total
		s.Groups = append(s.Groups, gs)
	}
	now := d.cfg.Now()
	since := now.Add(-timelineSpan)
	switch gt, ok := d.cfg.Source.(GroupTimelines); {
	case s.Group == "":
		s.Timeline, err = d.cfg.Source.VersionTimeline(ctx, s.App, since)
	case ok:
		s.Timeline, err = gt.GroupVersionTimeline(ctx, s.App, s.Group, since)
		s.GroupHistory = true
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard: reading the version timeline: %w", err)
	}
	s.Timeline = append(s.Timeline, livePoint(counts, s.Group, now)...)
	return s, nil
}

// livePoint is the version distribution now, from the status counts (of one group, or of
// all when group is ""): the chart shows where the fleet stands before the first sample.
func livePoint(counts []StatusCount, group string, now time.Time) []VersionSample {
	byVersion := map[string]int{}
	var versions []string
	for _, c := range counts {
		if group != "" && c.Group != group {
			continue
		}
		if _, ok := byVersion[c.Version]; !ok {
			versions = append(versions, c.Version)
		}
		byVersion[c.Version] += c.Count
	}
	sort.Strings(versions)
	out := make([]VersionSample, 0, len(versions))
	for _, v := range versions {
		out = append(out, VersionSample{At: now, Version: v, Count: byVersion[v], Live: true})
	}
	return out
}

func (d *Dashboard) search(r *http.Request) (any, error) {
	q := r.URL.Query()
	query, app := strings.TrimSpace(q.Get("q")), q.Get("app")
	if len(query) > maxQueryLen || len(app) > maxQueryLen {
		return nil, badRequest("query too long")
	}
	limit := 50
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxSearchResults {
			return nil, badRequest(fmt.Sprintf("limit must be 1..%d", maxSearchResults))
		}
		limit = n
	}
	out, err := d.cfg.Source.SearchInstances(r.Context(), app, query, limit)
	if err != nil {
		return nil, fmt.Errorf("dashboard: searching instances: %w", err)
	}
	if out == nil {
		out = []store.Instance{}
	}
	return out, nil
}
