package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRequestTimeout: a server that sends headers and then stalls the body is cut off by
// the request timeout, and a timeout of 0 still bounds the request (it does not turn the
// bound off).
func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first bytes"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := RequestTimeout(srv.Client(), 50*time.Millisecond).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reading a stalled body: %v, want the deadline", err)
	}

	d, ok := RequestTimeout(srv.Client(), 0).(*timeoutDoer)
	if !ok || d.d != DefaultRequestTimeout {
		t.Fatalf("RequestTimeout(0) bounds requests by %v, want %v", d.d, DefaultRequestTimeout)
	}
}
