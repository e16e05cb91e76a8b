package adminclient

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
)

// TUFState returns what the server's TUF repository serves now.
func (c *Client) TUFState(ctx context.Context) (tufhost.State, error) {
	var st tufhost.State
	err := c.send(ctx, http.MethodGet, "/api/v1/tuf", nil, &st)
	return st, err
}

// PublishTUFRoot uploads the next root metadata, byte for byte as signed.
func (c *Client) PublishTUFRoot(ctx context.Context, root []byte) (tufhost.State, error) {
	var st tufhost.State
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/api/v1/tuf/roots", nil), bytes.NewReader(root))
	if err != nil {
		return st, fmt.Errorf("adminclient: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	err = c.do(req, &st)
	return st, err
}
