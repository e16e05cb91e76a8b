package omahahandler

import (
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/catalog"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// decision is the handler's answer to one update check.
type decision struct {
	// version is the offered release's version, "" for a hold.
	version string
	offer   *omaha.Offer
	reason  policy.Reason
}

// decide applies the group's policy to one check; only an update check can be offered
// anything. cur is the instance row as the transaction read it (nil for a new host).
func (h *Handler) decide(snap *catalog.Snapshot, g store.Group, c checkin, cur *store.Instance, counters policy.Counters) decision {
	app := c.app
	if app.UpdateCheck == nil {
		return decision{}
	}
	running, err := omaha.ParseVersion(app.Version)
	if err != nil {
		return decision{reason: policy.ReasonUpToDate}
	}
	in := policy.Input{
		Now: c.now, MachineID: app.MachineID, Current: running,
		Available:      snap.Versions(c.appID, c.board),
		UpdatesEnabled: g.UpdatesEnabled, Paused: g.Paused, Halted: g.Halted(), Counters: counters,
	}
	if g.Channel != "" {
		if rel, ok := snap.ChannelRelease(c.appID, g.Channel, c.board); ok {
			if v, err := omaha.ParseVersion(rel.Version); err == nil {
				in.Channel = &v
			}
		}
	}
	var d policy.Decision
	next, reason, ok := policy.Target(g.Policy, in)
	switch {
	case !ok:
		d = policy.Decision{Reason: reason}
	case cur != nil && inProgress[cur.Status] && cur.UpdateVersion == next.String():
		// Re-serve a grant the host is still working on.
		d = policy.Decision{Offer: true, Version: next}
	default:
		d = policy.Decide(g.Policy, in)
	}
	if !d.Offer {
		return decision{reason: d.Reason}
	}
	v := d.Version.String()
	rel, ok := snap.Release(c.appID, v, c.board)
	if !ok {
		h.log.Error("omaha offer: release not in the catalog", "app", c.appID, "version", v, "board", c.board)
		return decision{reason: policy.ReasonNoRelease}
	}
	pay, delta := payloadFor(snap, c, rel)
	offer, err := h.offer(c.req, pay)
	if err == nil {
		// Flatcar's and ChromeOS's mark: the postinstall action's IsDeltaPayload.
		offer.IsDeltaPayload = delta
		err = omaha.NewAppResponse(app).SetOffer(offer)
	}
	if err != nil {
		// A release the catalog accepted but Omaha cannot carry: hold, and say why.
		h.log.Error("omaha offer: release cannot be offered", "app", c.appID, "version", rel.Version, "board", c.board, "err", err)
		return decision{reason: policy.ReasonNoRelease}
	}
	return decision{version: rel.Version, offer: offer}
}

// payloadFor picks the file a host downloads for the granted release rel: the release's
// delta payload from the version the host runs, when the host accepts deltas
// (delta_okay="true") and the release has one, else the full payload. Either way the grant
// is rel's version: the rollout policy counts both alike. A delta is returned in the shape
// of a release (same key, its own file, size and hashes), served beside the full payload.
func payloadFor(snap *catalog.Snapshot, c checkin, rel store.Release) (store.Release, bool) {
	if !c.app.DeltaOK {
		return rel, false
	}
	d, ok := snap.Delta(c.appID, rel.Version, c.board, c.app.Version)
	if !ok {
		return rel, false
	}
	return store.Release{AppID: rel.AppID, Version: rel.Version, Board: rel.Board, FileName: d.FileName, Size: d.Size,
		SHA256: d.SHA256, SHA1: d.SHA1, Hosted: d.Hosted, URL: d.URL, CreatedAt: d.CreatedAt}, true
}

// updating reports whether the instance has an update under way.
func updating(cur *store.Instance) bool { return cur != nil && inProgress[cur.Status] }

// answerError reports whether code says the host could not use the server's answer (no
// answer, an empty or unparsable one, one it refused, an HTTP error status) rather than
// that an update failed on the host.
func answerError(code omaha.ErrorCode) bool {
	switch code.Base() {
	case omaha.ErrorCodeOmahaRequestError, omaha.ErrorCodeOmahaRequestEmptyResponseError,
		omaha.ErrorCodeOmahaRequestXMLParseError, omaha.ErrorCodeOmahaResponseInvalid:
		return true
	}
	_, isHTTP := code.HTTPStatus()
	return isHTTP
}

// rolloutWrite is what a counted check-in records: the grant, and how the host's attempt
// ended when this request's events ended it (a 3/1 or a completion is a success, an
// error a failure, error code 44 a rollback).
func rolloutWrite(cur *store.Instance, upd *store.InstanceUpdate, granted string) *store.RolloutWrite {
	w := &store.RolloutWrite{}
	for _, h := range upd.History {
		switch h.Status {
		case store.StatusInstalled, store.StatusComplete:
			if w.Outcome == "" {
				w.Outcome = store.OutcomeSucceeded
			}
		case store.StatusError:
			if !updating(cur) && answerError(omaha.ErrorCode(h.ErrorCode)) {
				// The host could not use an answer to a plain check (no update under way):
				// that ends no attempt, least of all turn a past success into a failure.
				continue
			}
			w.Outcome = store.OutcomeFailed
		case store.StatusRolledBack:
			w.Outcome = store.OutcomeRolledBack
		}
	}
	if w.Outcome != "" && cur != nil {
		w.OutcomeVersion = cur.UpdateVersion
	}
	if w.Outcome != "" && w.OutcomeVersion == "" {
		w.OutcomeVersion = upd.Instance.UpdateVersion
	}
	// A re-serve names the same version: the store keeps the open attempt.
	w.Grant = granted
	return w
}
