package omahahandler

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net/http"

	"github.com/switchyard-os/switchyard/omaha-server/hostauth"
	"github.com/switchyard-os/switchyard/omaha/hostsig"
)

// HostVerifier is the host identity check (hostauth.Verifier): Check once per request,
// Standing once per app.
type HostVerifier interface {
	Check(r *http.Request, bodySHA256 [sha256.Size]byte) (hostauth.Proof, error)
	Standing(ctx context.Context, p hostauth.Proof, machineID string) (hostauth.Standing, error)
}

// bodyHash hashes a signed request's body while it is parsed; unsigned requests, and
// every request when no verifier is configured, are not hashed.
type bodyHash struct {
	src io.Reader
	sum hash.Hash
}

func (h *Handler) hashBody(r *http.Request, body io.Reader) *bodyHash {
	if h.cfg.Hosts == nil || !hostsig.Signed(r) {
		return &bodyHash{src: body}
	}
	s := sha256.New()
	return &bodyHash{src: io.TeeReader(body, s), sum: s}
}

// proof finishes the hash (the parser may stop before the end of a body it accepted;
// the body is still under http.MaxBytesReader) and checks the signature. A refused
// signature is answered 401 here, before anything is stored, and ok is false.
func (h *Handler) proof(w http.ResponseWriter, r *http.Request, b *bodyHash) (p hostauth.Proof, ok bool) {
	if b.sum == nil {
		return hostauth.Proof{}, true
	}
	var sum [sha256.Size]byte
	_, err := io.Copy(io.Discard, b.src)
	if err == nil {
		copy(sum[:], b.sum.Sum(nil))
		p, err = h.cfg.Hosts.Check(r, sum)
	}
	if err != nil {
		h.refused.WithLabelValues("signature").Inc()
		h.log.Info("omaha request refused: host signature", "remote", r.RemoteAddr, "err", err)
		status := http.StatusUnauthorized
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), status)
		return hostauth.Proof{}, false
	}
	return p, true
}

// counts reports whether a report for machineID under p may count toward the group's
// halt and caps (always, without a verifier).
func (h *Handler) counts(ctx context.Context, p hostauth.Proof, machineID string) (bool, error) {
	if h.cfg.Hosts == nil {
		return true, nil
	}
	st, err := h.cfg.Hosts.Standing(ctx, p, machineID)
	return st.Counts, err
}
