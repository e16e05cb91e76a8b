package fleetlock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// Client is a host's side of FleetLock: Lock is RecursiveLock (pre-reboot), Unlock is
// UnlockIfHeld (steady-state). It implements the strategy package's Locker. Lock does not
// wait: a full group is an error (IsFull) and the strategy retries with backoff.
type Client struct {
	base      string
	body      []byte
	http      *http.Client
	id, group string
}

// NewClient returns a client for the server at baseURL ("${group}" in it is replaced by
// group). hc is the HTTP client (its transport carries any TLS settings).
func NewClient(baseURL, group, id string, hc *http.Client) (*Client, error) {
	if err := rebootlock.ValidateGroup(group); err != nil {
		return nil, fmt.Errorf("fleetlock: %w", err)
	}
	if err := rebootlock.ValidateID(id); err != nil {
		return nil, fmt.Errorf("fleetlock: %w", err)
	}
	base := strings.ReplaceAll(baseURL, "${group}", group)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fleetlock: base URL %q is not an http(s) URL", baseURL)
	}
	if hc == nil {
		return nil, errors.New("fleetlock: nil HTTP client")
	}
	body, _ := json.Marshal(Request{ClientParams: &ClientParams{ID: id, Group: group}})
	return &Client{base: strings.TrimSuffix(base, "/"), body: body, http: hc, id: id, group: group}, nil
}

// Lock takes a slot (pre-reboot); it succeeds if this host already holds one.
func (c *Client) Lock(ctx context.Context) error { return c.post(ctx, PreReboot) }

// Unlock releases the slot (steady-state); it succeeds if none is held.
func (c *Client) Unlock(ctx context.Context) error { return c.post(ctx, SteadyState) }

func (c *Client) post(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(c.body))
	if err != nil {
		return fmt.Errorf("fleetlock: %w", err)
	}
	req.Header.Set(Header, "true")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("fleetlock: %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody))
		return nil
	}
	return decodeError(resp.StatusCode, resp.Body)
}
