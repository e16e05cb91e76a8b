// Package adminapi is omaha-server's admin REST API: JSON under /api/v1/, every request
// authorised by a bearer token (package auth; viewer tokens may only read).
//
// Resources (app is an application ID, braces optional, any case):
//
//	GET  POST   /api/v1/apps                                   list, create {id, name}
//	GET         /api/v1/apps/{app}
//	GET  POST   /api/v1/apps/{app}/releases                    list, publish (see below)
//	GET         /api/v1/apps/{app}/releases/{board}/{version}
//	GET  POST   /api/v1/apps/{app}/releases/{board}/{version}/deltas   delta payloads (deltas.go)
//	GET  POST   /api/v1/apps/{app}/channels                    list, create {name}
//	GET         /api/v1/apps/{app}/channels/{channel}
//	PUT         /api/v1/apps/{app}/channels/{channel}/releases/{board}   {version}
//	GET  POST   /api/v1/apps/{app}/groups                      list, create {name, track, channel, updates_enabled}
//	GET  PATCH  /api/v1/apps/{app}/groups/{group}              {track?, channel?, updates_enabled?, version?}
//	GET  PUT    /api/v1/apps/{app}/groups/{group}/policy       {policy, version?} (package policy's JSON)
//	GET         /api/v1/apps/{app}/groups/{group}/rollout?version=&board=   progress (RolloutReport)
//	POST        /api/v1/apps/{app}/groups/{group}/rollout/pause|resume
//	POST        /api/v1/apps/{app}/channels/{channel}/promote  {from}: every board's release of from
//	GET         /api/v1/instances?app=&group=&version=&status=&sort=&limit=&after=   paged
//	GET         /api/v1/instances/{machine-id}                 with status history
//	GET         /api/v1/instances/{machine-id}/events?app=
//	GET         /api/v1/tuf                                    TUF versions and expiries (with Config.TUF)
//	POST        /api/v1/tuf/roots                              publish the next TUF root (with Config.TUF)
//	GET         /api/v1/hosts/keys?after=&limit=               host keys (hosts.go)
//	GET PUT DEL /api/v1/hosts/{machine-id}/key                 {public_key}: enroll a host key
//	GET  POST   /api/v1/tokens, DELETE /api/v1/tokens/{id}     tokens, admin only (tokens.go)
//	GET         /api/v1/activity?app=&action=&subject=&actor=&since=&until=&limit=&after=   (activity.go)
//
// Publishing a release: a JSON body {version, board, url, size, sha256[, sha1]} records a
// payload hosted elsewhere; a multipart/form-data body uploads one the server hosts, with
// parts in this order: "metadata" (JSON {version, board, file_name, size[, sha256]}),
// optionally "targets" (the signed TUF targets metadata that pins the payload, at most
// MaxTargetsBytes, stored with the release), then "payload" (the file, streamed to disk
// and hashed while written; see package payloads). A duplicate (app, version, board) is
// 409 and leaves the existing release alone.
//
// Paging: GET /api/v1/instances answers at most limit instances (1 to MaxInstancePage,
// default MaxInstancePage; a larger limit is 400), ordered by application and machine id.
// When more follow, a header Link: </api/v1/instances?…&after=CURSOR>; rel="next" names
// the next page; the cursor is opaque (the last instance's key), so a client walks every
// instance exactly once even while hosts check in. With sort=last_check the order is the
// last check, newest first (the cursor then holds that time too); an instance that checks
// in while a client pages moves ahead of the pages already read.
//
// Versioned writes: a group carries a version, incremented by every write. A PATCH of the
// group or a PUT of its policy with a "version" field or an If-Match header (the version,
// quotes optional) is refused with 409 when the group changed since; without either the
// write applies to whatever is current. A policy is checked in full (policy.Validate) and
// refused with 400 naming every problem.
//
// Errors are {"error": "one line"} with 400 (bad input), 401, 403, 404, 409 or 413; an
// unexpected failure is 500 with a generic message and the detail in the log. Every
// successful write invalidates the catalog cache through the configured hook.
package adminapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/payloads"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Limits on request bodies.
const (
	MaxJSONBytes    = 64 << 10
	MaxTargetsBytes = 4 << 20
	// multipartOverhead bounds what an upload body holds besides the payload.
	multipartOverhead = MaxTargetsBytes + 1<<20
)

