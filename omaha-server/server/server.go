// Package server assembles omaha-server's HTTP surface as a library, so the command, the
// tests and the benchmarks run the same thing in-process:
//
//	POST /v1/update/                       Omaha v3 (package omahahandler), no token
//	     /api/v1/…                         admin JSON API (package adminapi), bearer tokens
//	GET  /packages/<app>/<board>/<version>/<file>   hosted payloads, no token: HTTP Range,
//	                                       ETag (the SHA-256), Content-Length, If-None-Match,
//	                                       If-Range; or a 307 to a presigned URL (redirect
//	                                       mode); 503 with Retry-After while a store is down
//	GET  /metrics                          Prometheus, from the server's own registry
//	GET  /healthz                          200 when the store answers (and a warning line
//	                                       while a background checkpoint fails)
//	     /tuf/…                            optional: Config.TUF (package tufhost), with
//	                                       GET /api/v1/tuf and POST /api/v1/tuf/roots
//	POST /v1/pre-reboot, /v1/steady-state  optional: Config.FleetLock
//	     /                                 optional: Config.Dashboard
//
// The optional handlers are mounted only when set; everything else is always there.
// With TUF on, the server opens the repository over its own hosted payloads (targets are
// served by SHA-256 from the releases), gates every release that carries targets metadata
// on it (see gateRelease), and Run keeps snapshot and timestamp signed.
// Every route has a read deadline and a body cap, Omaha requests a rate limit per source
// and bounded apps and events, and ConnState bounds the connections (see Limits).
// Payloads live under <DataDir>/packages, or in Config.Payloads (an S3 bucket: package
// payloads/s3store); a store that cannot be reached answers 503 with Retry-After, never
// 500. With Config.PayloadRedirectTTL and a store that presigns, /packages/ answers with a
// redirect to a presigned URL valid that long, so the bytes come from the store.
// Every activity entry (package store) is logged as one line and, with Config.Notify,
// posted to webhooks (activity.go). Every request is counted and timed per route in
// switchyard_omaha_server_http_requests_total and …_http_request_duration_seconds; each group's
// rollout state is exported at scrape time from the cached catalog (rolloutmetrics.go), and
// the fleet by group, channel, version and status from the store's instance counts
// (instancemetrics.go).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/catalog"
	"github.com/switchyard-os/switchyard/omaha-server/hostauth"
	"github.com/switchyard-os/switchyard/omaha-server/omahahandler"
	"github.com/switchyard-os/switchyard/omaha-server/payloads"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/omaha-server/webhook"
)

// DefaultMaxPayloadBytes caps an uploaded payload when Config sets no limit (Flatcar's
// update payloads are about 400 MiB).
const DefaultMaxPayloadBytes = 8 << 30

// Config is the server's configuration.
type Config struct {
	// DataDir holds the hosted payloads (DataDir/packages). Required unless Payloads is set.
	DataDir string
	// Payloads, when set, is the payload store (an s3store.Bucket); New does not close it
	// but Close does. Nil: a payloads.Dir in DataDir/packages.
	Payloads payloads.Store
	// PayloadRedirectTTL, when above zero and Payloads presigns, makes /packages/ answer
	// 307 to a presigned URL of the store that is valid this long.
	PayloadRedirectTTL time.Duration
	// CodebaseURL, when set, is the base URL of hosted payloads in Omaha offers (a CDN in
	// front of /packages/ or of the bucket prefix): <CodebaseURL>/<app>/<board>/<version>/.
	CodebaseURL string
	// PublicURL is the base URL hosts reach the server at; it prefixes payload URLs in
	// offers. Empty: the scheme and Host of each Omaha request.
	PublicURL string
	// ServerName is the Omaha response's server attribute ("switchyard" when empty).
	ServerName string
	// MaxPayloadBytes caps one upload (DefaultMaxPayloadBytes when 0).
	MaxPayloadBytes int64
	// MaxOmahaBodyBytes caps an Omaha request body (DefaultMaxOmahaBodyBytes when 0).
	MaxOmahaBodyBytes int64
	// Limits bound reading time, connections, the Omaha rate per source and the size of
	// an Omaha request (see Limits; zero fields take the defaults).
	Limits Limits
	// CatalogTTL is how long a catalog snapshot is used without checking the store's
	// generation (catalog.DefaultTTL when 0).
	CatalogTTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// TUF, when set, opens the TUF repository (package tufhost) and serves it under /tuf/.
	// Payloads (nil: the hosted releases), Logger and Registerer (nil: the server's) are
	// filled in by the server.
	TUF *tufhost.Config
	// TUFResignInterval is how often Run checks whether the online TUF roles need
	// re-signing (DefaultTUFResignInterval when 0).
	TUFResignInterval time.Duration
	// CheckRelease, when set, vets each release before it is recorded (see adminapi).
	CheckRelease func(ctx context.Context, r store.Release) error
	// FleetLock, when set, serves POST /v1/pre-reboot and /v1/steady-state.
	FleetLock http.Handler
	// Dashboard, when set, serves / (anything no other route matches).
	Dashboard http.Handler
	// HostIdentity, when set, checks host signatures on Omaha requests (package hostauth);
	// New fills in its Keys (the store), Now, Logger and Registerer.
	HostIdentity *hostauth.Config
	// MaxInstanceSeries caps the series of switchyard_omaha_server_instances
	// (MaxInstanceSeries when 0; see instancemetrics.go).
	MaxInstanceSeries int
	// Notify, when set, posts halts, resumes, pauses, promotions and publishes to its URLs
	// (package webhook; see activity.go); New fills in its Logger and Registerer.
	Notify *webhook.Config
}

