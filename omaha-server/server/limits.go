package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound what one client can hold of the server. Zero timeouts and sizes take the
// defaults below; a zero (or negative) rate or connection count means no such limit, so
// that tests and benchmarks driving a fleet from one address are not throttled: the
// command's flags default to DefaultOmahaRate and DefaultMaxConns.
//
// Time: net/http's ReadHeaderTimeout (set by the command) bounds the headers; after them
// every route sets a read deadline for its body, measured from the handler's start:
// OmahaReadTimeout for POST /v1/update/, UploadReadTimeout for a payload upload (POST
// /api/v1/apps/{app}/releases), ReadTimeout for everything else. A body still arriving at
// the deadline fails to read, the request ends, and
// switchyard_omaha_server_request_read_timeouts_total{route} counts it.
//
// Memory: every route's body is capped (http.MaxBytesReader): Omaha requests at
// Config.MaxOmahaBodyBytes, uploads at Config.MaxPayloadBytes plus the multipart parts
// (package adminapi), admin JSON at adminapi.MaxJSONBytes, and anything else at
// MaxOtherBodyBytes.
//
// Connections: above MaxConns open connections a new one is closed as soon as it is
// accepted (Server.ConnState, set on the http.Server), counted in
// switchyard_omaha_server_connections_refused_total; …_connections_open is the gauge.
//
// Rate: each source (the peer's IP address; an IPv6 address by its /64) may send
// OmahaRate Omaha requests per second with bursts of OmahaBurst; above it the request is
// answered 429 with Retry-After before its body is read, and
// switchyard_omaha_server_rate_limited_requests_total counts it. Hosts behind one NAT
// share a source: raise the rate for such fleets.
//
// Size: an Omaha request may carry at most MaxOmahaApps apps of MaxOmahaEvents events
// each; a larger one is HTTP 400 and stores nothing.
type Limits struct {
	OmahaReadTimeout  time.Duration
	UploadReadTimeout time.Duration
	ReadTimeout       time.Duration
	MaxConns          int
	OmahaRate         float64 // requests per second per source
	OmahaBurst        int
	MaxOmahaApps      int
	MaxOmahaEvents    int
}

// Defaults of Limits and of Config.MaxOmahaBodyBytes. A Flatcar or Switchyard host sends
// one app with at most a few events in a request of 1 to 2 KiB, checks about once an
// hour and reports each step of an update in a request of its own.
const (
	DefaultOmahaReadTimeout  = 10 * time.Second
	DefaultUploadReadTimeout = time.Hour
	DefaultReadTimeout       = 30 * time.Second
	DefaultMaxConns          = 4096
	DefaultOmahaRate         = 2
	DefaultOmahaBurst        = 60
	DefaultMaxOmahaApps      = 4
	DefaultMaxOmahaEvents    = 8
	DefaultMaxOmahaBodyBytes = 64 << 10
	// MaxOtherBodyBytes caps the body of a route without a cap of its own.
	MaxOtherBodyBytes = 1 << 20
	// maxSources bounds the per-source rate table.
	maxSources = 1 << 16
)

func (l *Limits) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.OmahaReadTimeout, DefaultOmahaReadTimeout)
	def(&l.UploadReadTimeout, DefaultUploadReadTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	if l.OmahaBurst <= 0 {
		l.OmahaBurst = DefaultOmahaBurst
	}
	if l.MaxOmahaApps <= 0 {
		l.MaxOmahaApps = DefaultMaxOmahaApps
	}
	if l.MaxOmahaEvents <= 0 {
		l.MaxOmahaEvents = DefaultMaxOmahaEvents
	}
}

// limiter holds the server's limits and their metrics.
type limiter struct {
	Limits
	sources *sourceLimiter // nil: no rate limit

	open        atomic.Int64
	refusedConn sync.Map // net.Conn → struct{}: closed at StateNew, not counted as open
	refused     prometheus.Counter
	timeouts    *prometheus.CounterVec
	limited     prometheus.Counter
}

