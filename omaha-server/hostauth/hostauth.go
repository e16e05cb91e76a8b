// Package hostauth decides what a host's report is worth: whether the request proves the
// host's identity (package omaha/hostsig: an Ed25519 signature over the exact body) and
// whether the report may count toward a group's automatic halt and rollout caps.
//
// Parties: update-engine signs every Omaha request with its host key; the Omaha handler
// (package omahahandler) hashes the body while it parses it and asks a Verifier, once per
// request for the signature and once per app for the machine id the app names; the store
// keeps one key per machine id (store.HostKey); operators enroll keys through the admin API.
//
// # Standing of a report
//
//	signature                  key on record for the machine id     proven  counts
//	valid                      the same key, enrolled               yes     yes
//	valid                      the same key, pinned on first use    yes     yes (TOFU mode)
//	                                                                no      as unproven (enrolled mode)
//	valid                      none; TOFU mode pins it now          yes     yes
//	valid                      none; enrolled mode                  no      as unproven
//	valid                      another key                          no      never
//	none (an old client)       none                                 no      as unproven
//	none                       any key                              no      never
//	present but invalid, or dated more than hostsig.MaxSkew away: the request is refused
//	(ErrRefused; HTTP 401) and nothing is stored.
//
// "As unproven" is the operator's choice (Config.CountUnproven, --count-unproven-hosts):
// true, the default, keeps a fleet of old clients working as before; false means an
// invented host can neither halt a rollout, nor fill its caps, nor hide a real halt behind
// forged successes. A report for a machine id that has a key but is not signed with it
// never counts, whatever the setting: a host that proved itself once has its key.
// Reports that do not count are still stored (instance row, history, events) and the host
// is answered as any other; only the rollout counters leave them out.
package hostauth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha/hostsig"
)

// Mode is how a key becomes the one a machine id is held to.
type Mode string

// Modes.
const (
	// TrustOnFirstUse pins the key of a machine id's first signed contact.
	TrustOnFirstUse Mode = "trust-on-first-use"
	// Enrolled proves only keys an operator enrolled.
	Enrolled Mode = "enrolled"
)

// ParseMode reads a --host-identity value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case TrustOnFirstUse, Enrolled:
		return m, nil
	}
	return "", fmt.Errorf("hostauth: host identity mode %q: want %s or %s", s, TrustOnFirstUse, Enrolled)
}

// ErrRefused is wrapped when a request carries a signature that does not hold.
var ErrRefused = errors.New("hostauth: host signature refused")

// Keys is the part of the store the verifier uses.
type Keys interface {
	GetHostKey(ctx context.Context, machineID string) (store.HostKey, error)
	PinHostKey(ctx context.Context, k store.HostKey) (store.HostKey, error)
}

// Config wires a Verifier.
type Config struct {
	Mode Mode // TrustOnFirstUse when empty
	// CountUnproven lets reports from hosts that prove no key count toward halts and caps
	// (when their machine id has no key on record).
	CountUnproven bool
	Keys          Keys
	Now           func() time.Time
	Logger        *slog.Logger
	// Registerer receives switchyard_omaha_server_host_reports_total (none when nil).
	Registerer prometheus.Registerer
}

// Verifier checks host signatures and keys.
type Verifier struct {
	cfg     Config
	reports *prometheus.CounterVec
}

// New returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if cfg.Mode == "" {
		cfg.Mode = TrustOnFirstUse
	}
	if _, err := ParseMode(string(cfg.Mode)); err != nil {
		return nil, err
	}
	if cfg.Keys == nil {
		return nil, errors.New("hostauth: no key store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{cfg: cfg}
	v.reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_omaha_server_host_reports_total",
		Help: "Omaha app reports by host standing (proven, pinned, unsigned, unenrolled, key-mismatch, unsigned-pinned).",
	}, []string{"standing"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(v.reports)
	}
	return v, nil
}

// Proof is what a request's headers proved: a verified key, or none (unsigned).
type Proof struct {
	Key ed25519.PublicKey
}

// Check verifies the signature of r, whose body hashed to bodySHA256. An unsigned request
// is a zero Proof; a signature that does not hold is ErrRefused.
func (v *Verifier) Check(r *http.Request, bodySHA256 [sha256.Size]byte) (Proof, error) {
	k, err := hostsig.Verify(r, bodySHA256, v.cfg.Now())
	if err != nil {
		return Proof{}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return Proof{Key: k}, nil
}

// Standing is what one report is worth.
type Standing struct {
	// Proven: the report is signed with the key on record for its machine id.
	Proven bool
	// Counts: the report may count toward halts and caps.
	Counts bool
	// Reason names the row of the package doc's table, for logs and metrics.
	Reason string
}

// Standing applies the package doc's table to a report for machineID under proof. An error
// is the store's; the caller answers it as any store failure.
func (v *Verifier) Standing(ctx context.Context, p Proof, machineID string) (Standing, error) {
	st, err := v.standing(ctx, p, machineID)
	if err != nil {
		return Standing{}, err
	}
	v.reports.WithLabelValues(st.Reason).Inc()
	return st, nil
}

func (v *Verifier) standing(ctx context.Context, p Proof, machineID string) (Standing, error) {
	unproven := func(reason string) Standing {
		return Standing{Counts: v.cfg.CountUnproven, Reason: reason}
	}
	pinned, err := v.cfg.Keys.GetHostKey(ctx, machineID)
	has := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Standing{}, fmt.Errorf("hostauth: %w", err)
	}
	if p.Key == nil {
		if has {
			v.cfg.Logger.Info("unsigned report for a machine id with a host key: not counted", "machine", machineID)
			return Standing{Reason: "unsigned-pinned"}, nil
		}
		return unproven("unsigned"), nil
	}
	key := hostsig.FormatPublicKey(p.Key)
	if !has && v.cfg.Mode == TrustOnFirstUse {
		if pinned, err = v.cfg.Keys.PinHostKey(ctx, store.HostKey{MachineID: machineID, PublicKey: key}); err != nil {
			return Standing{}, fmt.Errorf("hostauth: %w", err)
		}
		if pinned.PublicKey == key {
			v.cfg.Logger.Info("host key pinned on first contact", "machine", machineID, "key", key)
		}
		has = true
	}
	switch {
	case !has:
		return unproven("unenrolled"), nil
	case pinned.PublicKey != key:
		v.cfg.Logger.Warn("report signed with another key than the machine id's: not counted",
			"machine", machineID, "key", key, "pinned", pinned.PublicKey, "enrolled", pinned.Enrolled)
		return Standing{Reason: "key-mismatch"}, nil
	case pinned.Enrolled:
		return Standing{Proven: true, Counts: true, Reason: "proven"}, nil
	case v.cfg.Mode == Enrolled:
		return unproven("unenrolled"), nil
	}
	return Standing{Proven: true, Counts: true, Reason: "pinned"}, nil
}
