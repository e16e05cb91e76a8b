package fleetlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// Defaults for Config fields left zero.
const (
	// DefaultHolderTTL is how long a holder of an unconfigured group keeps its slot
	// without sending steady-state.
	DefaultHolderTTL = 24 * time.Hour
	// DefaultNewGroupsPerSource is how many groups one source may bring into use per hour.
	DefaultNewGroupsPerSource = 10
)

// Config configures a Handler. The zero value serves every valid group name, as Zincati
// expects, within the limits below.
type Config struct {
	// Options configure the semaphores (prefix, metrics, reboot deadline, logger, clock);
	// liveness is always off, because the server does not see the hosts.
	Options rebootlock.Options
	// ConfiguredGroupsOnly refuses pre-reboot (400 unknown_group) in a group that has no
	// config key, i.e. on which `updatectl lock set-max` never ran: the operator's list of
	// groups lives in etcd. steady-state is always served, so a host can give back a slot.
	ConfiguredGroupsOnly bool
	// HolderTTL: a holder of an unconfigured group that sends no steady-state within it
	// loses its slot (etcd deletes the holder key). DefaultHolderTTL when zero or
	// negative. Holders of configured groups are kept until released or reclaimed.
	HolderTTL time.Duration
	// NewGroupsPerSource bounds how many empty unconfigured groups one source address
	// (an IPv4 address or an IPv6 /64) may take a first slot in per hour; beyond it
	// pre-reboot answers 429 too_many_new_groups. DefaultNewGroupsPerSource when zero or
	// negative. Configured groups and groups that have holders are never limited.
	NewGroupsPerSource int
}

// Handler serves the FleetLock protocol from the rebootlock semaphores of an etcd.
type Handler struct {
	groups     *rebootlock.Groups
	log        *slog.Logger
	configured bool
	newGroups  *sourceLimiter
}

// NewHandler returns a handler on client with the default Config and the semaphore
// options opts.
func NewHandler(client *clientv3.Client, opts rebootlock.Options) *Handler {
	return New(client, Config{Options: opts})
}

// New returns a handler on client. Mount it at the FleetLock base URL (it serves
// PreReboot and SteadyState below it, e.g. with http.StripPrefix).
func New(client *clientv3.Client, cfg Config) *Handler {
	opts := cfg.Options
	opts.LivenessTTL = -1
	opts.UnconfiguredHolderTTL = cfg.HolderTTL
	if opts.UnconfiguredHolderTTL <= 0 {
		opts.UnconfiguredHolderTTL = DefaultHolderTTL
	}
	perSource := cfg.NewGroupsPerSource
	if perSource <= 0 {
		perSource = DefaultNewGroupsPerSource
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{
		groups:     rebootlock.NewGroups(client, opts),
		log:        log,
		configured: cfg.ConfiguredGroupsOnly,
		newGroups:  newSourceLimiter(perSource, now),
	}
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
		if e := h.admit(r, sem, p.ID, log); e != nil {
			writeError(w, e)
			return
		}
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

// admit decides whether a pre-reboot may go on in sem's group: configured groups and a
// holder's own recursive lock always; groups with holders unless only configured groups
// are served; an empty unconfigured group only when the handler serves
// such groups and the request's source has not brought too many into use lately.
func (h *Handler) admit(r *http.Request, sem *rebootlock.Semaphore, id string, log *slog.Logger) *Error {
	st, err := sem.Status(r.Context())
	if err != nil {
		log.Warn("fleetlock: reading the group failed", "err", err)
		return &Error{Status: http.StatusServiceUnavailable, Kind: "failed_lock", Value: err.Error()}
	}
	if st.MaxSet || st.ConfigError != "" || st.Holding(id) {
		return nil
	}
	if h.configured {
		return &Error{Status: http.StatusBadRequest, Kind: "unknown_group", Value: fmt.Sprintf("group %q is not configured on this server", sem.Group())}
	}
	if len(st.Holders) > 0 {
		return nil
	}
	if ok, first := h.newGroups.allow(source(r.RemoteAddr)); !ok {
		if first {
			log.Warn("fleetlock: too many new groups from one source; refusing more (logged once until it may again)", "remote", r.RemoteAddr)
		}
		return &Error{Status: http.StatusTooManyRequests, Kind: "too_many_new_groups", Value: "this address brought too many new groups into use lately; retry later or use a configured group"}
	}
	return nil
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}