func newLimiter(l Limits, now func() time.Time, reg prometheus.Registerer) *limiter {
	l.setDefaults()
	lim := &limiter{Limits: l}
	if l.OmahaRate > 0 {
		lim.sources = newSourceLimiter(l.OmahaRate, l.OmahaBurst, maxSources, now)
	}
	lim.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_connections_refused_total",
		Help: "Connections closed on accept because the server held its maximum.",
	})
	lim.timeouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_request_read_timeouts_total",
		Help: "Requests whose body was still arriving at the route's read deadline, by route.",
	}, []string{"route"})
	lim.limited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_rate_limited_requests_total",
		Help: "Omaha requests answered 429 because their source sent too many.",
	})
	reg.MustRegister(lim.refused, lim.timeouts, lim.limited, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchyard_omaha_server_connections_open",
		Help: "Connections open (counted from accept to close).",
	}, func() float64 { return float64(lim.open.Load()) }))
	return lim
}

// ConnState enforces Limits.MaxConns; set it as the http.Server's ConnState (a server that
// does not leaves connections unbounded).
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	l := s.limits
	switch st {
	case http.StateNew:
		if n := l.open.Add(1); l.MaxConns > 0 && n > int64(l.MaxConns) {
			l.open.Add(-1)
			l.refusedConn.Store(c, struct{}{})
			l.refused.Inc()
			c.Close()
		}
	case http.StateHijacked, http.StateClosed:
		if _, refused := l.refusedConn.LoadAndDelete(c); !refused {
			l.open.Add(-1)
		}
	}
}

// uploadRoute and deltaUploadRoute are the routes whose body is a payload upload (a
// release's payload, a delta payload): the upload's own cap and deadline apply.
const (
	uploadRoute      = "/api/v1/apps/{app}/releases"
	deltaUploadRoute = "/api/v1/apps/{app}/releases/{board}/{version}/deltas"
)

// bound sets the route's read deadline and body cap, and counts a body that ran into the
// deadline.
func (s *Server) bound(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r)
		timeout := s.limits.ReadTimeout
		switch {
		case (route == uploadRoute || route == deltaUploadRoute) && r.Method == http.MethodPost:
			timeout = s.limits.UploadReadTimeout
		case s.omahaRoutes[route]:
			timeout = s.limits.OmahaReadTimeout
		default:
			r.Body = http.MaxBytesReader(w, r.Body, MaxOtherBodyBytes)
		}
		// A connection that cannot take a deadline (an in-memory test recorder) has
		// only the caps.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		body := &deadlineBody{ReadCloser: r.Body}
		r.Body = body
		next.ServeHTTP(w, r)
		if body.hit {
			s.limits.timeouts.WithLabelValues(route).Inc()
			s.log.Info("request body not read by its deadline", "route", route, "remote", r.RemoteAddr, "timeout", timeout)
		}
	})
}

// deadlineBody notes whether a read ran into the connection's read deadline.
type deadlineBody struct {
	io.ReadCloser
	hit bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.hit = true
	}
	return n, err
}

// limitRate answers 429 to a source above its Omaha rate, before reading the body.
func (s *Server) limitRate(next http.Handler) http.Handler {
	if s.limits.sources == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, retry := s.limits.sources.allow(sourceOf(r.RemoteAddr)); !ok {
			s.limits.limited.Inc()
			w.Header().Set("Retry-After", retryAfter(retry))
			w.Header().Set("Connection", "close")
			http.Error(w, "omaha-server: too many requests from this address", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// routeOf is the path template of the matched route ("other" when none matched).
func routeOf(r *http.Request) string {
	if cur := mux.CurrentRoute(r); cur != nil {
		if t, err := cur.GetPathTemplate(); err == nil {
			return t
		}
	}
	return "other"
}
