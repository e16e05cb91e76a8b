package tufhost

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

var servable = regexp.MustCompile(`^/(root\.json|timestamp\.json|[1-9][0-9]*\.(root|snapshot|targets)\.json|targets/(.+/)?[0-9a-f]{64}\..+)$`)

// FuzzHandlerPath: whatever the request path, the handler answers without panicking,
// serves only the names of the package doc, and never more than the largest metadata or
// the pinned payload. Seeds: testdata/fuzz/FuzzHandlerPath.
func FuzzHandlerPath(f *testing.F) {
	fx := newFixture(f, 1, 1)
	p := fx.payload([]byte("payload"), "1.0.0")
	fx.publish(Upload{Targets: fx.signTargets(1, tuf.Expiry(fx.clock.Now(), tuf.DefaultTargetsExpiry), fx.targetKey, map[string]repo.Target{"a/b": p})})
	h := fx.host.Handler()
	for _, s := range []string{"/1.root.json", "/timestamp.json", "/targets/a/" + hexOf(p.SHA256[:]) + ".b", "/../../etc/passwd", "/1.root.json/", "/targets//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = path
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		body, _ := io.ReadAll(w.Result().Body)
		switch w.Code {
		case http.StatusOK:
			if !servable.MatchString(path) {
				t.Fatalf("served %q", path)
			}
			if len(body) > tuf.MaxTargetsSize {
				t.Fatalf("%q: %d bytes", path, len(body))
			}
		case http.StatusNotFound:
		default:
			t.Fatalf("%q: status %d", path, w.Code)
		}
	})
}
