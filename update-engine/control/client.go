package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// maxResponse bounds what the client reads from the daemon.
const maxResponse = 1 << 20

// Client talks to the daemon's socket.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{Socket: path, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// Status returns the current snapshot.
func (c *Client) Status(ctx context.Context) (engine.Snapshot, error) {
	return c.do(ctx, http.MethodGet, "/v1/status")
}

// Wait returns the first snapshot with Seq above after (or the current one after the
// server's WaitTimeout).
func (c *Client) Wait(ctx context.Context, after uint64) (engine.Snapshot, error) {
	return c.do(ctx, http.MethodGet, "/v1/status?after="+strconv.FormatUint(after, 10))
}

// Check asks for an on-demand check.
func (c *Client) Check(ctx context.Context) (engine.Snapshot, error) {
	return c.do(ctx, http.MethodPost, "/v1/check")
}

// MarkGood marks the running partition good.
func (c *Client) MarkGood(ctx context.Context) (engine.Snapshot, error) {
	return c.do(ctx, http.MethodPost, "/v1/mark-good")
}

// Rollback makes the other partition boot next.
func (c *Client) Rollback(ctx context.Context) (engine.Snapshot, error) {
	return c.do(ctx, http.MethodPost, "/v1/rollback")
}

// ResetStatus returns an UPDATED_NEED_REBOOT daemon to IDLE (Flatcar's ResetStatus).
func (c *Client) ResetStatus(ctx context.Context) (engine.Snapshot, error) {
	return c.do(ctx, http.MethodPost, "/v1/reset-status")
}

func (c *Client) do(ctx context.Context, method, path string) (engine.Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://update-engine"+path, nil)
	if err != nil {
		return engine.Snapshot{}, fmt.Errorf("control: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return engine.Snapshot{}, fmt.Errorf("control: is update-engine running? %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return engine.Snapshot{}, fmt.Errorf("control: reading the answer: %w", err)
	}
	if len(body) > maxResponse {
		return engine.Snapshot{}, fmt.Errorf("control: answer larger than %d bytes", maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusConflict {
				return engine.Snapshot{}, fmt.Errorf("%w: %s", ErrBusy, e.Error)
			}
			return engine.Snapshot{}, &RemoteError{Status: resp.StatusCode, Msg: e.Error}
		}
		return engine.Snapshot{}, &RemoteError{Status: resp.StatusCode, Msg: resp.Status}
	}
	var s engine.Snapshot
	if err := json.Unmarshal(body, &s); err != nil {
		return engine.Snapshot{}, fmt.Errorf("control: decoding the answer: %w", err)
	}
	return s, nil
}

// RemoteError is an error the daemon answered with.
type RemoteError struct {
	Status int
	Msg    string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("update-engine: %s", e.Msg) }
