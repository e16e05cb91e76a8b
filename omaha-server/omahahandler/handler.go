// Package omahahandler is omaha-server's Omaha v3 endpoint (POST /v1/update/), answering
// Flatcar's update_engine and Switchyard's update-engine.
//
// Per request: the body is capped (http.MaxBytesReader and the omaha package's parse
// limits) and parsed without entity expansion; malformed XML, a protocol other than 3.0 or
// an oversized body get HTTP 400/413 with a one-line text reason and write nothing. With
// Config.Hosts set, a request carrying a host signature (package omaha/hostsig) has its
// body hashed while parsed and a signature that does not hold is HTTP 401, nothing
// written; each app's report then has a standing (package hostauth), and one that does not
// count is recorded like any other but leaves the group's rollout counters alone. Then,
// for each <app>:
//
//  1. invalid fields (omaha.App.Validate): an invalid appid or version → the app's error
//     status (error-invalidAppId, error-invalidVersion); any other invalid field of any
//     app (a machine id with a quote, a track with spaces, a control character in oem, a
//     bidi override in the alias) is the client's error with no Omaha app status: the
//     whole request is answered HTTP 400 with the field named, checked before any app is
//     stored; nothing written;
//  2. unknown application → error-unknownApplication; a track no group of the application
//     has → error-unknownApplicationOrGroup; nothing written;
//  3. the update decision (decide.go), from the cached catalog (package catalog) and the
//     group's rollout policy (package policy): pause, halt, pin, blocked versions, floors,
//     maintenance windows, the percentage cohort and the caps. A host that was granted a
//     version and is still on its way there is offered it again without the cohort,
//     window and cap checks (a grant is never taken back, except by a pause, a halt or a
//     block). Every hold is noupdate, never an error (a Flatcar engine counts any other
//     status as error 34);
//  4. one store transaction for the whole request (store.Store.CheckinAll) upserts each
//     app's instance, appends its status history and stores its events (transitions in
//     apply): every app is recorded or none, and a failed write is HTTP 500 and the host
//     retries the whole request, duplicating nothing. An app whose group's policy counts
//     (caps, timeout, automatic halt) takes the counted path (as store.RolloutCheckin):
//     the group row locked, counters read, the decision made and the grant or outcome
//     recorded in the same transaction; others the plain path. Refused apps (1, 2) write
//     nothing and do not stop the others;
//  5. the answer: ping ack, updatecheck, one <event status="ok"/> per event.
//
// An offer carries everything a Flatcar engine reads: codebase ending in "/" (this
// server's /packages/<app>/<board>/<version>/ for hosted payloads, the directory of the
// URL otherwise), manifest version, package name and size, hash (base64 SHA-1, when known)
// and hash_sha256 (hex), required="true", and the postinstall action with sha256 (base64
// of the SHA-256) and DisablePayloadBackoff="true".
//
// Delta payloads: when the host sent delta_okay="true" and the granted release has a delta
// whose source version is the version the host runs, the offer names the delta's file,
// size and hashes instead (same codebase: it is hosted beside the full payload) and marks
// the postinstall action IsDeltaPayload="true", as Flatcar's and ChromeOS's servers do.
// The grant is the release's version either way, so the rollout policy (percentages, caps,
// in-flight counts, halts) treats a delta grant exactly like a full one. A host whose
// delta fails checks in again with delta_okay="false" and gets the full payload.
package omahahandler

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/catalog"
	"github.com/switchyard-os/switchyard/omaha-server/hostauth"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// DefaultBoard is assumed when a request names none (Nebraska does the same).
const DefaultBoard = "amd64-usr"

// Checkins is the part of the store the handler writes.
type Checkins interface {
	// CheckinAll records every app of one request in one transaction (store.Store).
	CheckinAll(ctx context.Context, apps []store.AppCheckin) error
}

