package omahahandler

import (
	"net/http"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// checkin is what one request app tells about its instance.
type checkin struct {
	req   *http.Request
	app   *omaha.App
	appID string // normalised
	group string
	ip    string
	board string
	// offered is the version this request's update check offers, "" for none.
	offered string
	now     time.Time
}

// inProgress are the statuses of an update under way.
var inProgress = map[store.Status]bool{
	store.StatusUpdateGranted: true,
	store.StatusDownloading:   true,
	store.StatusDownloaded:    true,
	store.StatusInstalled:     true,
}

// apply computes an instance's new row, status history and stored events from its current
// row (nil when new) and one request. Transitions (event → status):
//
//	13/1 → downloading        14/1 → downloaded        3/1, 800/1 → installed
//	3/2 with previousversion → complete (3/2 with "" or 0.0.0.0 is Flatcar's routine
//	                           check event: neither a status nor stored)
//	3/0 errorcode 44 (any flags) → rolled-back; other 3/0 → error (code and flags kept)
//	any other event           → stored, no status change
//
// Then an update check that offers a version makes the status update-granted, and a host
// that reports running at least the version it was granted while an update was under way
// is complete even if its 3/2 got lost.
func apply(cur *store.Instance, c checkin) *store.InstanceUpdate {
	var in store.Instance
	if cur != nil {
		in = *cur
	} else {
		in = store.Instance{AppID: c.appID, MachineID: c.app.MachineID, FirstCheck: c.now,
			Status: store.StatusUndefined, StatusAt: c.now}
	}
	a := c.app
	in.BootID, in.Version, in.OEM, in.OEMVersion = a.BootID, a.Version, a.OEM, a.OEMVersion
	in.AlephVersion, in.Board, in.Track, in.Group, in.IP = a.AlephVersion, c.board, a.Track, c.group, c.ip
	if a.MachineAlias != "" {
		in.Alias = a.MachineAlias
	}
	in.LastCheck = c.now
	upd := &store.InstanceUpdate{}
	set := func(s store.Status, code int64) {
		if s == in.Status && code == 0 {
			return
		}
		in.Status, in.StatusAt = s, c.now
		upd.History = append(upd.History, store.StatusChange{Status: s, Version: a.Version, ErrorCode: code, At: c.now})
	}
	for _, e := range a.Events {
		ev := store.Event{AppID: c.appID, MachineID: a.MachineID, Type: int(e.Type), Result: int(e.Result),
			ErrorCode: int64(e.Code()), PreviousVersion: e.PreviousVersion, Version: a.Version, At: c.now}
		switch {
		case e.Type == omaha.EventTypeUpdateDownloadStarted && e.Result == omaha.EventResultSuccess:
			set(store.StatusDownloading, 0)
		case e.Type == omaha.EventTypeUpdateDownloadFinished && e.Result == omaha.EventResultSuccess:
			set(store.StatusDownloaded, 0)
		case (e.Type == omaha.EventTypeUpdateComplete || e.Type == omaha.EventTypeUpdateInstalled) && e.Result == omaha.EventResultSuccess:
			set(store.StatusInstalled, 0)
		case e.Type == omaha.EventTypeUpdateComplete && e.Result == omaha.EventResultSuccessReboot:
			if e.PreviousVersion == "" || e.PreviousVersion == "0.0.0.0" {
				continue
			}
			set(store.StatusComplete, 0)
		case e.Type == omaha.EventTypeUpdateComplete && e.Result == omaha.EventResultError:
			code := e.Code()
			in.LastErrorCode = int64(code)
			if code.Base() == omaha.ErrorCodeRollback {
				set(store.StatusRolledBack, int64(code))
			} else {
				set(store.StatusError, int64(code))
			}
		}
		upd.Events = append(upd.Events, ev)
	}
	if inProgress[in.Status] && in.UpdateVersion != "" && atLeast(a.Version, in.UpdateVersion) {
		set(store.StatusComplete, 0)
	}
	if c.offered != "" {
		if in.Status != store.StatusUpdateGranted || in.UpdateVersion != c.offered {
			in.UpdateVersion = c.offered
			in.Status = ""
			set(store.StatusUpdateGranted, 0)
		}
	}
	upd.Instance = in
	return upd
}

// atLeast reports whether version v ≥ w; unparsable versions compare as not.
func atLeast(v, w string) bool {
	pv, err := omaha.ParseVersion(v)
	if err != nil {
		return false
	}
	pw, err := omaha.ParseVersion(w)
	if err != nil {
		return false
	}
	return pv.Compare(pw) >= 0
}
