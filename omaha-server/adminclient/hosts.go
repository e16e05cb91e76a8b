package adminclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// EnrollHostKey enrolls a host's public key (base64 Ed25519) for its machine id.
func (c *Client) EnrollHostKey(ctx context.Context, machineID, publicKey string) (store.HostKey, error) {
	var k store.HostKey
	err := c.send(ctx, http.MethodPut, "/api/v1/hosts/"+esc(machineID)+"/key", adminapi.HostKeyInput{PublicKey: publicKey}, &k)
	return k, err
}

// GetHostKey reads the key on record for a machine id.
func (c *Client) GetHostKey(ctx context.Context, machineID string) (store.HostKey, error) {
	var k store.HostKey
	err := c.get(ctx, "/api/v1/hosts/"+esc(machineID)+"/key", nil, &k)
	return k, err
}

// DeleteHostKey removes the key on record for a machine id.
func (c *Client) DeleteHostKey(ctx context.Context, machineID string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url("/api/v1/hosts/"+esc(machineID)+"/key", nil), nil)
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	return c.do(req, nil)
}

// ListHostKeys returns one page of host keys after the machine id after ("" first); limit
// 0 is the server's maximum.
func (c *Client) ListHostKeys(ctx context.Context, after string, limit int) ([]store.HostKey, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var keys []store.HostKey
	err := c.get(ctx, "/api/v1/hosts/keys", q, &keys)
	return keys, err
}