func (c Config) maxInstanceSeries() int {
	if c.MaxInstanceSeries > 0 {
		return c.MaxInstanceSeries
	}
	return MaxInstanceSeries
}

// Server is omaha-server's HTTP handler.
type Server struct {
	router   *mux.Router
	store    store.Store
	payloads payloads.Store
	redirect time.Duration // PayloadRedirectTTL when the store presigns, else 0
	catalog  *catalog.Cache
	registry *prometheus.Registry
	log      *slog.Logger

	tuf         *tufhost.Host // nil without Config.TUF
	releases    *releaseIndex // the TUF host's payloads, when they are the hosted ones
	resignEvery time.Duration

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	limits      *limiter
	omahaRoutes map[string]bool // path templates of the Omaha endpoint

	notifier *webhook.Notifier // nil without Config.Notify
}

// New builds the server over st. Close releases what it opened (not st); Run keeps what
// needs keeping in the background (the TUF timestamp).
func New(ctx context.Context, cfg Config, st store.Store, logger *slog.Logger) (*Server, error) {
	if cfg.DataDir == "" && cfg.Payloads == nil {
		return nil, errors.New("server: a data directory or a payload store is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPayloadBytes <= 0 {
		cfg.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if cfg.MaxOmahaBodyBytes <= 0 {
		cfg.MaxOmahaBodyBytes = DefaultMaxOmahaBodyBytes
	}
	pd := cfg.Payloads
	if pd == nil {
		dir, err := payloads.Open(filepath.Join(cfg.DataDir, "packages"), cfg.MaxPayloadBytes)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		pd = dir
	}
	s := &Server{
		router:   mux.NewRouter(),
		store:    st,
		payloads: pd,
		catalog:  catalog.New(st, cfg.CatalogTTL, cfg.Now),
		registry: prometheus.NewRegistry(),
		log:      logger,
	}
	if _, ok := pd.(presigner); ok && cfg.PayloadRedirectTTL > 0 {
		s.redirect = cfg.PayloadRedirectTTL
	}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_http_requests_total",
		Help: "HTTP requests served, by route and status code.",
	}, []string{"route", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchyard_omaha_server_http_request_duration_seconds",
		Help:    "HTTP request latency, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route"})
	s.registry.MustRegister(s.requests, s.duration)
	s.limits = newLimiter(cfg.Limits, cfg.Now, s.registry)
	s.registry.MustRegister(newRolloutCollector(s.catalog))
	if c, ok := st.(checkpointer); ok {
		s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_omaha_server_store_checkpoint_failing",
			Help: "1 while the store's last background WAL checkpoint failed (SQLite), else 0.",
		}, func() float64 {
			if c.CheckpointErr() != nil {
				return 1
			}
			return 0
		}))
	}

	checkRelease := cfg.CheckRelease
	var checkDelta func(context.Context, store.Delta) error
	var tufAdmin adminapi.TUFRepository
	if cfg.TUF != nil {
		if err := s.openTUF(ctx, cfg); err != nil {
			pd.Close()
			return nil, err
		}
		checkRelease = s.gateRelease(cfg.CheckRelease)
		checkDelta = s.gateDelta
		tufAdmin = s.tuf
	}

	var hosts omahahandler.HostVerifier
	if cfg.HostIdentity != nil {
		hc := *cfg.HostIdentity
		hc.Keys, hc.Now, hc.Logger, hc.Registerer = st, cfg.Now, logger, s.registry
		v, err := hostauth.New(hc)
		if err != nil {
			pd.Close()
			return nil, fmt.Errorf("server: %w", err)
		}
		hosts = v
	}
	omahaH := omahahandler.New(omahahandler.Config{
		Catalog: s.catalog, Store: st, PublicURL: cfg.PublicURL, ServerName: cfg.ServerName, PayloadBaseURL: cfg.CodebaseURL,
		MaxBodyBytes: cfg.MaxOmahaBodyBytes, Now: cfg.Now, Logger: logger, Registerer: s.registry,
		Hosts:   hosts,
		MaxApps: s.limits.MaxOmahaApps, MaxEvents: s.limits.MaxOmahaEvents,
	})
	r := s.router
	r.Use(s.instrument, s.bound)
	s.omahaRoutes = map[string]bool{"/v1/update/": true, "/v1/update": true}
	for route := range s.omahaRoutes {
		r.Handle(route, s.limitRate(omahaH)).Methods(http.MethodPost)
	}
	api := adminapi.New(adminapi.Config{
		Store: st, Payloads: pd, Invalidate: s.catalog.Invalidate, Logger: logger,
		MaxPayloadBytes: cfg.MaxPayloadBytes, CheckRelease: checkRelease, TUF: tufAdmin,
		CheckDelta: checkDelta,
	})
	api.Register(r)
	r.HandleFunc("/packages/{app}/{board}/{version}/{name}", s.servePayload).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", s.refreshCatalog(s.metrics(cfg.maxInstanceSeries()))).Methods(http.MethodGet)
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet, http.MethodHead)
	if s.tuf != nil {
		r.PathPrefix("/tuf/").Handler(http.StripPrefix("/tuf", s.tuf.Handler()))
	}
	if cfg.FleetLock != nil {
		// Every method: the FleetLock handler answers a non-POST with the protocol's JSON
		// 405 itself.
		r.Handle("/v1/pre-reboot", cfg.FleetLock)
		r.Handle("/v1/steady-state", cfg.FleetLock)
	}
	if cfg.Dashboard != nil {
		r.PathPrefix("/").Handler(withAdmin(cfg.Dashboard, api))
	}
	if err := s.watchActivity(ctx, cfg.Notify); err != nil {
		pd.Close()
		return nil, err
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Registry is the server's Prometheus registry (served at /metrics).
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// InvalidateCatalog makes the next Omaha request reload the catalog (for writes made to the
// store directly, not through the admin API).
func (s *Server) InvalidateCatalog() { s.catalog.Invalidate() }

// Close stops the activity log's observer and the webhook workers, and releases the
// payload directory.
func (s *Server) Close() error {
	s.stopActivity()
	return s.payloads.Close()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r)
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		s.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}