// Config wires a Handler.
type Config struct {
	Catalog *catalog.Cache
	Store   Checkins
	// PublicURL is the base URL hosts reach this server at (https://updates.example.com);
	// empty means the scheme and Host of each request.
	PublicURL string
	// PayloadBaseURL, when set, replaces <PublicURL>/packages as the base of hosted
	// payloads' codebase (a CDN): <PayloadBaseURL>/<app>/<board>/<version>/.
	PayloadBaseURL string
	// ServerName is the response's server attribute.
	ServerName string
	// MaxBodyBytes caps a request body (omaha.DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	Now          func() time.Time
	Logger       *slog.Logger
	// Registerer receives the handler's metrics (none when nil).
	Registerer prometheus.Registerer
	// Hosts, when set, checks host signatures (package hostauth): a refused signature is
	// HTTP 401, and a report that does not count leaves the group's rollout counters alone.
	Hosts HostVerifier

	// MaxApps and MaxEvents cap the apps of a request and the events of one app (the
	// omaha package's defaults when 0); a larger request is HTTP 400 and stores nothing.
	MaxApps, MaxEvents int
}

// Handler serves the Omaha endpoint.
type Handler struct {
	cfg     Config
	limits  omaha.Limits
	log     *slog.Logger
	checks  *prometheus.CounterVec
	events  *prometheus.CounterVec
	refused *prometheus.CounterVec
	holds   *prometheus.CounterVec
	failed  *prometheus.CounterVec
}

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "switchyard"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = omaha.DefaultMaxBodyBytes
	}
	h := &Handler{cfg: cfg, limits: omaha.Limits{MaxBodyBytes: cfg.MaxBodyBytes, MaxApps: cfg.MaxApps, MaxEvents: cfg.MaxEvents}, log: cfg.Logger}
	h.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_update_checks_total",
		Help: "Update checks answered, by result (update, noupdate, error).",
	}, []string{"result"})
	h.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_events_total",
		Help: "Omaha events received, by type/result (other for unknown pairs).",
	}, []string{"event"})
	h.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_refused_requests_total",
		Help: "Omaha requests or apps refused, by reason.",
	}, []string{"reason"})
	h.holds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_rollout_holds_total",
		Help: "Update checks held by a group's rollout policy (answered noupdate), by reason.",
	}, []string{"reason"})
	h.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_update_failures_total",
		Help: "Error events (result 0) recorded, by application and base Omaha error code (other for codes outside the known ones and 2000-2999).",
	}, []string{"app", "code"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(h.checks, h.events, h.refused, h.holds, h.failed)
	}
	return h
}

var knownEvents = map[[2]int]string{
	{3, 0}: "3/0", {3, 1}: "3/1", {3, 2}: "3/2", {3, 9}: "3/9", {13, 1}: "13/1", {14, 1}: "14/1", {800, 1}: "800/1",
}

