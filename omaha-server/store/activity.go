package store

import (
	"context"
	"encoding/json"
	"time"
)

// The activity log: one entry per change an operator or the server made to the catalog,
// the rollout state, tokens or host keys. The store writes an entry in the same
// transaction as the change it describes (so there is never an entry for a write that
// failed, nor a change without its entry); a write the store does not make itself (a TUF
// root) is recorded with RecordActivity right after it succeeded.
//
// Who: the Actor carried by the write's context (WithActor: the admin API puts the
// bearer token's ID and name there, never its secret); a write without one is the
// server's own ("system"), such as the automatic halt a check-in trips.

// Action names what an activity entry records; the set is fixed.
type Action string

// Actions.
const (
	ActionAppCreate     Action = "app.create"
	ActionReleaseCreate Action = "release.create"
	ActionChannelCreate Action = "channel.create"
	// ActionChannelSet points a channel at a release for one board (a promotion of that
	// release).
	ActionChannelSet Action = "channel.set"
	// ActionChannelPromote points a channel at every release another channel offers.
	ActionChannelPromote Action = "channel.promote"
	ActionGroupCreate    Action = "group.create"
	ActionGroupUpdate    Action = "group.update"
	// ActionGroupPolicy is a group update that changed only the rollout policy.
	ActionGroupPolicy Action = "group.policy"
	ActionGroupPause  Action = "group.pause"
	ActionGroupResume Action = "group.resume"
	// ActionGroupHalt is the automatic halt (actor "system", Reason the policy's finding).
	ActionGroupHalt     Action = "group.halt"
	ActionTokenCreate   Action = "token.create"
	ActionTokenRevoke   Action = "token.revoke"
	ActionHostKeyEnroll Action = "hostkey.enroll"
	ActionHostKeyRemove Action = "hostkey.remove"
	// ActionTUFRootPublish publishes the next TUF root (recorded by the admin API).
	ActionTUFRootPublish Action = "tuf.root.publish"
)

// Actions returns every Action.
func Actions() []Action {
	return []Action{
		ActionAppCreate, ActionReleaseCreate, ActionChannelCreate, ActionChannelSet, ActionChannelPromote,
		ActionGroupCreate, ActionGroupUpdate, ActionGroupPolicy, ActionGroupPause, ActionGroupResume, ActionGroupHalt,
		ActionTokenCreate, ActionTokenRevoke, ActionHostKeyEnroll, ActionHostKeyRemove, ActionTUFRootPublish,
	}
}

// Valid reports whether a is one of Actions.
func (a Action) Valid() bool {
	for _, x := range Actions() {
		if a == x {
			return true
		}
	}
	return false
}

// SystemActor is the actor name of the server's own changes.
const SystemActor = "system"

// Actor is who made a change: an admin API token (its ID and name) or the server.
type Actor struct {
	TokenID int64  `json:"token_id,omitempty"`
	Name    string `json:"name"`
}

type actorKey struct{}

// WithActor returns ctx carrying the actor that store writes made with it record.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the actor ctx carries, the system actor when none.
func ActorOf(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.Name != "" {
		return a
	}
	return Actor{Name: SystemActor}
}

// Activity is one entry of the activity log.
type Activity struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// Actor is the token's name or "system"; ActorTokenID the token's ID (0 for system).
	Actor        string `json:"actor"`
	ActorTokenID int64  `json:"actor_token_id,omitempty"`
	Action       Action `json:"action"`
	// AppID is the application concerned ("" for tokens and host keys).
	AppID string `json:"app,omitempty"`
	// Subject names what changed: "group/stable", "channel/beta", "release/4081.2.0/amd64-usr",
	// "token/3", "host/<machine-id>", "tuf/root".
	Subject string `json:"subject"`
	// Before and After are JSON objects of the fields that changed (absent on a create,
	// resp. a removal). A token's secret or hash is never in them.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// Reason says why, where there is more to say than the action (a halt's finding, a
	// promotion's source channel).
	Reason string `json:"reason,omitempty"`
}

// MaxActivityPage bounds one ListActivity answer.
const MaxActivityPage = 1000

// ActivityFilter selects entries for ListActivity; zero fields select everything.
// Entries come newest first.
type ActivityFilter struct {
	AppID   string
	Action  Action
	Subject string
	// Actor is a token name or "system".
	Actor string
	// Since and Until bound the entry's time (Since inclusive, Until exclusive).
	Since, Until time.Time
	// BeforeID continues a listing: only entries with a smaller ID (the last one of the
	// previous page); 0 for the first page.
	BeforeID int64
	// Limit is the page size: MaxActivityPage when 0 or less, at most MaxActivityPage+1
	// (a caller asks for one more than a page to learn whether another follows).
	Limit int
}
