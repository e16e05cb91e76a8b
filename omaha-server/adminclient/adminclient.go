// Package adminclient is the Go client of omaha-server's admin API (package adminapi),
// used by syctl. It sends the bearer token on every request, bounds every response it
// reads, and turns the server's {"error": …} bodies into *Error values that carry the HTTP
// status. Uploads stream the payload from an io.Reader with an exact Content-Length: the
// file is never buffered in memory.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// MaxResponseBytes bounds any response body the client reads.
const MaxResponseBytes = 64 << 20

// Error is an error answer from the server.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("server said %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// IsStatus reports whether err is an *Error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// Client talks to one server.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// New returns a client of the server at base (https://host:port) using token; hc nil
// means a client with no special settings.
func New(base, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("adminclient: server %q: want http(s)://host[:port]", base)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, token: token, hc: hc}, nil
}

// url joins the base URL and p, whose segments are already escaped.
func (c *Client) url(p string, q url.Values) string {
	s := c.base.String() + p
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

func (c *Client) do(req *http.Request, out any) error {
	_, err := c.doHeader(req, out)
	return err
}

// doHeader is do that also returns the response's header.
func (c *Client) doHeader(req *http.Request, out any) (http.Header, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("adminclient: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("adminclient: reading the response: %w", err)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("adminclient: response over %d bytes", MaxResponseBytes)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return nil, &Error{Status: resp.StatusCode, Message: msg}
	}
	if out == nil {
		return resp.Header, nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, fmt.Errorf("adminclient: decoding the response: %w", err)
	}
	return resp.Header, nil
}

func (c *Client) get(ctx context.Context, p string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(p, q), nil)
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	return c.do(req, out)
}

func (c *Client) send(ctx context.Context, method, p string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(p, nil), bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

// CreateApp creates an application.
func (c *Client) CreateApp(ctx context.Context, id, name string) (store.App, error) {
	var a store.App
	err := c.send(ctx, http.MethodPost, "/api/v1/apps", map[string]string{"id": id, "name": name}, &a)
	return a, err
}

// ListApps lists the applications.
func (c *Client) ListApps(ctx context.Context) ([]store.App, error) {
	var a []store.App
	return a, c.get(ctx, "/api/v1/apps", nil, &a)
}

// PublishExternal records a release hosted elsewhere (m.URL, m.Size, m.SHA256 set).
func (c *Client) PublishExternal(ctx context.Context, app string, m adminapi.ReleaseMetadata) (store.Release, error) {
	var r store.Release
	err := c.send(ctx, http.MethodPost, "/api/v1/apps/"+esc(app)+"/releases", m, &r)
	return r, err
}

// switchWriter lets one multipart.Writer write its parts into several buffers.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// Upload publishes a release the server hosts: m.Size bytes of payload are streamed from
// payload; targets (signed TUF targets metadata) is optional.
func (c *Client) Upload(ctx context.Context, app string, m adminapi.ReleaseMetadata, targets []byte, payload io.Reader) (store.Release, error) {
	var r store.Release
	return r, c.upload(ctx, "/api/v1/apps/"+esc(app)+"/releases", m, m.FileName, m.Size, targets, payload, &r)
}

// upload streams a multipart upload to p: the metadata part (meta as JSON), the targets
// part when targets is not nil, then size bytes of payload as file name.
func (c *Client) upload(ctx context.Context, p string, meta any, name string, size int64, targets []byte, payload io.Reader, out any) error {
	var head, tail bytes.Buffer
	sw := &switchWriter{w: &head}
	mw := multipart.NewWriter(sw)
	mj, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	part := func(name, filename, ctype string) (io.Writer, error) {
		h := textproto.MIMEHeader{}
		disp := fmt.Sprintf(`form-data; name=%q`, name)
		if filename != "" {
			disp += fmt.Sprintf(`; filename=%q`, filename)
		}
		h.Set("Content-Disposition", disp)
		h.Set("Content-Type", ctype)
		return mw.CreatePart(h)
	}
	w, err := part("metadata", "", "application/json")
	if err == nil {
		_, err = w.Write(mj)
	}
	if err == nil && targets != nil {
		if w, err = part("targets", "targets.json", "application/json"); err == nil {
			_, err = w.Write(targets)
		}
	}
	if err == nil {
		_, err = part("payload", name, "application/octet-stream")
	}
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	sw.w = &tail
	if err := mw.Close(); err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	body := io.MultiReader(&head, io.LimitReader(payload, size), &tail)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(p, nil), body)
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	req.ContentLength = int64(head.Len()) + size + int64(tail.Len())
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(req, out)
}

