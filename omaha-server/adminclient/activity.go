package adminclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// ListActivity lists the activity entries matching f, newest first: at most f.Limit, or
// all of them when f.Limit is 0, walking the server's pages (store.MaxActivityPage each).
// f.BeforeID starts after that entry.
func (c *Client) ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, error) {
	all := []store.Activity{}
	after := ""
	if f.BeforeID > 0 {
		after = strconv.FormatInt(f.BeforeID, 10)
	}
	for {
		pf := f
		pf.Limit = store.MaxActivityPage
		if f.Limit > 0 {
			pf.Limit = min(f.Limit-len(all), store.MaxActivityPage)
		}
		page, next, err := c.ListActivityPage(ctx, pf, after)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" || (f.Limit > 0 && len(all) >= f.Limit) {
			return all, nil
		}
		if next == after {
			return nil, fmt.Errorf("adminclient: listing activity: the server repeated the page after %q", after)
		}
		after = next
	}
}

// ListActivityPage lists one page of the entries matching f (f.Limit 0: the server's page
// size; f.BeforeID is ignored), after the cursor of the previous page ("" for the first).
// next is the cursor of the following page, "" after the last.
func (c *Client) ListActivityPage(ctx context.Context, f store.ActivityFilter, after string) (page []store.Activity, next string, err error) {
	q := url.Values{}
	for k, v := range map[string]string{"app": f.AppID, "action": string(f.Action), "subject": f.Subject, "actor": f.Actor, "after": after} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, t := range map[string]time.Time{"since": f.Since, "until": f.Until} {
		if !t.IsZero() {
			q.Set(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/api/v1/activity", q), nil)
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
