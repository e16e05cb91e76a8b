package sqldb

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// The activity log (migration 7). A write that records an entry collects it in a
// recorder: the row is inserted in the write's transaction, and the entries reach the
// observer (ObserveActivity) only after that transaction committed. A transaction run
// again (group commit's one-by-one retry) starts its recorder afresh.

// recorder collects the entries one transaction writes.
type recorder struct {
	db      *DB
	entries []store.Activity
}

// reset forgets the entries of a transaction that is about to run again.
func (r *recorder) reset() { r.entries = r.entries[:0] }

// add inserts a (time and actor filled in from the clock and ctx) in tx.
func (r *recorder) add(ctx context.Context, tx *sql.Tx, a store.Activity) error {
	if a.At.IsZero() {
		a.At = fromMS(ms(r.db.now()))
	}
	if a.Actor == "" {
		act := store.ActorOf(ctx)
		a.Actor, a.ActorTokenID = act.Name, act.TokenID
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO activity (at, actor, actor_token_id, action, app_id, subject, before_json, after_json, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		ms(a.At), a.Actor, a.ActorTokenID, string(a.Action), a.AppID, a.Subject, string(a.Before), string(a.After), a.Reason).Scan(&a.ID)
	if err != nil {
		return fmt.Errorf("recording activity: %w", err)
	}
	r.entries = append(r.entries, a)
	return nil
}

// publish hands the committed entries to the observer.
func (r *recorder) publish() {
	if len(r.entries) == 0 {
		return
	}
	if fn := r.db.observer.Load(); fn != nil {
		for _, a := range r.entries {
			(*fn)(a)
		}
	}
}

// recordTx runs fn in a write transaction with a recorder and publishes its entries
// after the commit.
func (db *DB) recordTx(ctx context.Context, fn func(tx *sql.Tx, rec *recorder) error) error {
	rec := &recorder{db: db}
	err := db.inTx(ctx, func(tx *sql.Tx) error { return fn(tx, rec) })
	if err == nil {
		rec.publish()
	}
	return err
}

// ObserveActivity implements store.Store.
func (db *DB) ObserveActivity(fn func(store.Activity)) {
	if fn == nil {
		db.observer.Store(nil)
		return
	}
	db.observer.Store(&fn)
}

// RecordActivity implements store.Store.
func (db *DB) RecordActivity(ctx context.Context, a store.Activity) (store.Activity, error) {
	if !a.Action.Valid() || a.Subject == "" {
		return store.Activity{}, db.errorf("recording activity: action %q with subject %q: %w", a.Action, a.Subject, store.ErrInvalid)
	}
	for _, j := range []json.RawMessage{a.Before, a.After} {
		if len(j) > 0 && !json.Valid(j) {
			return store.Activity{}, db.errorf("recording activity: before and after must be JSON: %w", store.ErrInvalid)
		}
	}
	a.AppID = store.NormalizeAppID(a.AppID)
	a.ID, a.At = 0, fromMS(ms(a.At))
	var out store.Activity
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		if err := rec.add(ctx, tx, a); err != nil {
			return err
		}
		out = rec.entries[0]
		return nil
	})
	return out, db.wrap("recording activity", err)
}