// ListReleases lists an application's releases.
func (c *Client) ListReleases(ctx context.Context, app string) ([]store.Release, error) {
	var r []store.Release
	return r, c.get(ctx, "/api/v1/apps/"+esc(app)+"/releases", nil, &r)
}

// CreateChannel creates a channel.
func (c *Client) CreateChannel(ctx context.Context, app, name string) (store.Channel, error) {
	var ch store.Channel
	err := c.send(ctx, http.MethodPost, "/api/v1/apps/"+esc(app)+"/channels", map[string]string{"name": name}, &ch)
	return ch, err
}

// SetChannel points a channel at a version for a board.
func (c *Client) SetChannel(ctx context.Context, app, name, board, version string) (store.Channel, error) {
	var ch store.Channel
	err := c.send(ctx, http.MethodPut, "/api/v1/apps/"+esc(app)+"/channels/"+esc(name)+"/releases/"+esc(board),
		map[string]string{"version": version}, &ch)
	return ch, err
}

// ListChannels lists an application's channels.
func (c *Client) ListChannels(ctx context.Context, app string) ([]store.Channel, error) {
	var ch []store.Channel
	return ch, c.get(ctx, "/api/v1/apps/"+esc(app)+"/channels", nil, &ch)
}

// CreateGroup creates a group.
func (c *Client) CreateGroup(ctx context.Context, app string, g adminapi.GroupInput) (store.Group, error) {
	var out store.Group
	return out, c.send(ctx, http.MethodPost, "/api/v1/apps/"+esc(app)+"/groups", g, &out)
}

// UpdateGroup changes the fields of g that are set.
func (c *Client) UpdateGroup(ctx context.Context, app, name string, g adminapi.GroupInput) (store.Group, error) {
	var out store.Group
	return out, c.send(ctx, http.MethodPatch, "/api/v1/apps/"+esc(app)+"/groups/"+esc(name), g, &out)
}

// ListGroups lists an application's groups.
func (c *Client) ListGroups(ctx context.Context, app string) ([]store.Group, error) {
	var g []store.Group
	return g, c.get(ctx, "/api/v1/apps/"+esc(app)+"/groups", nil, &g)
}

// ListInstances lists the instances matching f: at most f.Limit, or all of them when
// f.Limit is 0, walking the server's pages (adminapi.MaxInstancePage each).
func (c *Client) ListInstances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, error) {
	all := []store.Instance{}
	after := ""
	for {
		pf := f
		if f.Limit > 0 {
			pf.Limit = min(f.Limit-len(all), adminapi.MaxInstancePage)
		}
		page, next, err := c.ListInstancesPage(ctx, pf, after)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" || (f.Limit > 0 && len(all) >= f.Limit) {
			return all, nil
		}
		if next == after {
			return nil, fmt.Errorf("adminclient: listing instances: the server repeated the page after %q", after)
		}
		after = next
	}
}

