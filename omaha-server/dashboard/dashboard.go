// Package dashboard serves omaha-server's operator page at "/": channels and their releases,
// groups with rollout progress and status counts, the fleet's version distribution over time
// as a chart, and instance search with history.
//
// The page is one embedded HTML file with plain JavaScript and inline SVG: nothing to build,
// nothing fetched from elsewhere. It reads JSON from /dashboard/api/, which this package
// serves from a Source the server wires in (the store, behind the small interface below).
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
}

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
	return &Dashboard{
		cfg:   cfg,
		index: template.Must(template.New("index").Parse(indexHTML)),
		login: template.Must(template.New("login").Parse(loginHTML)),
	}
}

// Handler serves "/", "/login", "/logout" and "/dashboard/api/…".
func (d *Dashboard) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", d.page)
	m.HandleFunc("POST /login", d.signIn)
	m.HandleFunc("POST /logout", d.signOut)
	m.Handle("GET /dashboard/api/summary", d.api(d.summary))
	m.Handle("GET /dashboard/api/instances", d.api(d.search))
	m.Handle("GET /dashboard/api/instances/{machine}", d.api(d.instance))
	d.registerActivity(m) // activity.go
	return m
}

var errNoSession = errors.New("dashboard: not signed in")

func (d *Dashboard) check(ctx context.Context, token string) error {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenLen {
		return errNoSession
	}
	t, err := d.cfg.Tokens.LookupToken(ctx, d.cfg.Hash(token))
	if err != nil {
		return errNoSession
	}
	if t.Role != store.RoleAdmin && t.Role != store.RoleViewer {
		return errNoSession
	}
	return nil
}

func (d *Dashboard) session(r *http.Request) error {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return errNoSession
	}
	return d.check(r.Context(), c.Value)
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
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:")
	w.Header().Set("X-Frame-Options", "DENY")
	if tok := r.URL.Query().Get("token"); tok != "" {
		if err := d.check(r.Context(), tok); err != nil {
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
	if err := d.session(r); err != nil {
		d.renderLogin(w, http.StatusOK, "")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := d.index.Execute(w, nil); err != nil {
		d.cfg.Logger.Warn("dashboard: rendering page", "err", err)
	}
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := d.login.Execute(w, struct{ Error string }{msg}); err != nil {
		d.cfg.Logger.Warn("dashboard: rendering sign-in", "err", err)
	}
}

func (d *Dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		d.renderLogin(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	tok := r.PostForm.Get("token")
	if err := d.check(r.Context(), tok); err != nil {
		d.renderLogin(w, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	d.setCookie(w, tok)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (d *Dashboard) signOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (d *Dashboard) api(fn func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err := d.session(r); err != nil {
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
	Timeline []VersionSample `json:"timeline"`
	Fleet    int             `json:"fleet"`
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
	s := Summary{Apps: apps, App: r.URL.Query().Get("app")}
	if s.App == "" && len(apps) > 0 {
		s.App = apps[0].ID
	}
	if s.App == "" {
		return s, nil
	}
	if len(s.App) > maxQueryLen {
		return nil, badRequest("app id too long")
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
	if s.Timeline, err = d.cfg.Source.VersionTimeline(ctx, s.App, d.cfg.Now().Add(-timelineSpan)); err != nil {
		return nil, fmt.Errorf("dashboard: reading the version timeline: %w", err)
	}
	return s, nil
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

func (d *Dashboard) instance(r *http.Request) (any, error) {
	id := r.PathValue("machine")
	if id == "" || len(id) > maxQueryLen {
		return nil, badRequest("bad machine id")
	}
	out, err := d.cfg.Source.GetInstances(r.Context(), id, historyLimit)
	if err != nil {
		return nil, fmt.Errorf("dashboard: reading instance %s: %w", id, err)
	}
	return out, nil
}
