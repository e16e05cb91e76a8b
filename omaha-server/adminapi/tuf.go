package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// MaxRootBytes bounds one uploaded root metadata file.
const MaxRootBytes = 1 << 20

// TUFRepository is the TUF host as the admin API uses it (tufhost.Host).
type TUFRepository interface {
	// Current returns what is served, read from the repository's storage (which another
	// replica may have moved) at most once per its sync interval.
	Current(ctx context.Context) (tufhost.State, error)
	Publish(ctx context.Context, u tufhost.Upload) (tufhost.State, error)
}

// tufState answers GET /api/v1/tuf: the versions and expiries served.
func (a *API) tufState(w http.ResponseWriter, r *http.Request) {
	st, err := a.cfg.TUF.Current(r.Context())
	if err != nil {
		a.fail(w, r, fmt.Errorf("reading the TUF repository: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// publishRoot answers POST /api/v1/tuf/roots: the body is the next root, signed by the
// threshold of the old and of the new root keys (syctl tuf rotate-root, sign-root). A root
// that is not the next version is 409; one that does not verify is 400.
func (a *API) publishRoot(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRootBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the root is larger than %d bytes", MaxRootBytes))
			return
		}
		a.fail(w, r, badRequest("reading the root: %v", err))
		return
	}
	state, err := a.cfg.TUF.Publish(r.Context(), tufhost.Upload{Roots: [][]byte{body}})
	switch {
	case errors.Is(err, repo.ErrVersion):
		a.log.Info("admin API request refused", "method", r.Method, "path", r.URL.Path, "status", http.StatusConflict, "err", err)
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, repo.ErrThreshold), errors.Is(err, repo.ErrInvalid), errors.Is(err, repo.ErrExpired):
		a.fail(w, r, badRequest("%v", err))
	case err != nil:
		a.fail(w, r, fmt.Errorf("publishing a TUF root: %w", err))
	default:
		a.wrote(r, "tuf root", "version", state.RootVersion)
		// The TUF host is not the store: its entry follows the successful publish.
		after, _ := json.Marshal(map[string]int64{"root_version": state.RootVersion})
		if _, err := a.cfg.Store.RecordActivity(r.Context(), store.Activity{Action: store.ActionTUFRootPublish, Subject: "tuf/root", After: after}); err != nil {
			a.log.Error("recording activity", "action", store.ActionTUFRootPublish, "err", err)
		}
		writeJSON(w, http.StatusOK, state)
	}
}
