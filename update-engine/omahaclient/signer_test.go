package omahaclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha/hostsig"
)

type keySigner struct {
	key ed25519.PrivateKey
	at  time.Time
}

func (s keySigner) SignRequest(req *http.Request, body []byte) error {
	return hostsig.Sign(req, body, s.key, s.at)
}

type failingSigner struct{}

func (failingSigner) SignRequest(*http.Request, []byte) error { return errors.New("no key") }

// TestSigner: with a Signer every request the client sends carries a signature that
// verifies over the exact body the server receives; without one, none.
func TestSigner(t *testing.T) {
	at := time.Unix(1796300000, 0)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	verified := make(chan error, 1)
	inner := &server{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		pub, err := hostsig.Verify(r, sha256.Sum256(body), at)
		switch {
		case err == nil && pub == nil:
			err = errors.New("unsigned")
		case err == nil && !pub.Equal(key.Public()):
			err = errors.New("another key")
		}
		verified <- err
		r.Body = io.NopCloser(bytes.NewReader(body))
		inner.ServeHTTP(w, r)
	}))
	defer ts.Close()
	c := &Client{URL: ts.URL + "/v1/update/", HTTP: ts.Client(), Signer: keySigner{key, at},
		Host: omaha.Host{Version: "4000.0.0", Track: "beta", MachineID: "0123456789abcdef0123456789abcdef"}}
	ctx := context.Background()
	if _, err := c.Check(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := <-verified; err != nil {
		t.Fatalf("update check: %v", err)
	}
	if err := c.Report(ctx, &omaha.Event{Type: omaha.EventTypeUpdateDownloadStarted, Result: omaha.EventResultSuccess}); err != nil {
		t.Fatal(err)
	}
	if err := <-verified; err != nil {
		t.Fatalf("event report: %v", err)
	}

	c.Signer = nil
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-verified; err == nil || err.Error() != "unsigned" {
		t.Fatalf("without a Signer: %v, want unsigned", err)
	}

	c.Signer = failingSigner{}
	var re *RequestError
	if err := c.Ping(ctx); !errors.As(err, &re) {
		t.Fatalf("a signer's failure: %v, want a *RequestError", err)
	}
	select {
	case err := <-verified:
		t.Fatalf("a request was sent although signing failed (%v)", err)
	default:
	}
}
