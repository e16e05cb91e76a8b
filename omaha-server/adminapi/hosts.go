package adminapi

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha/hostsig"
)

// Host keys (package hostauth):
//
//	GET          /api/v1/hosts/keys?after=&limit=     list, by machine id (at most store.MaxHostKeys)
//	GET PUT DEL  /api/v1/hosts/{machine-id}/key       read, enroll {public_key}, remove
//
// An enrolled key replaces whatever key the machine id had; removing a key lets the next
// signed contact pin a new one (in trust-on-first-use mode).

// HostKeyInput is the body of an enrollment.
type HostKeyInput struct {
	// PublicKey is base64 of the host's Ed25519 public key (its host-key.pub).
	PublicKey string `json:"public_key"`
}

// maxMachineIDBytes bounds a machine id in a path.
const maxMachineIDBytes = 256

func (a *API) registerHosts(s *mux.Router) {
	s.HandleFunc("/hosts/keys", a.listHostKeys).Methods(http.MethodGet)
	s.HandleFunc("/hosts/{machine}/key", a.getHostKey).Methods(http.MethodGet)
	s.HandleFunc("/hosts/{machine}/key", a.enrollHostKey).Methods(http.MethodPut)
	s.HandleFunc("/hosts/{machine}/key", a.deleteHostKey).Methods(http.MethodDelete)
}

func machineVar(r *http.Request) (string, error) {
	m := mux.Vars(r)["machine"]
	if m == "" || len(m) > maxMachineIDBytes {
		return "", badRequest("machine id must be 1 to %d bytes", maxMachineIDBytes)
	}
	return m, nil
}

func (a *API) listHostKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxHostKeys {
			a.fail(w, r, badRequest("limit %q: want 1 to %d", s, store.MaxHostKeys))
			return
		}
		limit = n
	}
	keys, err := a.cfg.Store.ListHostKeys(r.Context(), q.Get("after"), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, keys)
}

func (a *API) getHostKey(w http.ResponseWriter, r *http.Request) {
	m, err := machineVar(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	k, err := a.cfg.Store.GetHostKey(r.Context(), m)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (a *API) enrollHostKey(w http.ResponseWriter, r *http.Request) {
	m, err := machineVar(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in HostKeyInput
	if err := decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	pub, err := hostsig.ParsePublicKey(in.PublicKey)
	if err != nil {
		a.fail(w, r, badRequest("public_key: %v", err))
		return
	}
	k, err := a.cfg.Store.EnrollHostKey(r.Context(), store.HostKey{MachineID: m, PublicKey: hostsig.FormatPublicKey(pub)})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("host key enrolled", "machine", m, "key", k.PublicKey)
	writeJSON(w, http.StatusOK, k)
}

func (a *API) deleteHostKey(w http.ResponseWriter, r *http.Request) {
	m, err := machineVar(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.cfg.Store.DeleteHostKey(r.Context(), m); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("host key removed", "machine", m)
	w.WriteHeader(http.StatusNoContent)
}
