package fleetlock

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// Handler serves the FleetLock protocol from the rebootlock semaphores of an etcd.
type Handler struct {
	groups *rebootlock.Groups
	log    *slog.Logger
}

// NewHandler returns a handler on client. opts configure the semaphores (prefix, metrics,
// reboot deadline); liveness is always off, because the server does not see the hosts.
// Mount it at the FleetLock base URL (it serves PreReboot and SteadyState below it, e.g.
// with http.StripPrefix).
func NewHandler(client *clientv3.Client, opts rebootlock.Options) *Handler {
	opts.LivenessTTL = -1
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{groups: rebootlock.NewGroups(client, opts), log: log}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != PreReboot && r.URL.Path != SteadyState {
		writeError(w, &Error{Status: http.StatusNotFound, Kind: "not_found", Value: "FleetLock serves " + PreReboot + " and " + SteadyState})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Kind: "method_not_allowed", Value: "use POST"})
		return
	}
	if r.Header.Get(Header) != "true" {
		writeError(w, &Error{Status: http.StatusBadRequest, Kind: "missing_protocol_header", Value: "header " + Header + ": true is required"})
		return
	}
	p, perr := decodeRequest(http.MaxBytesReader(w, r.Body, MaxBody+1))
	if perr != nil {
		writeError(w, perr)
		return
	}
	sem, err := h.groups.Semaphore(p.Group)
	if err != nil {
		writeError(w, &Error{Status: http.StatusBadRequest, Kind: "invalid_group", Value: err.Error()})
		return
	}
	log := h.log.With("id", p.ID, "group", p.Group)
	if r.URL.Path == PreReboot {
		err := sem.TryLock(r.Context(), rebootlock.Holder{ID: p.ID, Via: "fleetlock"})
		switch {
		case err == nil:
			w.WriteHeader(http.StatusOK)
		case errors.Is(err, rebootlock.ErrFull):
			writeError(w, &Error{Status: http.StatusConflict, Kind: "failed_lock_semaphore_full", Value: err.Error()})
		case errors.Is(err, rebootlock.ErrBadConfig):
			log.Error("fleetlock: group config unreadable", "err", err)
			writeError(w, &Error{Status: http.StatusInternalServerError, Kind: "failed_lock_config", Value: err.Error()})
		default:
			log.Warn("fleetlock: lock failed", "err", err)
			writeError(w, &Error{Status: http.StatusServiceUnavailable, Kind: "failed_lock", Value: err.Error()})
		}
		return
	}
	if err := sem.Unlock(r.Context(), p.ID); err != nil {
		log.Warn("fleetlock: unlock failed", "err", err)
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Kind: "failed_unlock", Value: err.Error()})
		return
	}
	w.WriteHeader(http.StatusOK)
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}
