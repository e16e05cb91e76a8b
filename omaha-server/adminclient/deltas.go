package adminclient

import (
	"context"
	"io"
	"net/http"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

func deltasPath(app, board, version string) string {
	return "/api/v1/apps/" + esc(app) + "/releases/" + esc(board) + "/" + esc(version) + "/deltas"
}

// UploadDelta publishes a delta payload of the release (app, board, version) that the
// server hosts beside the full payload: m.Size bytes streamed from payload, with optional
// signed TUF targets metadata pinning it.
func (c *Client) UploadDelta(ctx context.Context, app, board, version string, m adminapi.DeltaMetadata, targets []byte, payload io.Reader) (store.Delta, error) {
	var d store.Delta
	return d, c.upload(ctx, deltasPath(app, board, version), m, m.FileName, m.Size, targets, payload, &d)
}

// PublishDeltaExternal records a delta payload hosted elsewhere (m.URL, m.Size, m.SHA256).
func (c *Client) PublishDeltaExternal(ctx context.Context, app, board, version string, m adminapi.DeltaMetadata) (store.Delta, error) {
	var d store.Delta
	return d, c.send(ctx, http.MethodPost, deltasPath(app, board, version), m, &d)
}

// ListDeltas lists the delta payloads of a release.
func (c *Client) ListDeltas(ctx context.Context, app, board, version string) ([]store.Delta, error) {
	var d []store.Delta
	return d, c.get(ctx, deltasPath(app, board, version), nil, &d)
}
