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

// ListTokens lists every token (admin tokens only), revoked and expired ones too.
func (c *Client) ListTokens(ctx context.Context) ([]store.Token, error) {
	var ts []store.Token
	return ts, c.get(ctx, "/api/v1/tokens", nil, &ts)
}

// CreateToken creates a token; the answer carries its value, which no later call shows.
func (c *Client) CreateToken(ctx context.Context, in adminapi.TokenInput) (adminapi.CreatedToken, error) {
	var out adminapi.CreatedToken
	err := c.send(ctx, http.MethodPost, "/api/v1/tokens", in, &out)
	return out, err
}

// RevokeToken revokes a token. The server refuses (409) to revoke the token this client
// uses unless self is true.
func (c *Client) RevokeToken(ctx context.Context, id int64, self bool) (store.Token, error) {
	q := url.Values{}
	if self {
		q.Set("confirm", adminapi.ConfirmSelf)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url("/api/v1/tokens/"+strconv.FormatInt(id, 10), q), nil)
	if err != nil {
		return store.Token{}, fmt.Errorf("adminclient: %w", err)
	}
	var t store.Token
	return t, c.do(req, &t)
}
