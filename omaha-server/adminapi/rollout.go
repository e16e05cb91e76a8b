package adminapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// PolicyInput is the body of a policy write and the answer of a policy read.
type PolicyInput struct {
	Policy policy.Policy `json:"policy"`
	// Version is the group version the policy was based on (optional on a write).
	Version *int64 `json:"version,omitempty"`
}

// PromoteInput is the body of a channel promotion.
type PromoteInput struct {
	From string `json:"from"`
}

// expectedVersion is the version a write is based on: the body's field, else If-Match;
// 0 when neither is given.
func expectedVersion(r *http.Request, body *int64) (int64, error) {
	h := strings.Trim(strings.TrimPrefix(strings.TrimSpace(r.Header.Get("If-Match")), "W/"), `"`)
	var fromHeader int64
	if h != "" {
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil || n <= 0 {
			return 0, badRequest("If-Match %q: want the group's version, a positive number", h)
		}
		fromHeader = n
	}
	switch {
	case body != nil && *body <= 0:
		return 0, badRequest("version %d: want the group's version, a positive number", *body)
	case body != nil && fromHeader != 0 && *body != fromHeader:
		return 0, badRequest("the version field (%d) and If-Match (%d) disagree", *body, fromHeader)
	case body != nil:
		return *body, nil
	}
	return fromHeader, nil
}

func checkVersion(g *store.Group, expect int64) error {
	if expect != 0 && g.Version != expect {
		return fmt.Errorf("adminapi: group %q is at version %d, the change was based on version %d: %w", g.Name, g.Version, expect, store.ErrStale)
	}
	return nil
}

func (a *API) getPolicy(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	g, err := a.cfg.Store.GetGroup(r.Context(), v["app"], v["group"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(g.Version, 10)))
	writeJSON(w, http.StatusOK, PolicyInput{Policy: g.Policy, Version: &g.Version})
}

func (a *API) putPolicy(w http.ResponseWriter, r *http.Request) {
	var in PolicyInput
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := in.Policy.Validate(); err != nil {
		a.fail(w, r, badRequest("%v", err))
		return
	}
	expect, err := expectedVersion(r, in.Version)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := mux.Vars(r)
	g, err := a.cfg.Store.UpdateGroup(r.Context(), v["app"], v["group"], func(g *store.Group) error {
		if err := checkVersion(g, expect); err != nil {
			return err
		}
		g.Policy = in.Policy
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "group policy", "app", g.AppID, "group", g.Name, "version", g.Version)
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(g.Version, 10)))
	writeJSON(w, http.StatusOK, g)
}

func (a *API) setPaused(w http.ResponseWriter, r *http.Request, paused bool) {
	v := mux.Vars(r)
	g, err := a.cfg.Store.SetRolloutState(r.Context(), v["app"], v["group"], paused)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "rollout state", "app", g.AppID, "group", g.Name, "paused", paused)
	writeJSON(w, http.StatusOK, g)
}

func (a *API) pause(w http.ResponseWriter, r *http.Request)  { a.setPaused(w, r, true) }
func (a *API) resume(w http.ResponseWriter, r *http.Request) { a.setPaused(w, r, false) }

// RolloutReport is the answer of a rollout status read: the store's counts for the target
// release and, when the group has none, why.
type RolloutReport struct {
	store.RolloutStatus
	// NoRelease is true when no ?version= was given and the group has nothing to roll out:
	// no pinned version, and no channel release for the board. Version is then empty and
	// the counts are zero (they are not the counts of every version); Reason says why.
	NoRelease bool   `json:"no_release"`
	Reason    string `json:"reason,omitempty"`
}

// rolloutStatus reports progress towards ?version=, by default the version the group is
// pinned to or else the release its channel offers on ?board= (default amd64-usr).
func (a *API) rolloutStatus(w http.ResponseWriter, r *http.Request) {
	v, q := mux.Vars(r), r.URL.Query()
	version := q.Get("version")
	if version != "" {
		if _, err := omaha.ParseVersion(version); err != nil {
			a.fail(w, r, badRequest("version %q: %v", version, err))
			return
		}
	}
	if version == "" {
		g, err := a.cfg.Store.GetGroup(r.Context(), v["app"], v["group"])
		if err != nil {
			a.fail(w, r, err)
			return
		}
		board := q.Get("board")
		if board == "" {
			board = "amd64-usr"
		}
		var reason string
		switch {
		case g.Policy.Pin != "":
			version = g.Policy.Pin
		case g.Channel == "":
			reason = fmt.Sprintf("group %q follows no channel and pins no version", g.Name)
		default:
			ch, err := a.cfg.Store.GetChannel(r.Context(), v["app"], g.Channel)
			switch {
			case errors.Is(err, store.ErrNotFound):
				reason = fmt.Sprintf("group %q follows channel %q, which does not exist", g.Name, g.Channel)
			case err != nil:
				a.fail(w, r, err)
				return
			default:
				version = ch.Releases[board].Version
				if version == "" {
					reason = fmt.Sprintf("channel %q offers no release for board %s", g.Channel, board)
				}
			}
		}
		if version == "" {
			// The group exists, so 200 with its rollout state; counting every version
			// under an empty one would read as progress towards a release there is not.
			writeJSON(w, http.StatusOK, RolloutReport{
				RolloutStatus: store.RolloutStatus{Group: g.Name, Paused: g.Paused, HaltReason: g.HaltReason,
					HaltedAt: g.HaltedAt, Counted: g.Policy.Counted()},
				NoRelease: true,
				Reason:    reason,
			})
			return
		}
	}
	st, err := a.cfg.Store.RolloutStatus(r.Context(), v["app"], v["group"], version)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RolloutReport{RolloutStatus: st})
}

// promote points channel at the release from offers, on every board from has one.
func (a *API) promote(w http.ResponseWriter, r *http.Request) {
	var in PromoteInput
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	v := mux.Vars(r)
	if in.From == "" || in.From == v["channel"] {
		a.fail(w, r, badRequest("promote: name a source channel other than %q", v["channel"]))
		return
	}
	// Every board in one transaction, recorded as one channel.promote entry.
	to, err := a.cfg.Store.PromoteChannel(r.Context(), v["app"], v["channel"], in.From)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "channel promotion", "app", to.AppID, "from", in.From, "to", to.Name)
	writeJSON(w, http.StatusOK, to)
}