// PayloadStore is where uploads go (payloads.Dir, s3store.Bucket): see payloads.Store.
type PayloadStore interface {
	Store(ctx context.Context, key payloads.Key, r io.Reader, want payloads.Expect, commit func(payloads.Sums) error) (payloads.Sums, error)
}

// Config wires the API.
type Config struct {
	Store    store.Store
	Payloads PayloadStore
	// Invalidate is called after every successful catalog write (may be nil).
	Invalidate func()
	Logger     *slog.Logger
	// MaxPayloadBytes caps one uploaded payload.
	MaxPayloadBytes int64
	// CheckRelease, when set, sees every release about to be recorded (an upload after its
	// payload is on disk and hashed, with its TUF targets metadata; an external release
	// before it is stored) and refuses it by returning an error, answered as 400. The TUF
	// host uses it to verify and publish the targets metadata a release carries.
	CheckRelease func(ctx context.Context, r store.Release) error
	// CheckDelta is CheckRelease for a release's delta payloads (deltas.go).
	CheckDelta func(ctx context.Context, d store.Delta) error
	// TUF, when set, serves GET /api/v1/tuf and POST /api/v1/tuf/roots.
	TUF TUFRepository
}

// API serves the admin API.
type API struct {
	cfg Config
	log *slog.Logger
}

// New returns the API; Register mounts it.
func New(cfg Config) *API {
	if cfg.Invalidate == nil {
		cfg.Invalidate = func() {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, log: cfg.Logger}
}

// Register mounts the API under /api/v1 of r.
func (a *API) Register(r *mux.Router) {
	s := r.PathPrefix("/api/v1").Subrouter()
	s.Use(a.authorize)
	s.HandleFunc("/apps", a.listApps).Methods(http.MethodGet)
	s.HandleFunc("/apps", a.createApp).Methods(http.MethodPost)
	s.HandleFunc("/apps/{app}", a.getApp).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/releases", a.listReleases).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/releases", a.publishRelease).Methods(http.MethodPost)
	s.HandleFunc("/apps/{app}/releases/{board}/{version}", a.getRelease).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/releases/{board}/{version}/deltas", a.listDeltas).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/releases/{board}/{version}/deltas", a.publishDelta).Methods(http.MethodPost)
	s.HandleFunc("/apps/{app}/channels", a.listChannels).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/channels", a.createChannel).Methods(http.MethodPost)
	s.HandleFunc("/apps/{app}/channels/{channel}", a.getChannel).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/channels/{channel}/releases/{board}", a.setChannel).Methods(http.MethodPut)
	s.HandleFunc("/apps/{app}/groups", a.listGroups).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/groups", a.createGroup).Methods(http.MethodPost)
	s.HandleFunc("/apps/{app}/groups/{group}", a.getGroup).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/groups/{group}", a.updateGroup).Methods(http.MethodPatch)
	s.HandleFunc("/apps/{app}/groups/{group}/policy", a.getPolicy).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/groups/{group}/policy", a.putPolicy).Methods(http.MethodPut)
	s.HandleFunc("/apps/{app}/groups/{group}/rollout", a.rolloutStatus).Methods(http.MethodGet)
	s.HandleFunc("/apps/{app}/groups/{group}/rollout/pause", a.pause).Methods(http.MethodPost)
	s.HandleFunc("/apps/{app}/groups/{group}/rollout/resume", a.resume).Methods(http.MethodPost)
	s.HandleFunc("/apps/{app}/channels/{channel}/promote", a.promote).Methods(http.MethodPost)
	s.HandleFunc("/instances", a.listInstances).Methods(http.MethodGet)
	s.HandleFunc("/instances/{machine}", a.getInstance).Methods(http.MethodGet)
	s.HandleFunc("/instances/{machine}/events", a.listEvents).Methods(http.MethodGet)
	if a.cfg.TUF != nil {
		s.HandleFunc("/tuf", a.tufState).Methods(http.MethodGet)
		s.HandleFunc("/tuf/roots", a.publishRoot).Methods(http.MethodPost)
	}
	a.registerHosts(s)
	a.registerTokens(s)
	s.HandleFunc("/activity", a.listActivity).Methods(http.MethodGet)
	s.NotFoundHandler = a.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API resource: "+r.URL.Path)
	}))
	s.MethodNotAllowedHandler = a.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	}))
}

