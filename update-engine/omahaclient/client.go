// Package omahaclient is update-engine's side of Omaha v3: it sends the requests a Flatcar
// update_engine sends (package omaha builds them) and reads the answers.
//
// # Requests
//
//	update check   <ping active="1">, <updatecheck>, optional events; installsource is
//	               "ondemandupdate" for a check asked for by a person, else "scheduler";
//	               app@delta_okay "true" when DeltaOK (the host applies delta payloads),
//	               always "false" from CheckFull
//	ping           <ping active="1"> only (while an applied update waits for its reboot)
//	events         <event .../> only: 13/1, 14/1, 3/1, 3/2 previousversion, 3/0 errorcode
//
// Every request carries the host's identity (omaha.Host): app id, running version, track
// (GROUP), board, machine id (/etc/machine-id or config), boot id (braced, from
// /proc/sys/kernel/random/boot_id), aleph version (the first version this install ran, kept in
// the state), OEM and OEM version.
//
// # Errors and their Omaha codes
//
//	transport failure (no answer)       2  OmahaRequestError        (*RequestError)
//	HTTP status other than 200           2000+status, at most 2999  (*HTTPError)
//	empty body                           30 OmahaRequestEmptyResponseError
//	unparsable XML, over the size cap    31 OmahaRequestXMLParseError
//	error status / invalid offer         34 OmahaResponseInvalid    (omaha.StatusError, omaha.ValidationError)
//
// Each error type has an ErrorCode method, which the engine reports. Responses are read
// through omaha.ParseResponse (size-capped, no entity expansion).
package omahaclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/omaha"
)

// maxResponse bounds the body read from the server.
const maxResponse = 1 << 20

// HTTPDoer is the part of *http.Client the client uses.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client talks to one Omaha endpoint.
type Client struct {
	URL  string // SERVER, e.g. https://updates.example/v1/update/
	HTTP HTTPDoer
	Host omaha.Host
	Log  *slog.Logger
	// Signer, when set, signs every request (the host identity extension, package
	// omaha/hostsig); nil sends requests unsigned, as Flatcar does.
	Signer Signer
	// DeltaOK sends delta_okay="true" with update checks: this host applies delta
	// payloads (CheckFull never does). False sends "false", as Flatcar's engine does.
	DeltaOK bool
}

// Signer adds a host signature to a request whose body is body (identity.Identity).
type Signer interface {
	SignRequest(req *http.Request, body []byte) error
}

// HTTPError is a non-200 answer.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("omahaclient: server answered HTTP %d: %s", e.Status, e.Body)
}

// ErrorCode is 2000 + the HTTP status, as Flatcar reports it.
func (e *HTTPError) ErrorCode() omaha.ErrorCode {
	return omaha.ErrorCodeHTTPResponseBase + omaha.ErrorCode(min(max(e.Status, 0), 999))
}

// RequestError is a request that got no answer.
type RequestError struct{ Err error }

func (e *RequestError) Error() string              { return "omahaclient: " + e.Err.Error() }
func (e *RequestError) Unwrap() error              { return e.Err }
func (e *RequestError) ErrorCode() omaha.ErrorCode { return omaha.ErrorCodeOmahaRequestError }

// ResponseError is an answer that is not a usable Omaha response.
type ResponseError struct {
	Code omaha.ErrorCode
	Err  error
}

func (e *ResponseError) Error() string              { return "omahaclient: " + e.Err.Error() }
func (e *ResponseError) Unwrap() error              { return e.Err }
func (e *ResponseError) ErrorCode() omaha.ErrorCode { return e.Code }

// Check sends an update check, with delta_okay as DeltaOK says. It returns nil, nil for
// noupdate.
func (c *Client) Check(ctx context.Context, onDemand bool, events ...*omaha.Event) (*omaha.Offer, error) {
	return c.check(ctx, onDemand, c.DeltaOK, events...)
}