// failureCode is the code label of an error event: the base code (flags dropped) when it
// is one Flatcar's engine defines or an HTTP status report (2000-2999), so that anonymous
// hosts cannot create series at will; "other" otherwise and "none" without a code.
func failureCode(c *omaha.ErrorCode) string {
	if c == nil {
		return "none"
	}
	b := c.Base()
	if _, isHTTP := b.HTTPStatus(); isHTTP || b <= omaha.ErrorCodeRollback || b == omaha.ErrorCodeDownloadIncomplete {
		return strconv.FormatUint(uint64(b), 10)
	}
	return "other"
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := h.hashBody(r, http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes+1))
	req, err := h.limits.ParseRequest(body.src)
	if err != nil {
		status := omaha.HTTPStatus(err)
		reason := "malformed"
		switch {
		case errors.Is(err, omaha.ErrBodyTooLarge):
			reason = "too-large"
		case errors.Is(err, omaha.ErrProtocol):
			reason = "protocol"
		case errors.Is(err, omaha.ErrLimit):
			reason = "limit"
		}
		if status == http.StatusInternalServerError {
			// A body that could not be read (the client went away) is not a server fault.
			status, reason = http.StatusBadRequest, "read"
		}
		h.refused.WithLabelValues(reason).Inc()
		h.log.Info("omaha request refused", "remote", r.RemoteAddr, "status", status, "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	if err := invalidRequest(req); err != nil {
		h.refused.WithLabelValues("invalid").Inc()
		h.log.Info("omaha request refused", "remote", r.RemoteAddr, "status", http.StatusBadRequest, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	proof, ok := h.proof(w, r, body)
	if !ok {
		return
	}
	snap, err := h.cfg.Catalog.Get(r.Context())
	if err != nil {
		h.log.Error("omaha request: reading the catalog", "err", err)
		http.Error(w, "omaha-server: catalog unavailable", http.StatusInternalServerError)
		return
	}
	now := h.cfg.Now()
	resp := omaha.NewResponse(h.cfg.ServerName, now)
	ip := clientIP(r)
	answers := make([]*answer, len(req.Apps))
	var writes []store.AppCheckin
	for i, app := range req.Apps {
		a, err := h.prepare(r, snap, app, ip, now, proof)
		if err != nil {
			h.log.Error("omaha request: recording the check-in", "app", app.AppID, "machine", app.MachineID, "err", err)
			http.Error(w, "omaha-server: could not record the check-in", http.StatusInternalServerError)
			return
		}
		answers[i] = a
		if a.resp == nil {
			writes = append(writes, a.write)
		}
	}
	if len(writes) > 0 {
		// Every app of the request in one transaction: a failure records none of them, so
		// the whole request may be sent again.
		if err := h.cfg.Store.CheckinAll(r.Context(), writes); err != nil {
			h.log.Error("omaha request: recording the check-in", "machine", req.Apps[0].MachineID, "apps", len(writes), "err", err)
			http.Error(w, "omaha-server: could not record the check-in", http.StatusInternalServerError)
			return
		}
	}
	for _, a := range answers {
		if a.resp == nil {
			a.resp = a.finish()
		}
		resp.Apps = append(resp.Apps, a.resp)
	}
	out, err := resp.Marshal()
	if err != nil {
		h.log.Error("omaha response", "err", err)
		http.Error(w, "omaha-server: could not write the response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(out)
}

func (h *Handler) refuse(app *omaha.App, status omaha.AppStatus, reason string) *omaha.AppResponse {
	h.refused.WithLabelValues(reason).Inc()
	if app.UpdateCheck != nil {
		h.checks.WithLabelValues("error").Inc()
	}
	return omaha.NewAppErrorResponse(app.AppID, status)
}

// answer is one request app's part of the request: either its response already (an app
// refused before anything is written) or its write and what answers it once the request's
// transaction committed.
type answer struct {
	resp   *omaha.AppResponse
	write  store.AppCheckin
	finish func() *omaha.AppResponse
}

// prepare handles one request app up to its write.
func (h *Handler) prepare(r *http.Request, snap *catalog.Snapshot, app *omaha.App, ip string, now time.Time, proof hostauth.Proof) (*answer, error) {
	if err := app.Validate(); err != nil {
		var ve *omaha.ValidationError
		status := omaha.AppStatusInternal
		if errors.As(err, &ve) {
			status = ve.Status()
		}
		h.log.Info("omaha app refused", "app", app.AppID, "err", err)
		return &answer{resp: h.refuse(app, status, "invalid")}, nil
	}
	a, ok := snap.App(app.AppID)
	if !ok {
		return &answer{resp: h.refuse(app, omaha.AppStatusUnknownApplication, "unknown-app")}, nil
	}
	g, ok := snap.GroupByTrack(a.ID, app.Track)
	if !ok {
		return &answer{resp: h.refuse(app, omaha.AppStatusUnknownApplicationOrGroup, "unknown-group")}, nil
	}
	if app.MachineID == "" {
		return &answer{resp: h.refuse(app, omaha.AppStatusInstanceRegistrationFailed, "no-machine-id")}, nil
	}
	board := app.Board
	if board == "" {
		board = DefaultBoard
	}
	resp := omaha.NewAppResponse(app)
	c := checkin{req: r, app: app, appID: a.ID, group: g.Name, ip: ip, board: board, now: now}
	// The decision runs inside the store's transaction (and may run again on a retry):
	// it only computes, into d.
	var d decision
	// run decides on the instance as this request's events leave it (a host that just
	// reported a rollback is not re-served its grant), then applies the offer.
	run := func(cur *store.Instance, grp store.Group, counters policy.Counters) *store.InstanceUpdate {
		upd := apply(cur, c)
		d = h.decide(snap, grp, c, &upd.Instance, counters)
		if d.version == "" {
			return upd
		}
		c := c
		c.offered = d.version
		return apply(cur, c)
	}
	write := store.AppCheckin{AppID: a.ID, MachineID: app.MachineID}
	if g.Policy.Counted() {
		counts, err := h.counts(r.Context(), proof, app.MachineID)
		if err != nil {
			return nil, err
		}
		write.GroupID = g.ID
		write.Rollout = func(cur *store.Instance, ro *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
			upd := run(cur, ro.Group, ro.Counters)
			w := rolloutWrite(cur, upd, d.version)
			if d.version != "" && (w.Outcome == store.OutcomeFailed || w.Outcome == store.OutcomeRolledBack) {
				// The failure may trip the halt in this very transaction: offer
				// nothing until the host asks again.
				d = decision{reason: policy.ReasonHalted}
				upd = apply(cur, c)
				w = rolloutWrite(cur, upd, "")
			}
			if !counts {
				// Stored with the instance, left out of the group's counters.
				w = nil
			}
			return upd, w, nil
		}
	} else {
		write.Decide = func(cur *store.Instance) (*store.InstanceUpdate, error) {
			return run(cur, g, policy.Counters{}), nil
		}
	}
	return &answer{write: write, finish: func() *omaha.AppResponse {
		return h.finish(resp, app, a.ID, g.Name, board, d)
	}}, nil
}

// finish answers an app whose check-in was recorded with decision d.
func (h *Handler) finish(resp *omaha.AppResponse, app *omaha.App, appID, group, board string, d decision) *omaha.AppResponse {
	if d.version != "" {
		if err := resp.SetOffer(d.offer); err != nil {
			// Checked when the offer was built; a failure here is a bug, answered as a hold.
			h.log.Error("omaha offer: release cannot be offered", "app", appID, "version", d.version, "board", board, "err", err)
		}
	} else if app.UpdateCheck != nil && d.reason != "" && d.reason != policy.ReasonUpToDate {
		h.holds.WithLabelValues(string(d.reason)).Inc()
	}
	offered := d.version
	for _, e := range app.Events {
		name, ok := knownEvents[[2]int{int(e.Type), int(e.Result)}]
		if !ok {
			name = "other"
		}
		h.events.WithLabelValues(name).Inc()
		if e.Result == omaha.EventResultError {
			h.failed.WithLabelValues(appID, failureCode(e.ErrorCode)).Inc()
		}
	}
	if app.UpdateCheck != nil {
		if offered != "" {
			h.checks.WithLabelValues("update").Inc()
			h.log.Debug("update offered", "machine", app.MachineID, "from", app.Version, "to", offered, "group", group)
		} else {
			h.checks.WithLabelValues("noupdate").Inc()
		}
	}
	return resp
}

func (h *Handler) offer(r *http.Request, rel store.Release) (*omaha.Offer, error) {
	sum, err := hex.DecodeString(rel.SHA256)
	if err != nil {
		return nil, fmt.Errorf("omahahandler: release sha256: %w", err)
	}
	var codebase string
	if rel.Hosted {
		base := h.cfg.PublicURL
		if base == "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			base = scheme + "://" + r.Host
		}
		codebase = strings.TrimRight(base, "/") + PackagePath(rel.AppID, rel.Board, rel.Version, "")
		if h.cfg.PayloadBaseURL != "" {
			codebase = strings.TrimRight(h.cfg.PayloadBaseURL, "/") + strings.TrimPrefix(PackagePath(rel.AppID, rel.Board, rel.Version, ""), "/packages")
		}
	} else {
		i := strings.LastIndexByte(rel.URL, '/')
		if i < 0 {
			return nil, fmt.Errorf("omahahandler: release URL %q has no path", rel.URL)
		}
		codebase = rel.URL[:i+1]
	}
	pkg := omaha.Package{Name: rel.FileName, Size: uint64(rel.Size), HashSHA256: rel.SHA256, Required: true}
	if rel.SHA1 != "" {
		if s1, err := hex.DecodeString(rel.SHA1); err == nil {
			pkg.Hash = base64.StdEncoding.EncodeToString(s1)
		}
	}
	return &omaha.Offer{Version: rel.Version, URLs: []string{codebase}, Package: pkg, SHA256: sum, DisablePayloadBackoff: true}, nil
}

// PackagePath is the URL path of a hosted payload (name "" gives the directory, ending in
// "/"): /packages/<app>/<board>/<version>/<name>.
func PackagePath(app, board, version, name string) string {
	return "/packages/" + url.PathEscape(app) + "/" + url.PathEscape(board) + "/" + url.PathEscape(version) + "/" + url.PathEscape(name)
}

// clientIP is the peer address of the request (the first X-Forwarded-For entry is not
// trusted: a host could claim any address).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