func (a *API) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := auth.Authorize(r.Context(), a.cfg.Store, r)
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			w.Header().Set("WWW-Authenticate", `Bearer realm="omaha-server"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required (omaha-server token create)")
		case errors.Is(err, auth.ErrForbidden):
			writeError(w, http.StatusForbidden, "a viewer token may only read")
		case err != nil:
			a.fail(w, r, err)
		default:
			// Every store write made for this request records the token as its actor.
			name := t.Name
			if name == "" { // a token made before tokens had names
				name = "token " + strconv.FormatInt(t.ID, 10)
			}
			next.ServeHTTP(w, r.WithContext(store.WithActor(r.Context(), store.Actor{TokenID: t.ID, Name: name})))
		}
	})
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// fail answers err with the status it maps to.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var maxErr *http.MaxBytesError
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, payloads.ErrUnavailable):
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "30")
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrStale), errors.Is(err, payloads.ErrBusy), errors.Is(err, payloads.ErrExists):
		status = http.StatusConflict
	case errors.Is(err, store.ErrInvalid), errors.Is(err, payloads.ErrMismatch), errors.Is(err, payloads.ErrBadName),
		errors.Is(err, errBadRequest), errors.Is(err, omaha.ErrVersion):
		status = http.StatusBadRequest
	case errors.Is(err, payloads.ErrTooLarge), errors.As(err, &maxErr):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, multipart.ErrMessageTooLarge):
		status = http.StatusBadRequest
	}
	if status == http.StatusInternalServerError {
		a.log.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, status, "internal error; see the server log")
		return
	}
	a.log.Info("admin API request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	writeError(w, status, err.Error())
}

var errBadRequest = errors.New("adminapi: bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

// decode reads a JSON body of at most MaxJSONBytes into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxJSONBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return err
		}
		return badRequest("reading the JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("the JSON body holds more than one value")
	}
	return nil
}

func (a *API) wrote(r *http.Request, what string, args ...any) {
	a.cfg.Invalidate()
	a.log.Info("admin write", append([]any{"what", what, "method", r.Method, "path", r.URL.Path}, args...)...)
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request) {
	apps, err := a.cfg.Store.ListApps(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apps)
}

func (a *API) createApp(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if id := store.NormalizeAppID(in.ID); id == "" || payloads.CheckName(id) != nil || strings.ContainsAny(id, " {}") {
		a.fail(w, r, badRequest("application id %q: want a GUID or a plain name", in.ID))
		return
	}
	if err := checkDisplayName("application name", in.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	app, err := a.cfg.Store.CreateApp(r.Context(), store.App{ID: in.ID, Name: in.Name})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "application", "app", app.ID)
	writeJSON(w, http.StatusCreated, app)
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) {
	app, err := a.cfg.Store.GetApp(r.Context(), mux.Vars(r)["app"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, app)
}

func (a *API) listReleases(w http.ResponseWriter, r *http.Request) {
	rels, err := a.cfg.Store.ListReleases(r.Context(), mux.Vars(r)["app"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rels)
}

func (a *API) getRelease(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	rel, err := a.cfg.Store.GetRelease(r.Context(), v["app"], v["version"], v["board"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rel.TargetsMetadata = nil
	writeJSON(w, http.StatusOK, rel)
}

// ReleaseMetadata describes a release being published (the JSON body of an external
// release, or the "metadata" part of an upload).
type ReleaseMetadata struct {
	Version  string `json:"version"`
	Board    string `json:"board"`
	FileName string `json:"file_name,omitempty"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256,omitempty"`
	SHA1     string `json:"sha1,omitempty"`
	URL      string `json:"url,omitempty"`
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// check validates metadata common to both kinds of release.
func (m *ReleaseMetadata) check(hosted bool) error {
	if _, err := omaha.ParseVersion(m.Version); err != nil {
		return err
	}
	if err := payloads.CheckName(m.Board); err != nil {
		return badRequest("board: %v", err)
	}
	m.SHA256, m.SHA1 = strings.ToLower(m.SHA256), strings.ToLower(m.SHA1)
	if m.Size <= 0 {
		return badRequest("size must be above zero")
	}
	if m.SHA256 != "" && !isHex(m.SHA256, 64) {
		return badRequest("sha256 must be 64 hex digits")
	}
	if m.SHA1 != "" && !isHex(m.SHA1, 40) {
		return badRequest("sha1 must be 40 hex digits")
	}
	if hosted {
		if m.URL != "" {
			return badRequest("an uploaded release takes no url")
		}
		if err := payloads.CheckName(m.FileName); err != nil {
			return badRequest("file_name: %v", err)
		}
		return nil
	}
	u, err := url.Parse(m.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
		return badRequest("url %q: want an http(s) URL of the payload file, without query", m.URL)
	}
	name := path.Base(u.Path)
	if m.FileName == "" {
		m.FileName = name
	}
	if m.FileName != name {
		return badRequest("file_name %q differs from the URL's file %q (a client fetches codebase + name)", m.FileName, name)
	}
	if err := payloads.CheckName(m.FileName); err != nil {
		return badRequest("file_name: %v", err)
	}
	if m.SHA256 == "" {
		return badRequest("sha256 is required for a release hosted elsewhere")
	}
	return nil
}

func (a *API) publishRelease(w http.ResponseWriter, r *http.Request) {
	appID := store.NormalizeAppID(mux.Vars(r)["app"])
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var rel store.Release
	var err error
	switch mt {
	case "application/json":
		rel, err = a.publishExternal(w, r, appID)
	case "multipart/form-data":
		rel, err = a.publishUpload(w, r, appID, params["boundary"])
	default:
		err = badRequest("Content-Type %q: want application/json (a release hosted elsewhere) or multipart/form-data (an upload)", mt)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "release", "app", rel.AppID, "version", rel.Version, "board", rel.Board, "hosted", rel.Hosted, "size", rel.Size)
	rel.TargetsMetadata = nil
	writeJSON(w, http.StatusCreated, rel)
}

func (a *API) publishExternal(w http.ResponseWriter, r *http.Request, appID string) (store.Release, error) {
	var m ReleaseMetadata
	if err := decode(w, r, &m); err != nil {
		return store.Release{}, err
	}
	if err := m.check(false); err != nil {
		return store.Release{}, err
	}
	rel := store.Release{AppID: appID, Version: m.Version, Board: m.Board,
		FileName: m.FileName, Size: m.Size, SHA256: m.SHA256, SHA1: m.SHA1, URL: m.URL}
	if err := a.checkRelease(r.Context(), rel); err != nil {
		return store.Release{}, err
	}
	return a.cfg.Store.CreateRelease(r.Context(), rel)
}

func (a *API) checkRelease(ctx context.Context, rel store.Release) error {
	if a.cfg.CheckRelease == nil {
		return nil
	}
	if err := a.cfg.CheckRelease(ctx, rel); err != nil {
		return badRequest("release refused: %v", err)
	}
	return nil
}

// preflight refuses early, before the payload is read, what would fail at the end.
func (a *API) preflight(ctx context.Context, appID string, m ReleaseMetadata) error {
	if _, err := a.cfg.Store.GetApp(ctx, appID); err != nil {
		return err
	}
	_, err := a.cfg.Store.GetRelease(ctx, appID, m.Version, m.Board)
	if err == nil {
		return fmt.Errorf("adminapi: release %s for %s: %w", m.Version, m.Board, store.ErrConflict)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

func (a *API) publishUpload(w http.ResponseWriter, r *http.Request, appID, boundary string) (store.Release, error) {
	if boundary == "" {
		return store.Release{}, badRequest("multipart body without a boundary")
	}
	if r.ContentLength > 0 && r.ContentLength > a.cfg.MaxPayloadBytes+multipartOverhead {
		return store.Release{}, fmt.Errorf("%w: the body is %d bytes", payloads.ErrTooLarge, r.ContentLength)
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, a.cfg.MaxPayloadBytes+multipartOverhead), boundary)
	var m ReleaseMetadata
	var targets []byte
	for step := 0; ; step++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			return store.Release{}, badRequest("the upload has no \"payload\" part")
		}
		if err != nil {
			return store.Release{}, badRequest("reading the multipart body: %v", err)
		}
		switch name := part.FormName(); {
		case name == "metadata" && step == 0:
			dec := json.NewDecoder(io.LimitReader(part, MaxJSONBytes))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&m); err != nil {
				return store.Release{}, badRequest("the metadata part: %v", err)
			}
			if err := m.check(true); err != nil {
				return store.Release{}, err
			}
			if err := a.preflight(r.Context(), appID, m); err != nil {
				return store.Release{}, err
			}
		case name == "targets" && step == 1:
			targets, err = io.ReadAll(io.LimitReader(part, MaxTargetsBytes+1))
			if err != nil {
				return store.Release{}, badRequest("reading the targets part: %v", err)
			}
			if len(targets) > MaxTargetsBytes {
				return store.Release{}, fmt.Errorf("%w: targets metadata over %d bytes", payloads.ErrTooLarge, MaxTargetsBytes)
			}
			if !json.Valid(targets) {
				return store.Release{}, badRequest("the targets part is not JSON (signed TUF targets metadata)")
			}
		case name == "payload" && step > 0:
			return a.storePayload(r.Context(), appID, m, targets, part, mr)
		default:
			return store.Release{}, badRequest("unexpected part %q at position %d (want metadata, [targets,] payload)", name, step+1)
		}
	}
}

