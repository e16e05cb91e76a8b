package omaha

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// Doer sends one HTTP request; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// HTTPError is an answer other than 200 OK to an Omaha POST.
type HTTPError struct {
	StatusCode int
	Status     string
}

func (e *HTTPError) Error() string { return "omaha: server answered " + e.Status }

// ErrorCode is the code a Flatcar engine reports for a failed check: 2000 plus the HTTP
// status, capped at 2999.
func (e *HTTPError) ErrorCode() ErrorCode { return HTTPErrorCode(e.StatusCode) }

// HTTPErrorCode is ErrorCodeHTTPResponseBase plus status, with status capped at 999.
func HTTPErrorCode(status int) ErrorCode {
	switch {
	case status < 0:
		status = 0
	case status > 999:
		status = 999
	}
	return ErrorCodeHTTPResponseBase + ErrorCode(status)
}

// Send POSTs req to url as text/xml and parses the answer with the given limits (zero fields
// mean the defaults). A non-200 answer is an *HTTPError; the body of any answer is read at
// most to the body limit and closed.
func Send(ctx context.Context, d Doer, url string, req *Request, lim Limits) (*Response, error) {
	body, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("omaha: building request: %w", err)
	}
	hreq.Header.Set("Content-Type", "text/xml")
	resp, err := d.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("omaha: posting to %s: %w", url, err)
	}
	defer func() {
		// Drain a little so the connection can be reused, never much.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{StatusCode: resp.StatusCode, Status: resp.Status}
	}
	return lim.ParseResponse(resp.Body)
}
