package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// adminPrefix is where the page reaches the admin API; the rest of the path is the admin
// API's own, under /api/v1.
const adminPrefix = "/dashboard/api/admin"

// maxActionBytes bounds the body of one action (the admin API's own JSON cap).
const maxActionBytes = 64 << 10

// CSRFHeader carries the session's CSRF token on every request through the bridge.
const CSRFHeader = "X-CSRF-Token"

// adminRoutes are the admin API resources the page uses, and the only ones the bridge
// forwards: a session cannot reach tokens, uploads, host keys or TUF roots through it.
var adminRoutes = []string{
	"GET /instances",
	"GET /instances/{machine}/events",
	"GET /apps/{app}/releases",
	"GET /apps/{app}/groups/{group}/policy",
	"PUT /apps/{app}/groups/{group}/policy",
	"PATCH /apps/{app}/groups/{group}",
	"POST /apps/{app}/groups/{group}/rollout/pause",
	"POST /apps/{app}/groups/{group}/rollout/resume",
	"POST /apps/{app}/channels/{channel}/promote",
	"PUT /apps/{app}/channels/{channel}/releases/{board}",
}

var (
	errCrossSite = errors.New("dashboard: cross-site request refused")
	errCSRF      = errors.New("dashboard: missing or wrong CSRF token (reload the page)")
)

// csrfToken is the session's CSRF token: an HMAC of a fixed label keyed by the session
// token. It needs no server-side state and holds on every replica; a page of another
// site can neither read the HttpOnly cookie nor this value (the page that carries it is
// same-origin and not framable), and a forged form cannot set the header at all.
func csrfToken(session string) string {
	m := hmac.New(sha256.New, []byte(session))
	m.Write([]byte("switchyard dashboard csrf v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// sameOrigin refuses a request a browser marks as coming from another site. Fetch
// Metadata decides when the browser sends it: only Sec-Fetch-Site: same-origin passes
// (pages cannot set that header). Without it (an older browser, or not a browser), an Origin
// header, when present, must name the host the request was sent to. The Origin alone is not
// enough with Fetch Metadata present: under Referrer-Policy: no-referrer a browser sends
// "Origin: null" with the page's own form posts.
func sameOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return nil
	case "":
	default:
		return errCrossSite
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return errCrossSite
		}
	}
	return nil
}

// registerActions mounts the bridge to the admin API, when there is one.
func (d *Dashboard) registerActions(m *http.ServeMux) {
	if d.cfg.Admin == nil {
		return
	}
	for _, route := range adminRoutes {
		method, path, _ := strings.Cut(route, " ")
		m.HandleFunc(method+" "+adminPrefix+path, d.act)
	}
}

// act forwards a request of the page to the admin API as the session's token: the admin
// API's own handlers authorise it (a viewer's write is their 403), validate it and write
// it. Before that, every request must be same-origin, signed in and carry the session's
// CSRF token.
func (d *Dashboard) act(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	if err := sameOrigin(r); err != nil {
		d.cfg.Logger.Warn("dashboard: cross-site request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		refuse(http.StatusForbidden, err)
		return
	}
	tok, _, err := d.session(r)
	if err != nil {
		refuse(http.StatusUnauthorized, err)
		return
	}
	if !hmac.Equal([]byte(r.Header.Get(CSRFHeader)), []byte(csrfToken(tok))) {
		refuse(http.StatusForbidden, errCSRF)
		return
	}
	fwd := r.Clone(r.Context())
	fwd.Header.Del("Cookie")
	fwd.Header.Del(CSRFHeader)
	fwd.Header.Set("Authorization", "Bearer "+tok)
	fwd.URL = &url.URL{Path: "/api/v1" + strings.TrimPrefix(r.URL.Path, adminPrefix), RawQuery: r.URL.RawQuery}
	if r.URL.RawPath != "" {
		fwd.URL.RawPath = "/api/v1" + strings.TrimPrefix(r.URL.RawPath, adminPrefix)
	}
	fwd.RequestURI = fwd.URL.RequestURI()
	fwd.Body = http.MaxBytesReader(w, r.Body, maxActionBytes)
	d.cfg.Admin.ServeHTTP(w, fwd)
}