func (a *API) storePayload(ctx context.Context, appID string, m ReleaseMetadata, targets []byte, part io.Reader, mr *multipart.Reader) (store.Release, error) {
	var rel store.Release
	key := payloads.Key{App: appID, Board: m.Board, Version: m.Version, Name: m.FileName}
	_, err := a.cfg.Payloads.Store(ctx, key, part, payloads.Expect{Size: m.Size, SHA256: m.SHA256}, func(s payloads.Sums) error {
		// The body must end right after the payload: a truncated or padded upload fails here.
		if _, err := mr.NextPart(); err != io.EOF {
			if err == nil {
				return badRequest("unexpected part after the payload")
			}
			return badRequest("reading the end of the multipart body: %v", err)
		}
		r := store.Release{AppID: appID, Version: m.Version, Board: m.Board,
			FileName: m.FileName, Size: s.Size, SHA256: s.SHA256, SHA1: s.SHA1, Hosted: true, TargetsMetadata: targets}
		if err := a.checkRelease(ctx, r); err != nil {
			return err
		}
		var err error
		rel, err = a.cfg.Store.CreateRelease(ctx, r)
		return err
	})
	return rel, err
}

func (a *API) listChannels(w http.ResponseWriter, r *http.Request) {
	chans, err := a.cfg.Store.ListChannels(r.Context(), mux.Vars(r)["app"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, chans)
}

func (a *API) createChannel(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := payloads.CheckName(in.Name); err != nil {
		a.fail(w, r, badRequest("channel name: %v", err))
		return
	}
	if err := checkDisplayName("channel name", in.Name); err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.cfg.Store.CreateChannel(r.Context(), store.Channel{AppID: mux.Vars(r)["app"], Name: in.Name})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "channel", "app", c.AppID, "channel", c.Name)
	writeJSON(w, http.StatusCreated, c)
}