// ListInstancesPage lists one page of the instances matching f (f.Limit 0: the server's
// page size), after the cursor of the previous page ("" for the first). next is the cursor
// of the following page, "" after the last.
func (c *Client) ListInstancesPage(ctx context.Context, f store.InstanceFilter, after string) (page []store.Instance, next string, err error) {
	q := url.Values{}
	for k, v := range map[string]string{"app": f.AppID, "group": f.Group, "version": f.Version, "status": string(f.Status), "after": after} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	if f.ByLastCheck {
		q.Set("sort", "last_check")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/api/v1/instances", q), nil)
	if err != nil {
		return nil, "", fmt.Errorf("adminclient: %w", err)
	}
	h, err := c.doHeader(req, &page)
	if err != nil {
		return nil, "", err
	}
	next, err = nextCursor(h.Get("Link"))
	return page, next, err
}

// nextCursor reads the "after" parameter of a Link header's rel="next" URL ("" when the
// header names no next page).
func nextCursor(link string) (string, error) {
	for _, part := range strings.Split(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(target), "<"), ">"))
		if err != nil {
			return "", fmt.Errorf("adminclient: next link %q: %w", link, err)
		}
		after := u.Query().Get("after")
		if after == "" {
			return "", fmt.Errorf("adminclient: next link %q has no after parameter", link)
		}
		return after, nil
	}
	return "", nil
}

// GetInstance returns a machine's instances with their status history.
func (c *Client) GetInstance(ctx context.Context, machineID string) ([]store.InstanceDetail, error) {
	var out []store.InstanceDetail
	return out, c.get(ctx, "/api/v1/instances/"+esc(machineID), nil, &out)
}

// ListEvents returns a machine's most recent events for app.
func (c *Client) ListEvents(ctx context.Context, app, machineID string) ([]store.Event, error) {
	var out []store.Event
	return out, c.get(ctx, "/api/v1/instances/"+esc(machineID)+"/events", url.Values{"app": {app}}, &out)
}

// GetPolicy reads a group's rollout policy and the group version it belongs to.
func (c *Client) GetPolicy(ctx context.Context, app, group string) (adminapi.PolicyInput, error) {
	var p adminapi.PolicyInput
	err := c.get(ctx, "/api/v1/apps/"+esc(app)+"/groups/"+esc(group)+"/policy", nil, &p)
	return p, err
}

// SetPolicy writes a group's rollout policy; with version > 0 the server refuses (409,
// IsStatus(err, http.StatusConflict)) when the group changed since that version.
func (c *Client) SetPolicy(ctx context.Context, app, group string, p policy.Policy, version int64) (store.Group, error) {
	in := adminapi.PolicyInput{Policy: p}
	if version > 0 {
		in.Version = &version
	}
	var g store.Group
	err := c.send(ctx, http.MethodPut, "/api/v1/apps/"+esc(app)+"/groups/"+esc(group)+"/policy", in, &g)
	return g, err
}

// RolloutStatus reads a group's progress towards version ("" for the version it is pinned
// to or its channel's release; NoRelease when it has neither).
func (c *Client) RolloutStatus(ctx context.Context, app, group, version string) (adminapi.RolloutReport, error) {
	var st adminapi.RolloutReport
	q := url.Values{}
	if version != "" {
		q.Set("version", version)
	}
	err := c.get(ctx, "/api/v1/apps/"+esc(app)+"/groups/"+esc(group)+"/rollout", q, &st)
	return st, err
}

// SetPaused pauses or resumes (and so clears a halt of) a group's rollout.
func (c *Client) SetPaused(ctx context.Context, app, group string, paused bool) (store.Group, error) {
	action := "resume"
	if paused {
		action = "pause"
	}
	var g store.Group
	err := c.send(ctx, http.MethodPost, "/api/v1/apps/"+esc(app)+"/groups/"+esc(group)+"/rollout/"+action, struct{}{}, &g)
	return g, err
}

// Promote points channel to at the releases channel from offers.
func (c *Client) Promote(ctx context.Context, app, from, to string) (store.Channel, error) {
	var ch store.Channel
	err := c.send(ctx, http.MethodPost, "/api/v1/apps/"+esc(app)+"/channels/"+esc(to)+"/promote", adminapi.PromoteInput{From: from}, &ch)
	return ch, err
}

// GetGroup reads one group, with its policy, rollout state and version.
func (c *Client) GetGroup(ctx context.Context, app, name string) (store.Group, error) {
	var g store.Group
	return g, c.get(ctx, "/api/v1/apps/"+esc(app)+"/groups/"+esc(name), nil, &g)
}
