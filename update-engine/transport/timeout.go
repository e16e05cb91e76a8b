package transport

import (
	"context"
	"io"
	"net/http"
	"time"
)

// DefaultRequestTimeout bounds a whole small request (Omaha, TUF metadata) when
// RequestTimeout is given no positive duration.
const DefaultRequestTimeout = 90 * time.Second

// Doer sends one request (an *http.Client).
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// RequestTimeout returns a Doer that bounds each request through c, from sending it to
// closing its body, by d (DefaultRequestTimeout when d is not positive: a timeout of 0
// never means none). It is for requests with small bodies; payload downloads are bounded
// by their stall limit instead (package fetch).
func RequestTimeout(c Doer, d time.Duration) Doer {
	if d <= 0 {
		d = DefaultRequestTimeout
	}
	return &timeoutDoer{c: c, d: d}
}

type timeoutDoer struct {
	c Doer
	d time.Duration
}

func (t *timeoutDoer) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.d)
	resp, err := t.c.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody ends the request's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
