package hostsig_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha/hostsig"
)

var (
	seed   = bytes.Repeat([]byte{7}, ed25519.SeedSize)
	key    = ed25519.NewKeyFromSeed(seed)
	signed = time.Unix(1796300000, 0)
	body   = []byte(`<request protocol="3.0"><app appid="x" machineid="m1"/></request>`)
)

// received signs a client request to url and returns the request as a server receives it,
// after edit changed it.
func received(t *testing.T, url string, edit func(r *http.Request)) *http.Request {
	t.Helper()
	out, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := hostsig.Sign(out, body, key, signed); err != nil {
		t.Fatal(err)
	}
	in := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	in.Header = out.Header.Clone()
	if edit != nil {
		edit(in)
	}
	return in
}

func TestVerify(t *testing.T) {
	sum := sha256.Sum256(body)
	tests := []struct {
		name string
		url  string
		edit func(r *http.Request)
		sum  [32]byte
		now  time.Time
		want error // nil: verifies
	}{
		{name: "signed", url: "https://updates.example/v1/update/", now: signed.Add(time.Minute)},
		{name: "clock behind the host", url: "https://updates.example/v1/update/", now: signed.Add(-4 * time.Minute)},
		{name: "replayed later", url: "https://updates.example/v1/update/", now: signed.Add(hostsig.MaxSkew + time.Second), want: hostsig.ErrStale},
		{name: "from the future", url: "https://updates.example/v1/update/", now: signed.Add(-hostsig.MaxSkew - time.Second), want: hostsig.ErrStale},
		{name: "other body", url: "https://updates.example/v1/update/", now: signed, sum: sha256.Sum256([]byte("<request/>")), want: hostsig.ErrBadSignature},
		{name: "other host", url: "https://updates.example/v1/update/", now: signed, edit: func(r *http.Request) { r.Host = "other.example" }, want: hostsig.ErrBadSignature},
		{name: "other path", url: "https://updates.example/v1/update/", now: signed, edit: func(r *http.Request) { r.URL.Path = "/v1/update" }, want: hostsig.ErrBadSignature},
		{name: "time changed", url: "https://updates.example/v1/update/", now: signed, edit: func(r *http.Request) {
			r.Header.Set(hostsig.HeaderTime, "1796300001")
		}, want: hostsig.ErrBadSignature},
		{name: "other key", url: "https://updates.example/v1/update/", now: signed, edit: func(r *http.Request) {
			r.Header.Set(hostsig.HeaderKey, hostsig.FormatPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)))
		}, want: hostsig.ErrBadSignature},
		{name: "no time", url: "https://updates.example/v1/update/", now: signed, edit: func(r *http.Request) { r.Header.Del(hostsig.HeaderTime) }, want: hostsig.ErrMalformed},
		{name: "time not decimal", url: "https://updates.example/v1/update/", now: signed, edit: func(r *http.Request) {
			r.Header.Set(hostsig.HeaderTime, "+1796300000")
		}, want: hostsig.ErrMalformed},
		{name: "short key", url: "https://updates.example/v1/update/", now: signed, edit: func(r *http.Request) { r.Header.Set(hostsig.HeaderKey, "AAAA") }, want: hostsig.ErrMalformed},
		{name: "long signature", url: "https://updates.example/v1/update/", now: signed, edit: func(r *http.Request) {
			r.Header.Set(hostsig.HeaderSignature, strings.Repeat("A", 200))
		}, want: hostsig.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := received(t, tt.url, tt.edit)
			s := tt.sum
			if s == [32]byte{} {
				s = sum
			}
			pub, err := hostsig.Verify(r, s, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if tt.want == nil && !pub.Equal(key.Public()) {
				t.Fatalf("Verify returned key %x, want %x", pub, key.Public())
			}
			if tt.want != nil && pub != nil {
				t.Fatalf("Verify returned a key with error %v", err)
			}
		})
	}
}

func TestUnsigned(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/update/", bytes.NewReader(body))
	pub, err := hostsig.Verify(r, sha256.Sum256(body), signed)
	if pub != nil || err != nil {
		t.Fatalf("unsigned request: key %x, error %v; want neither", pub, err)
	}
}

// TestMessage pins the signed message: a change to it breaks every deployed host.
func TestMessage(t *testing.T) {
	got := string(hostsig.Message("POST", "updates.example", "/v1/update/", "1796300000", sha256.Sum256(nil)))
	want := "switchyard-host-signature-v1\nPOST\nupdates.example\n/v1/update/\n1796300000\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got != want {
		t.Fatalf("Message = %q, want %q", got, want)
	}
}

func TestParsePublicKey(t *testing.T) {
	pub := key.Public().(ed25519.PublicKey)
	got, err := hostsig.ParsePublicKey(" " + hostsig.FormatPublicKey(pub) + "\n")
	if err != nil || !got.Equal(pub) {
		t.Fatalf("round trip: %x, %v", got, err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA"} {
		if _, err := hostsig.ParsePublicKey(bad); !errors.Is(err, hostsig.ErrMalformed) {
			t.Errorf("ParsePublicKey(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}
