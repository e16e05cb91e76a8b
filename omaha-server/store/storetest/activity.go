package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// observed collects what ObserveActivity hands over.
type observed struct {
	mu      sync.Mutex
	entries []store.Activity
}

func (o *observed) add(a store.Activity) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.entries = append(o.entries, a)
}

func (o *observed) take() []store.Activity {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.entries
	o.entries = nil
	return out
}

// wantEntry checks one entry's action, subject and actor, and its before and after JSON
// (compared as JSON; "" for absent).
func wantEntry(t *testing.T, a store.Activity, action store.Action, subject, actor, before, after string) {
	t.Helper()
	if a.Action != action || a.Subject != subject || a.Actor != actor || a.ID == 0 || a.At.IsZero() {
		t.Errorf("entry %+v, want %s %s by %s", a, action, subject, actor)
	}
	for _, c := range []struct {
		name      string
		got, want string
	}{{"before", string(a.Before), before}, {"after", string(a.After), after}} {
		if !jsonEqual(c.got, c.want) {
			t.Errorf("%s %s: %s = %s, want %s", action, subject, c.name, c.got, c.want)
		}
	}
}

func jsonEqual(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// testActivity: every write records one entry in its transaction, with the actor from
// the context ("system" without one) and what changed from what to what; a refused write
// records none; the observer sees exactly the committed entries; the filters and paging
// of ListActivity.
func testActivity(t *testing.T, s store.Store) {
	obs := &observed{}
	s.ObserveActivity(obs.add)
	t.Cleanup(func() { s.ObserveActivity(nil) })
	ops := store.Actor{TokenID: 7, Name: "ops"}
	ctx := store.WithActor(context.Background(), ops)

	seed(t, s) // no actor in its context: the system's
	seeded := obs.take()
	if len(seeded) != 5 {
		t.Fatalf("seeding recorded %d entries, want 5: %+v", len(seeded), seeded)
	}
	wantEntry(t, seeded[0], store.ActionAppCreate, "app/"+appID, store.SystemActor, "", `{"name":"Flatcar"}`)
	wantEntry(t, seeded[1], store.ActionReleaseCreate, "release/4081.2.0/amd64-usr", store.SystemActor, "",
		`{"board":"amd64-usr","file_name":"flatcar_production_update.gz","hosted":true,"sha256":"`+sha+`","size":1234,"targets_metadata":false,"version":"4081.2.0"}`)
	wantEntry(t, seeded[2], store.ActionChannelCreate, "channel/stable", store.SystemActor, "", `{}`)
	wantEntry(t, seeded[3], store.ActionChannelSet, "channel/stable", store.SystemActor, `{}`, `{"amd64-usr":"4081.2.0"}`)
	if seeded[4].Action != store.ActionGroupCreate || seeded[4].AppID != appID || seeded[4].Before != nil {
		t.Errorf("group create entry %+v", seeded[4])
	}

	must(s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error { g.UpdatesEnabled = false; return nil }))(t)
	fifty := 50
	must(s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error { g.Policy.Percent = &fifty; return nil }))(t)
	// Refused writes record nothing.
	_, err := s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error { g.Channel = "nope"; return nil })
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateRelease(ctx, release("4081.2.0", "amd64-usr"))
	wantErr(t, err, store.ErrConflict)
	_, err = s.SetRolloutState(ctx, appID, "nope", true)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RevokeToken(ctx, 999)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteHostKey(ctx, "no-such-machine"), store.ErrNotFound)
	_, err = s.PromoteChannel(ctx, appID, "stable", "nope")
	wantErr(t, err, store.ErrNotFound)

	must(s.SetRolloutState(ctx, appID, "stable", true))(t)
	must(s.SetRolloutState(ctx, appID, "stable", false))(t)
	must(s.CreateRelease(ctx, release("4081.3.0", "amd64-usr")))(t)
	must(s.CreateChannel(ctx, store.Channel{AppID: appID, Name: "beta"}))(t)
	_, err = s.PromoteChannel(ctx, appID, "stable", "beta")
	wantErr(t, err, store.ErrInvalid) // beta offers nothing yet
	must(s.SetChannelRelease(ctx, appID, "beta", "amd64-usr", "4081.3.0"))(t)
	promoted := must(s.PromoteChannel(ctx, appID, "stable", "beta"))(t)
	if promoted.Releases["amd64-usr"].Version != "4081.3.0" {
		t.Errorf("promoted %+v", promoted)
	}
	tok := must(s.CreateToken(ctx, store.Token{Hash: strings.Repeat("ef", 32), Name: "ci", Role: store.RoleViewer}))(t)
	must(s.RevokeToken(ctx, tok.ID))(t)
	must(s.EnrollHostKey(ctx, store.HostKey{MachineID: "m1", PublicKey: "key-a"}))(t)
	if err := s.DeleteHostKey(ctx, "m1"); err != nil {
		t.Fatal(err)
	}

	got := obs.take()
	want := []struct {
		action          store.Action
		subject         string
		before, after   string
		reasonContains  string
		app             string
		noSecretsInJSON bool
	}{
		{action: store.ActionGroupUpdate, subject: "group/stable", before: `{"updates_enabled":true}`, after: `{"updates_enabled":false}`, app: appID},
		{action: store.ActionGroupPolicy, subject: "group/stable", before: `{"policy":{}}`, after: `{"policy.percent":50}`, app: appID},
		{action: store.ActionGroupPause, subject: "group/stable", before: `{"paused":false}`, after: `{"paused":true}`, app: appID},
		{action: store.ActionGroupResume, subject: "group/stable", before: `{"paused":true}`, after: `{"paused":false}`, app: appID},
		{action: store.ActionReleaseCreate, subject: "release/4081.3.0/amd64-usr",
			after: `{"board":"amd64-usr","file_name":"flatcar_production_update.gz","hosted":true,"sha256":"` + sha + `","size":1234,"targets_metadata":false,"version":"4081.3.0"}`, app: appID},
		{action: store.ActionChannelCreate, subject: "channel/beta", after: `{}`, app: appID},
		{action: store.ActionChannelSet, subject: "channel/beta", before: `{}`, after: `{"amd64-usr":"4081.3.0"}`, app: appID},
		{action: store.ActionChannelPromote, subject: "channel/stable", before: `{"amd64-usr":"4081.2.0"}`, after: `{"amd64-usr":"4081.3.0"}`,
			reasonContains: "beta", app: appID},
		{action: store.ActionTokenCreate, subject: "token/" + itoa(tok.ID), after: `{"name":"ci","role":"viewer","revoked":false}`},
		{action: store.ActionTokenRevoke, subject: "token/" + itoa(tok.ID), before: `{"revoked":false}`, after: `{"revoked":true}`, reasonContains: "ci"},
		{action: store.ActionHostKeyEnroll, subject: "host/m1", after: `{"public_key":"key-a","enrolled":true}`},
		{action: store.ActionHostKeyRemove, subject: "host/m1", before: `{"public_key":"key-a","enrolled":true}`},
	}
	if len(got) != len(want) {
		for _, g := range got {
			t.Logf("entry %s %s %s → %s", g.Action, g.Subject, g.Before, g.After)
		}
		t.Fatalf("observed %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		wantEntry(t, got[i], w.action, w.subject, "ops", w.before, w.after)
		if got[i].ActorTokenID != 7 || got[i].AppID != w.app || !strings.Contains(got[i].Reason, w.reasonContains) {
			t.Errorf("entry %d: %+v", i, got[i])
		}
		if strings.Contains(string(got[i].After)+string(got[i].Before), strings.Repeat("ef", 32)) {
			t.Errorf("entry %d holds the token's hash: %+v", i, got[i])
		}
	}

	// The log holds what the observer saw, newest first.
	all := must(s.ListActivity(ctx, store.ActivityFilter{}))(t)
	if len(all) != len(seeded)+len(got) || all[0].ID != got[len(got)-1].ID || all[len(all)-1].ID != seeded[0].ID {
		t.Fatalf("ListActivity: %d entries, want %d newest first", len(all), len(seeded)+len(got))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Fatalf("not newest first at %d: %d after %d", i, all[i].ID, all[i-1].ID)
		}
	}
	if !jsonEqual(string(all[0].Before), `{"public_key":"key-a","enrolled":true}`) || all[0].After != nil {
		t.Errorf("stored entry %+v", all[0])
	}

	filters := []struct {
		name string
		f    store.ActivityFilter
		want int
	}{
		{"app, braces and case", store.ActivityFilter{AppID: "{" + strings.ToUpper(appID) + "}"}, 5 + 8},
		{"action", store.ActivityFilter{Action: store.ActionChannelSet}, 2},
		{"subject", store.ActivityFilter{Subject: "group/stable"}, 5},
		{"actor", store.ActivityFilter{Actor: "ops"}, len(got)},
		{"system", store.ActivityFilter{Actor: store.SystemActor}, len(seeded)},
		{"actor and action", store.ActivityFilter{Actor: store.SystemActor, Action: store.ActionGroupPause}, 0},
		{"since the newest", store.ActivityFilter{Since: all[0].At}, countSince(all, all[0].At)},
		{"until the oldest", store.ActivityFilter{Until: all[len(all)-1].At}, 0},
		{"before an id", store.ActivityFilter{BeforeID: all[2].ID}, len(all) - 3},
		{"limit", store.ActivityFilter{Limit: 3}, 3},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			l := must(s.ListActivity(ctx, tt.f))(t)
			if len(l) != tt.want {
				t.Errorf("%d entries, want %d", len(l), tt.want)
			}
		})
	}
	// Paging walks every entry once.
	var walked []int64
	for f := (store.ActivityFilter{Limit: 4}); ; {
		page := must(s.ListActivity(ctx, f))(t)
		for _, a := range page {
			walked = append(walked, a.ID)
		}
		if len(page) < f.Limit {
			break
		}
		f.BeforeID = page[len(page)-1].ID
	}
	if len(walked) != len(all) {
		t.Errorf("paging walked %d entries, want %d", len(walked), len(all))
	}

	// RecordActivity: for writes outside the store; bad input is refused without a row.
	rec := must(s.RecordActivity(ctx, store.Activity{Action: store.ActionTUFRootPublish, Subject: "tuf/root", After: json.RawMessage(`{"root_version":2}`)}))(t)
	if rec.ID == 0 || rec.Actor != "ops" || rec.ActorTokenID != 7 {
		t.Errorf("RecordActivity = %+v", rec)
	}
	for _, bad := range []store.Activity{
		{Action: "group.explode", Subject: "group/stable"},
		{Action: store.ActionTUFRootPublish},
		{Action: store.ActionTUFRootPublish, Subject: "tuf/root", After: json.RawMessage(`{not json`)},
	} {
		_, err := s.RecordActivity(ctx, bad)
		wantErr(t, err, store.ErrInvalid)
	}
	if n := len(must(s.ListActivity(ctx, store.ActivityFilter{}))(t)); n != len(all)+1 {
		t.Errorf("%d entries after one good and three bad records, want %d", n, len(all)+1)
	}
	if o := obs.take(); len(o) != 1 || o[0].ID != rec.ID {
		t.Errorf("observer saw %+v, want the one recorded entry", o)
	}
}