// ListActivity implements store.Store.
func (db *DB) ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, error) {
	switch {
	case f.Limit <= 0:
		f.Limit = store.MaxActivityPage
	case f.Limit > store.MaxActivityPage+1:
		f.Limit = store.MaxActivityPage + 1
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, at, actor, actor_token_id, action, app_id, subject, before_json, after_json, reason
		FROM activity
		WHERE ($1 = '' OR app_id = $1) AND ($2 = '' OR action = $2) AND ($3 = '' OR subject = $3) AND ($4 = '' OR actor = $4)
		AND at >= $5 AND (CAST($6 AS BIGINT) = 0 OR at < $6) AND (CAST($7 AS BIGINT) = 0 OR id < $7)
		ORDER BY id DESC LIMIT $8`,
		store.NormalizeAppID(f.AppID), string(f.Action), f.Subject, f.Actor, ms(f.Since), ms(f.Until), f.BeforeID, f.Limit)
	if err != nil {
		return nil, db.wrap("listing activity", err)
	}
	defer rows.Close()
	out := []store.Activity{}
	for rows.Next() {
		var a store.Activity
		var at int64
		var action, before, after string
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.ActorTokenID, &action, &a.AppID, &a.Subject, &before, &after, &a.Reason); err != nil {
			return nil, db.wrap("listing activity", err)
		}
		a.At, a.Action = fromMS(at), store.Action(action)
		if before != "" {
			a.Before = json.RawMessage(before)
		}
		if after != "" {
			a.After = json.RawMessage(after)
		}
		out = append(out, a)
	}
	return out, db.wrap("listing activity", rows.Err())
}

// changes returns the fields of before and after (values that marshal to JSON objects;
// nil for none) that differ, nested objects flattened to dotted keys ("policy.percent"),
// leaving out the keys in ignore. A field only one side has is a change.
func changes(before, after any, ignore ...string) (b, a json.RawMessage, err error) {
	fb, err := flatten(before)
	if err != nil {
		return nil, nil, err
	}
	fa, err := flatten(after)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range ignore {
		delete(fb, k)
		delete(fa, k)
	}
	if fb != nil && fa != nil {
		for k, v := range fb {
			if w, ok := fa[k]; ok && bytes.Equal(v, w) {
				delete(fb, k)
				delete(fa, k)
			}
		}
	}
	enc := func(m map[string]json.RawMessage) (json.RawMessage, error) {
		if m == nil {
			return nil, nil
		}
		return json.Marshal(m)
	}
	if b, err = enc(fb); err != nil {
		return nil, nil, err
	}
	a, err = enc(fa)
	return b, a, err
}

// flatten marshals v (nil: nil) and flattens its nested objects to dotted keys.
func flatten(v any) (map[string]json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	var walk func(prefix string, raw json.RawMessage) error
	walk = func(prefix string, raw json.RawMessage) error {
		var m map[string]json.RawMessage
		if len(raw) == 0 || raw[0] != '{' {
			out[prefix] = raw
			return nil
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		if len(m) == 0 && prefix != "" {
			out[prefix] = raw
		}
		for k, v := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			if err := walk(key, v); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk("", raw)
}

// groupView is what an activity entry shows of a group.
func groupView(g store.Group) any {
	return struct {
		Track          string `json:"track"`
		Channel        string `json:"channel"`
		UpdatesEnabled bool   `json:"updates_enabled"`
		Policy         any    `json:"policy"`
		Paused         bool   `json:"paused"`
		HaltReason     string `json:"halt_reason"`
	}{g.Track, g.Channel, g.UpdatesEnabled, g.Policy, g.Paused, g.HaltReason}
}

// groupEntry is the entry of a change of a group to after from before (groupView's JSON;
// nil for a create).
func groupEntry(action store.Action, before json.RawMessage, after store.Group, reason string) (store.Activity, error) {
	var bv any
	if before != nil {
		bv = before
	}
	b, a, err := changes(bv, groupView(after))
	if err != nil {
		return store.Activity{}, err
	}
	if action == store.ActionGroupUpdate && policyOnly(a) {
		action = store.ActionGroupPolicy
	}
	return store.Activity{Action: action, AppID: after.AppID, Subject: "group/" + after.Name, Before: b, After: a, Reason: reason}, nil
}

// policyOnly reports whether the changed fields a (from changes) are all policy fields.
func policyOnly(a json.RawMessage) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(a, &m) != nil || len(m) == 0 {
		return false
	}
	for k := range m {
		if !strings.HasPrefix(k, "policy.") && k != "policy" {
			return false
		}
	}
	return true
}

// tokenView is what an activity entry shows of a token: never its hash.
func tokenView(t store.Token) any {
	return struct {
		Name      string     `json:"name"`
		Role      store.Role `json:"role"`
		ExpiresAt int64      `json:"expires_at_ms,omitempty"`
		Revoked   bool       `json:"revoked"`
	}{t.Name, t.Role, ms(t.ExpiresAt), !t.RevokedAt.IsZero()}
}

func tokenSubject(id int64) string { return "token/" + strconv.FormatInt(id, 10) }

// channelVersions maps a channel's boards to the versions it offers.
func channelVersions(c store.Channel) map[string]string {
	out := map[string]string{}
	for b, r := range c.Releases {
		out[b] = r.Version
	}
	return out
}

// PromoteChannel implements store.Store.
func (db *DB) PromoteChannel(ctx context.Context, appID, channel, from string) (store.Channel, error) {
	appID = store.NormalizeAppID(appID)
	if channel == from {
		return store.Channel{}, db.errorf("promoting %q: the source is the channel itself: %w", channel, store.ErrInvalid)
	}
	var out store.Channel
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		src, err := listChannels(ctx, tx, appID, from)
		if err != nil {
			return err
		}
		if len(src) == 0 {
			return fmt.Errorf("channel %q: %w", from, store.ErrNotFound)
		}
		if len(src[0].Releases) == 0 {
			return fmt.Errorf("channel %q offers no release: %w", from, store.ErrInvalid)
		}
		dst, err := listChannels(ctx, tx, appID, channel)
		if err != nil {
			return err
		}
		if len(dst) == 0 {
			return fmt.Errorf("channel %q: %w", channel, store.ErrNotFound)
		}
		for board, r := range src[0].Releases {
			if err := db.setChannelRelease(ctx, tx, dst[0].ID, board, r.ID); err != nil {
				return err
			}
		}
		if err := bumpGeneration(ctx, tx); err != nil {
			return err
		}
		after, err := listChannels(ctx, tx, appID, channel)
		if err != nil {
			return err
		}
		out = after[0]
		b, a, err := changes(channelVersions(dst[0]), channelVersions(out))
		if err != nil {
			return err
		}
		return rec.add(ctx, tx, store.Activity{Action: store.ActionChannelPromote, AppID: appID, Subject: "channel/" + channel,
			Before: b, After: a, Reason: "from channel " + from})
	})
	return out, db.wrap(fmt.Sprintf("promoting channel %q from %q", channel, from), err)
}

// setChannelRelease points channel chID at release relID for board.
func (db *DB) setChannelRelease(ctx context.Context, tx *sql.Tx, chID int64, board string, relID int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO channel_releases (channel_id, board, release_id, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (channel_id, board) DO UPDATE SET release_id = excluded.release_id, updated_at = excluded.updated_at`,
		chID, board, relID, ms(db.now()))
	return err
}
