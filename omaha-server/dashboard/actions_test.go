package dashboard

import (
	"net/http/httptest"
	"testing"
)

// TestSameOrigin: Fetch Metadata decides when present (a page's own form post under
// Referrer-Policy: no-referrer carries "Origin: null" and must pass); without it, a foreign
// or opaque Origin is refused.
func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		name, site, origin string
		ok                 bool
	}{
		{"own form post, no-referrer", "same-origin", "null", true},
		{"own fetch", "same-origin", "http://updates.example:8080", true},
		{"another site", "cross-site", "http://evil.example", false},
		{"a sibling subdomain", "same-site", "http://x.updates.example:8080", false},
		{"typed into the address bar", "none", "", false},
		{"no metadata, own origin", "", "http://updates.example:8080", true},
		{"no metadata, foreign origin", "", "http://evil.example", false},
		{"no metadata, opaque origin", "", "null", false},
		{"no metadata, no origin (not a browser)", "", "", true},
	} {
		r := httptest.NewRequest("POST", "http://updates.example:8080/login", nil)
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if err := sameOrigin(r); (err == nil) != tc.ok {
			t.Errorf("%s: sameOrigin = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
