package adminapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Tokens (admin tokens only; a viewer is refused with 403 even for the list):
//
//	GET     /api/v1/tokens                  every token: id, name, role, created, expires, last used, revoked
//	POST    /api/v1/tokens                  {name, role, description?, expires_at?} → 201 {token, value}
//	DELETE  /api/v1/tokens/{id}[?confirm=self]   revoke
//
// The value of a new token is in the answer to its POST and nowhere else: not in a log
// line, not in any later answer (the store keeps only its hash). A revoke holds at once
// on every replica (package auth reads the store on every request).
//
// Revoking the token that authorises the DELETE would lock the caller out, so it is
// refused with 409 unless the request says ?confirm=self: a leaked admin token can
// still be contained with itself, on purpose.

// TokenInput is the body of POST /api/v1/tokens.
type TokenInput struct {
	Name        string     `json:"name"`
	Role        store.Role `json:"role"`
	Description string     `json:"description,omitempty"`
	// ExpiresAt is when the token stops working; absent or null for never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// CreatedToken is the answer to POST /api/v1/tokens: the token and, once, its value.
type CreatedToken struct {
	Token store.Token `json:"token"`
	Value string      `json:"value"`
}

// ConfirmSelf is the value of the confirm query parameter that lets a DELETE revoke the
// token it is authorised by.
const ConfirmSelf = "self"

func (a *API) registerTokens(s *mux.Router) {
	s.Handle("/tokens", a.adminOnly(a.listTokens)).Methods(http.MethodGet)
	s.Handle("/tokens", a.adminOnly(a.createToken)).Methods(http.MethodPost)
	s.Handle("/tokens/{id}", a.adminOnly(a.revokeToken)).Methods(http.MethodDelete)
}

// adminOnly refuses every role but admin, reads included. It looks the token up again
// (the router's middleware keeps what it found to itself); the routes it guards are rare
// and never on a host's path.
func (a *API) adminOnly(h func(http.ResponseWriter, *http.Request, store.Token)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := auth.Authorize(r.Context(), a.cfg.Store, r)
		if errors.Is(err, auth.ErrUnauthenticated) { // revoked since the middleware looked
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		if err != nil && !errors.Is(err, auth.ErrForbidden) {
			a.fail(w, r, err)
			return
		}
		if t.Role != store.RoleAdmin {
			writeError(w, http.StatusForbidden, "only an admin token may see or change tokens")
			return
		}
		h(w, r, t)
	})
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, _ store.Token) {
	ts, err := a.cfg.Store.ListTokens(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, by store.Token) {
	var in TokenInput
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if in.Name == "" {
		a.fail(w, r, badRequest("a token needs a name"))
		return
	}
	if in.Role != store.RoleAdmin && in.Role != store.RoleViewer {
		a.fail(w, r, badRequest("role %q: want admin or viewer", in.Role))
		return
	}
	value, hash, err := auth.NewToken()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t := store.Token{Hash: hash, Name: in.Name, Role: in.Role, Description: in.Description}
	if in.ExpiresAt != nil {
		t.ExpiresAt = *in.ExpiresAt
	}
	t, err = a.cfg.Store.CreateToken(r.Context(), t)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("token created", "id", t.ID, "name", t.Name, "role", t.Role, "expires_at", t.ExpiresAt, "by_token", by.ID)
	writeJSON(w, http.StatusCreated, CreatedToken{Token: t, Value: value})
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, by store.Token) {
	id, err := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	if err != nil || id < 1 {
		a.fail(w, r, badRequest("token id %q: want a positive number", mux.Vars(r)["id"]))
		return
	}
	if id == by.ID && r.URL.Query().Get("confirm") != ConfirmSelf {
		writeError(w, http.StatusConflict, "token "+strconv.FormatInt(id, 10)+" authorises this request: revoking it ends this caller's access; repeat with ?confirm=self to do it anyway")
		return
	}
	t, err := a.cfg.Store.RevokeToken(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("token revoked", "id", t.ID, "name", t.Name, "role", t.Role, "by_token", by.ID)
	writeJSON(w, http.StatusOK, t)
}
