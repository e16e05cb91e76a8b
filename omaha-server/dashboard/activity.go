package dashboard

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"strconv"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// The activity panel: the latest entries of the activity log (package store), newest
// first, for the application shown. static/activity.js renders it into the page's
// <section id="activity"> and refreshes it; it reads /dashboard/api/activity?app=&limit=
// (limit 1 to maxActivityPanel, default defaultActivityPanel), which needs a session like
// every other dashboard endpoint. The script itself holds no data and is served without
// one.

// ActivityLog lists the activity log. A Source that also implements it gets the panel;
// without it the endpoint answers an empty list.
type ActivityLog interface {
	ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, error)
}

const (
	defaultActivityPanel = 20
	maxActivityPanel     = 100
)

//go:embed static/activity.js
var activityJS []byte

// registerActivity mounts the panel's endpoint and script on m.
func (d *Dashboard) registerActivity(m *http.ServeMux) {
	m.Handle("GET /dashboard/api/activity", d.api(d.activity))
	m.HandleFunc("GET /dashboard/activity.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(activityJS)
	})
}

func (d *Dashboard) activity(r *http.Request) (any, error) {
	q := r.URL.Query()
	app := q.Get("app")
	if len(app) > maxQueryLen {
		return nil, badRequest("app id too long")
	}
	limit := defaultActivityPanel
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxActivityPanel {
			return nil, badRequest(fmt.Sprintf("limit must be 1..%d", maxActivityPanel))
		}
		limit = n
	}
	log, ok := d.cfg.Source.(ActivityLog)
	if !ok {
		return []store.Activity{}, nil
	}
	out, err := log.ListActivity(r.Context(), store.ActivityFilter{AppID: app, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("dashboard: reading the activity log: %w", err)
	}
	return out, nil
}