// CheckFull sends an update check with delta_okay="false": the server then offers the
// full payload (the fallback after a delta did not fit the active partition).
func (c *Client) CheckFull(ctx context.Context, onDemand bool) (*omaha.Offer, error) {
	return c.check(ctx, onDemand, false)
}

func (c *Client) check(ctx context.Context, onDemand, deltaOK bool, events ...*omaha.Event) (*omaha.Offer, error) {
	req := omaha.NewUpdateCheckRequest(c.Host, onDemand, events...)
	req.Apps[0].DeltaOK = deltaOK
	resp, err := c.post(ctx, req)
	if err != nil {
		return nil, err
	}
	offer, err := resp.Offer(c.appID())
	switch {
	case errors.Is(err, omaha.ErrNoUpdate):
		return nil, nil
	case err != nil:
		return nil, &ResponseError{Code: omaha.ErrorCodeOmahaResponseInvalid, Err: err}
	}
	return offer, nil
}

// Ping sends a ping-only request.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.post(ctx, omaha.NewPingRequest(c.Host))
	return err
}

// Report sends events. The answer's content is not checked beyond being Omaha XML: Flatcar
// treats events as fire and forget.
func (c *Client) Report(ctx context.Context, events ...*omaha.Event) error {
	if len(events) == 0 {
		return nil
	}
	_, err := c.post(ctx, omaha.NewEventRequest(c.Host, events...))
	if err == nil && c.Log != nil {
		for _, e := range events {
			c.Log.Info("event reported", "type", int(e.Type), "result", int(e.Result), "code", uint32(e.Code()), "previous", e.PreviousVersion)
		}
	}
	return err
}

func (c *Client) appID() string {
	if c.Host.AppID == "" {
		return omaha.FlatcarAppID
	}
	return c.Host.AppID
}

func (c *Client) post(ctx context.Context, r *omaha.Request) (*omaha.Response, error) {
	body, err := r.Marshal()
	if err != nil {
		return nil, fmt.Errorf("omahaclient: building the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, &RequestError{Err: err}
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	if c.Signer != nil {
		if err := c.Signer.SignRequest(req, body); err != nil {
			return nil, &RequestError{Err: fmt.Errorf("signing the request: %w", err)}
		}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, &RequestError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return nil, &HTTPError{Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, &RequestError{Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(data) == 0 {
		return nil, &ResponseError{Code: omaha.ErrorCodeOmahaRequestEmptyResponseError, Err: errors.New("empty answer")}
	}
	if len(data) > maxResponse {
		return nil, &ResponseError{Code: omaha.ErrorCodeOmahaRequestXMLParseError, Err: fmt.Errorf("answer larger than %d bytes", maxResponse)}
	}
	parsed, err := omaha.ParseResponse(bytes.NewReader(data))
	if err != nil {
		return nil, &ResponseError{Code: omaha.ErrorCodeOmahaRequestXMLParseError, Err: err}
	}
	return parsed, nil
}

// maxIDFile bounds the read of a machine id or boot id file (33 and 37 bytes with the
// newline).
const maxIDFile = 4 << 10

// ReadMachineID reads a machine id file (/etc/machine-id): 32 hex digits, no braces.
func ReadMachineID(path string) (string, error) {
	b, err := smallfile.Read(path, maxIDFile)
	if err != nil {
		return "", fmt.Errorf("omahaclient: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if !isHex(id, 32) {
		return "", fmt.Errorf("omahaclient: %s does not hold a machine id", path)
	}
	return id, nil
}

// ReadBootID reads /proc/sys/kernel/random/boot_id and returns it in braces, as Flatcar
// sends it.
func ReadBootID(path string) (string, error) {
	b, err := smallfile.Read(path, maxIDFile)
	if err != nil {
		return "", fmt.Errorf("omahaclient: %w", err)
	}
	id := strings.Trim(strings.TrimSpace(string(b)), "{}")
	if len(id) != 36 || !isHex(strings.ReplaceAll(id, "-", ""), 32) {
		return "", fmt.Errorf("omahaclient: %s does not hold a boot id", path)
	}
	return "{" + id + "}", nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
