package adminapi

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// The activity log (viewers may read it):
//
//	GET /api/v1/activity?app=&action=&subject=&actor=&since=&until=&limit=&after=
//
// Entries come newest first (store.Activity: id, at, actor, actor_token_id, action, app,
// subject, before, after, reason). Filters: app (braces and case as anywhere else), action
// (one of store.Actions), subject ("group/stable"), actor (a token's name or "system"),
// since and until (RFC 3339; since inclusive, until exclusive). Paging as for instances:
// at most limit entries (1 to store.MaxActivityPage, default the maximum; more is 400),
// and when more follow a Link: <…&after=ID>; rel="next" header, where ID is the last
// entry's id (entries older than it follow).
//
// The store writes the entries (package store); the admin API puts the bearer token's ID
// and name in each request's context, so every write made through it names its token.

func (a *API) listActivity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ActivityFilter{AppID: q.Get("app"), Action: store.Action(q.Get("action")), Subject: q.Get("subject"),
		Actor: q.Get("actor"), Limit: store.MaxActivityPage}
	if f.Action != "" && !f.Action.Valid() {
		a.fail(w, r, badRequest("action %q: want one of %v", f.Action, store.Actions()))
		return
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(t.name); s != "" {
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || at.UnixMilli() <= 0 {
				a.fail(w, r, badRequest("%s %q: want an RFC 3339 time after 1970", t.name, s))
				return
			}
			*t.dst = at
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 || n > store.MaxActivityPage {
			a.fail(w, r, badRequest("limit %q: want a number from 1 to %d (walk the rest with the next link)", l, store.MaxActivityPage))
			return
		}
		f.Limit = n
	}
	if c := q.Get("after"); c != "" {
		id, err := strconv.ParseInt(c, 10, 64)
		if err != nil || id <= 0 {
			a.fail(w, r, badRequest("after %q: not a cursor from a next link", c))
			return
		}
		f.BeforeID = id
	}
	// One more than asked says whether a next page exists.
	page := f.Limit
	f.Limit++
	list, err := a.cfg.Store.ListActivity(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(list) > page {
		list = list[:page]
		q.Set("after", strconv.FormatInt(list[page-1].ID, 10))
		q.Set("limit", strconv.Itoa(page))
		next := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		w.Header().Set("Link", "<"+next.String()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, list)
}