func (a *API) getChannel(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	c, err := a.cfg.Store.GetChannel(r.Context(), v["app"], v["channel"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *API) setChannel(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Version string `json:"version"`
	}
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := omaha.ParseVersion(in.Version); err != nil {
		a.fail(w, r, err)
		return
	}
	v := mux.Vars(r)
	c, err := a.cfg.Store.SetChannelRelease(r.Context(), v["app"], v["channel"], v["board"], in.Version)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "channel release", "app", c.AppID, "channel", c.Name, "board", v["board"], "version", in.Version)
	writeJSON(w, http.StatusOK, c)
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) {
	groups, err := a.cfg.Store.ListGroups(r.Context(), mux.Vars(r)["app"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, groups)
}

// GroupInput is the body of a group create (all but UpdatesEnabled required; updates
// default to enabled) or update (only the fields set change).
type GroupInput struct {
	Name           string  `json:"name,omitempty"`
	Track          *string `json:"track,omitempty"`
	Channel        *string `json:"channel,omitempty"`
	UpdatesEnabled *bool   `json:"updates_enabled,omitempty"`
	// Version, on an update, is the group version the change was based on.
	Version *int64 `json:"version,omitempty"`
}

func (a *API) createGroup(w http.ResponseWriter, r *http.Request) {
	var in GroupInput
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	g := store.Group{AppID: mux.Vars(r)["app"], Name: in.Name, UpdatesEnabled: true}
	if in.Track != nil {
		g.Track = *in.Track
	}
	if in.Channel != nil {
		g.Channel = *in.Channel
	}
	if in.UpdatesEnabled != nil {
		g.UpdatesEnabled = *in.UpdatesEnabled
	}
	if err := checkGroup(g); err != nil {
		a.fail(w, r, err)
		return
	}
	g, err := a.cfg.Store.CreateGroup(r.Context(), g)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "group", "app", g.AppID, "group", g.Name, "track", g.Track, "channel", g.Channel, "updates_enabled", g.UpdatesEnabled)
	writeJSON(w, http.StatusCreated, g)
}