func countSince(all []store.Activity, at time.Time) int {
	n := 0
	for _, a := range all {
		if !a.At.Before(at) {
			n++
		}
	}
	return n
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// testActivityHalt: a counted check-in that trips the automatic halt records it, with
// its reason and the system as actor, in its own transaction; the check-ins before it
// record nothing.
func testActivityHalt(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	g := must(s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error {
		g.Policy = policy.Policy{HaltFailures: 1, HaltOf: 1}
		return nil
	}))(t)
	obs := &observed{}
	s.ObserveActivity(obs.add)
	t.Cleanup(func() { s.ObserveActivity(nil) })
	at := time.UnixMilli(1_700_000_000_000).UTC()
	checkin := func(w store.RolloutWrite) {
		t.Helper()
		// A logged-in operator's context must not make the halt theirs.
		opsCtx := store.WithActor(ctx, store.Actor{TokenID: 3, Name: "ops"})
		err := s.RolloutCheckin(opsCtx, appID, "m1", g.ID, func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
			return &store.InstanceUpdate{Instance: instance("m1", at)}, &w, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkin(store.RolloutWrite{Grant: "4081.2.0"})
	if o := obs.take(); len(o) != 0 {
		t.Fatalf("a grant recorded %+v", o)
	}
	checkin(store.RolloutWrite{Outcome: store.OutcomeFailed})
	o := obs.take()
	if len(o) != 1 {
		t.Fatalf("the failure that halts recorded %d entries, want 1: %+v", len(o), o)
	}
	h := o[0]
	g = must(s.GetGroup(ctx, appID, "stable"))(t)
	if !g.Halted() || h.Action != store.ActionGroupHalt || h.Actor != store.SystemActor || h.ActorTokenID != 0 ||
		h.Subject != "group/stable" || h.AppID != appID || h.Reason != g.HaltReason || !strings.Contains(string(h.After), g.HaltReason) {
		t.Fatalf("halt entry %+v for group %+v", h, g)
	}
	l := must(s.ListActivity(ctx, store.ActivityFilter{Action: store.ActionGroupHalt}))(t)
	if len(l) != 1 || l[0].ID != h.ID || l[0].Reason != h.Reason {
		t.Fatalf("stored halts %+v", l)
	}
	// The halted group stays halted: a second failure records no second halt.
	checkin(store.RolloutWrite{Outcome: store.OutcomeFailed, OutcomeVersion: "4081.2.0"})
	if o := obs.take(); len(o) != 0 {
		t.Fatalf("a failure in a halted group recorded %+v", o)
	}
}

// testActivityRetention: Prune drops entries older than ActivityBefore and keeps the rest.
func testActivityRetention(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	must(s.CreateApp(ctx, store.App{ID: appID, Name: "Flatcar"}))(t)
	c.Advance(48 * time.Hour)
	cutoff := c.Now().Add(-time.Hour)
	must(s.CreateChannel(ctx, store.Channel{AppID: appID, Name: "stable"}))(t)
	p := must(s.Prune(ctx, store.Retention{EventsBefore: cutoff}))(t)
	if p.Activity != 0 {
		t.Fatalf("events retention pruned %d activity entries", p.Activity)
	}
	p = must(s.Prune(ctx, store.Retention{ActivityBefore: cutoff}))(t)
	if p.Activity != 1 {
		t.Fatalf("pruned %d activity entries, want 1", p.Activity)
	}
	l := must(s.ListActivity(ctx, store.ActivityFilter{}))(t)
	if len(l) != 1 || l[0].Action != store.ActionChannelCreate {
		t.Fatalf("left %+v, want the channel's entry", l)
	}
}

// testActivityHaltRolledBack: a halt tripped inside a check-in that then fails (here the
// timeout that ends an old attempt, before decide refuses) is rolled back with it: no
// entry, nothing observed, the group not halted. The next good check-in trips it for
// real, and records it once.
func testActivityHaltRolledBack(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	seed(t, s)
	g := must(s.UpdateGroup(ctx, appID, "stable", func(g *store.Group) error {
		g.Policy = policy.Policy{Timeout: policy.Duration(time.Hour), HaltFailures: 1, HaltOf: 1}
		return nil
	}))(t)
	obs := &observed{}
	s.ObserveActivity(obs.add)
	t.Cleanup(func() { s.ObserveActivity(nil) })
	checkin := func(machine string, w store.RolloutWrite, fail error) error {
		return s.RolloutCheckin(ctx, appID, machine, g.ID, func(cur *store.Instance, r *store.Rollout) (*store.InstanceUpdate, *store.RolloutWrite, error) {
			if fail != nil {
				return nil, nil, fail
			}
			return &store.InstanceUpdate{Instance: instance(machine, c.Now())}, &w, nil
		})
	}
	if err := checkin("m1", store.RolloutWrite{Grant: "4081.2.0"}, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour) // m1's attempt times out at the next counted check-in
	refused := errors.New("refused")
	if err := checkin("m2", store.RolloutWrite{}, refused); !errors.Is(err, refused) {
		t.Fatalf("check-in = %v, want the refusal", err)
	}
	if o := obs.take(); len(o) != 0 {
		t.Fatalf("a rolled-back halt was observed: %+v", o)
	}
	if l := must(s.ListActivity(ctx, store.ActivityFilter{Action: store.ActionGroupHalt}))(t); len(l) != 0 {
		t.Fatalf("a rolled-back halt was stored: %+v", l)
	}
	if g := must(s.GetGroup(ctx, appID, "stable"))(t); g.Halted() {
		t.Fatalf("the group halted in a failed check-in: %+v", g)
	}
	if err := checkin("m2", store.RolloutWrite{}, nil); err != nil {
		t.Fatal(err)
	}
	o := obs.take()
	if len(o) != 1 || o[0].Action != store.ActionGroupHalt || !strings.Contains(o[0].Reason, "timeout") {
		t.Fatalf("observed %+v, want one halt for the timeout", o)
	}
}