// checkpointer is a store that copies its WAL back in the background (sqlite.Store).
type checkpointer interface{ CheckpointErr() error }

// healthz answers 200 while the store answers. A failing background checkpoint does not
// stop the server (the writer's own checkpoint still bounds the WAL) but is reported in
// the body, logged, and counted in …_store_checkpoint_failing.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.Generation(ctx); err != nil {
		s.log.Error("health check: store", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
	if c, ok := s.store.(checkpointer); ok {
		if err := c.CheckpointErr(); err != nil {
			s.log.Warn("health check: background checkpoint failing", "err", err)
			fmt.Fprintf(w, "warning: background checkpoint failing: %v\n", err)
		}
	}
}

// presigner is a payload store that can hand out short-lived URLs (s3store.Bucket).
type presigner interface {
	Presign(ctx context.Context, method string, key payloads.Key, ttl time.Duration) (string, error)
}

// RetryAfterSeconds is the Retry-After of a 503 while a store is unreachable.
const RetryAfterSeconds = 30

// unavailable answers 503 with Retry-After: hosts back off and come again.
func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	http.Error(w, "payload store unavailable, retry later", http.StatusServiceUnavailable)
}

func (s *Server) servePayload(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	rel, err := s.store.GetRelease(r.Context(), v["app"], v["version"], v["board"])
	if err == nil && rel.FileName != v["name"] {
		rel, err = s.hostedDelta(r.Context(), rel, v["name"])
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!rel.Hosted || rel.FileName != v["name"])) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.log.Error("payload download: store", "path", r.URL.Path, "err", err)
		unavailable(w)
		return
	}
	key := payloads.Key{App: rel.AppID, Board: rel.Board, Version: rel.Version, Name: rel.FileName}
	if s.redirect > 0 {
		u, err := s.payloads.(presigner).Presign(r.Context(), r.Method, key, s.redirect)
		if err != nil {
			s.log.Error("payload download: presigning", "path", r.URL.Path, "err", err)
			unavailable(w)
			return
		}
		// 307 keeps the method (a HEAD stays a HEAD, which its presigned URL is for) and
		// the client keeps its Range header.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusTemporaryRedirect)
		return
	}
	f, err := s.payloads.Open(r.Context(), key)
	if errors.Is(err, payloads.ErrUnavailable) {
		s.log.Error("payload download: payload store unavailable", "path", r.URL.Path, "err", err)
		unavailable(w)
		return
	}
	if err != nil {
		s.log.Error("payload download: release without its file", "path", r.URL.Path, "err", err)
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	// A release never changes once published: its SHA-256 is a strong validator.
	w.Header().Set("ETag", `"`+rel.SHA256+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, rel.FileName, rel.CreatedAt, f)
}

// hostedDelta returns, in the shape of a release, the delta payload of rel named name (a
// delta's file lives beside its release's full payload); ErrNotFound when there is none.
func (s *Server) hostedDelta(ctx context.Context, rel store.Release, name string) (store.Release, error) {
	ds, err := s.store.ListDeltas(ctx, rel.AppID, rel.Version, rel.Board)
	if err != nil {
		return store.Release{}, err
	}
	for _, d := range ds {
		if d.FileName == name {
			return store.Release{AppID: d.AppID, Version: d.Version, Board: d.Board, FileName: d.FileName, Size: d.Size,
				SHA256: d.SHA256, Hosted: d.Hosted, CreatedAt: d.CreatedAt}, nil
		}
	}
	return store.Release{}, fmt.Errorf("server: release %s has no payload %q: %w", rel.Version, name, store.ErrNotFound)
}