func checkGroup(g store.Group) error {
	if err := payloads.CheckName(g.Name); err != nil {
		return badRequest("group name: %v", err)
	}
	if err := payloads.CheckName(g.Track); err != nil || len(g.Track) > 64 {
		return badRequest("track %q: want a short plain name (hosts send it as GROUP)", g.Track)
	}
	if err := checkDisplayName("group name", g.Name); err != nil {
		return err
	}
	return checkDisplayName("track", g.Track)
}

// maxDisplayName bounds a name shown to operators (an application's name).
const maxDisplayName = 256

// checkDisplayName refuses a name shown to operators that is too long or could mislead
// them: control characters, bidi overrides and isolates, other format characters (see
// omaha.CheckDisplayText).
func checkDisplayName(what, s string) error {
	if len(s) > maxDisplayName {
		return badRequest("%s: longer than %d bytes", what, maxDisplayName)
	}
	if err := omaha.CheckDisplayText(s); err != nil {
		return badRequest("%s %+q: %v", what, s, err)
	}
	return nil
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	g, err := a.cfg.Store.GetGroup(r.Context(), v["app"], v["group"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (a *API) updateGroup(w http.ResponseWriter, r *http.Request) {
	var in GroupInput
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.Name != "" {
		a.fail(w, r, badRequest("a group's name cannot change"))
		return
	}
	expect, err := expectedVersion(r, in.Version)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := mux.Vars(r)
	g, err := a.cfg.Store.UpdateGroup(r.Context(), v["app"], v["group"], func(g *store.Group) error {
		if err := checkVersion(g, expect); err != nil {
			return err
		}
		if in.Track != nil {
			g.Track = *in.Track
		}
		if in.Channel != nil {
			g.Channel = *in.Channel
		}
		if in.UpdatesEnabled != nil {
			g.UpdatesEnabled = *in.UpdatesEnabled
		}
		return checkGroup(*g)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "group", "app", g.AppID, "group", g.Name, "track", g.Track, "channel", g.Channel, "updates_enabled", g.UpdatesEnabled)
	writeJSON(w, http.StatusOK, g)
}

// MaxInstancePage is the largest (and the default) page of GET /api/v1/instances; a larger
// limit is refused with 400 rather than clamped, so a client never takes a short page for
// the whole list.
const MaxInstancePage = 1000

func (a *API) listInstances(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.InstanceFilter{AppID: q.Get("app"), Group: q.Get("group"), Version: q.Get("version"), Status: store.Status(q.Get("status")),
		Limit: MaxInstancePage}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 || n > MaxInstancePage {
			a.fail(w, r, badRequest("limit %q: want a number from 1 to %d (walk the rest with the next link)", l, MaxInstancePage))
			return
		}
		f.Limit = n
	}
	switch sort := q.Get("sort"); sort {
	case "", "machine_id":
	case "last_check":
		f.ByLastCheck = true
	default:
		a.fail(w, r, badRequest("sort %q: want machine_id (the default) or last_check", sort))
		return
	}
	if c := q.Get("after"); c != "" {
		var err error
		if f.ByLastCheck {
			f.AfterAppID, f.AfterMachineID, f.AfterLastCheck, err = ParseInstanceCheckCursor(c)
		} else {
			f.AfterAppID, f.AfterMachineID, err = ParseInstanceCursor(c)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
	}
	// One more than asked says whether a next page exists.
	page := f.Limit
	f.Limit++
	list, err := a.cfg.Store.ListInstances(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(list) > page {
		list = list[:page]
		last := list[page-1]
		if f.ByLastCheck {
			q.Set("after", InstanceCheckCursor(last.AppID, last.MachineID, last.LastCheck))
		} else {
			q.Set("after", InstanceCursor(last.AppID, last.MachineID))
		}
		q.Set("limit", strconv.Itoa(page))
		next := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		w.Header().Set("Link", "<"+next.String()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, list)
}

// InstanceCursor is the opaque "after" parameter naming the instance a page ends with.
func InstanceCursor(appID, machineID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(appID + "\n" + machineID))
}

// ParseInstanceCursor reads an "after" parameter made by InstanceCursor.
func ParseInstanceCursor(c string) (appID, machineID string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) <= 512 {
		if app, machine, ok := strings.Cut(string(b), "\n"); ok && app != "" {
			return app, machine, nil
		}
	}
	return "", "", badRequest("after %q: not a cursor from a next link", c)
}

// InstanceCheckCursor is the "after" parameter naming the instance a page sorted by last
// check ends with.
func InstanceCheckCursor(appID, machineID string, lastCheck time.Time) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(lastCheck.UnixMilli(), 10) + "\n" + appID + "\n" + machineID))
}

// ParseInstanceCheckCursor reads an "after" parameter made by InstanceCheckCursor.
func ParseInstanceCheckCursor(c string) (appID, machineID string, lastCheck time.Time, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) <= 512 {
		at, rest, ok := strings.Cut(string(b), "\n")
		ms, perr := strconv.ParseInt(at, 10, 64)
		if app, machine, ok2 := strings.Cut(rest, "\n"); ok && ok2 && perr == nil && app != "" {
			return app, machine, time.UnixMilli(ms).UTC(), nil
		}
	}
	return "", "", time.Time{}, badRequest("after %q: not a cursor from a next link of sort=last_check", c)
}

func (a *API) getInstance(w http.ResponseWriter, r *http.Request) {
	d, err := a.cfg.Store.GetInstances(r.Context(), mux.Vars(r)["machine"], 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *API) listEvents(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	if app == "" {
		app = store.FlatcarAppID
	}
	ev, err := a.cfg.Store.ListEvents(r.Context(), app, mux.Vars(r)["machine"], 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}
