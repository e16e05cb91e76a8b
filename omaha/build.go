package omaha

import (
	"encoding/base64"
	"strings"
	"time"
)

// Constants a Flatcar update engine puts in every request.
const (
	// FlatcarAppID is the app id of the Flatcar OS image.
	FlatcarAppID = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
	// FlatcarUpdaterVersion is what Flatcar's update_engine sends as version and
	// updaterversion.
	FlatcarUpdaterVersion = "update_engine-0.4.10"
	// FlatcarOSPlatform and FlatcarOSVersion are the constant <os> attributes.
	FlatcarOSPlatform = "CoreOS"
	FlatcarOSVersion  = "Chateau"
)

// Host is what a host says about itself in every request.
type Host struct {
	AppID        string // FlatcarAppID when empty
	Version      string // running version, e.g. 4081.2.0
	Track        string // group, e.g. stable
	Board        string // amd64-usr, arm64-usr
	Machine      string // uname -m (x86_64, aarch64), appended to os@sp; MachineOf(Board) when empty
	MachineID    string // /etc/machine-id, no braces
	BootID       string // boot id in braces
	MachineAlias string
	OEM          string
	OEMVersion   string
	AlephVersion string // first version this install ran; Version when empty
	Updater      string // request@version and @updaterversion; FlatcarUpdaterVersion when empty
}

func (h Host) request(onDemand bool) *Request {
	updater := h.Updater
	if updater == "" {
		updater = FlatcarUpdaterVersion
	}
	src := InstallSourceScheduler
	if onDemand {
		src = InstallSourceOnDemand
	}
	appID := h.AppID
	if appID == "" {
		appID = FlatcarAppID
	}
	aleph := h.AlephVersion
	if aleph == "" {
		aleph = h.Version
	}
	sp := h.Version
	machine := h.Machine
	if machine == "" {
		machine = MachineOf(h.Board)
	}
	if machine != "" {
		sp += "_" + machine
	}
	return &Request{
		Protocol:       ProtocolVersion,
		Version:        updater,
		UpdaterVersion: updater,
		InstallSource:  src,
		IsMachine:      1,
		OS:             &OS{Platform: FlatcarOSPlatform, Version: FlatcarOSVersion, ServicePack: sp},
		Apps: []*App{{
			AppID:        appID,
			Version:      h.Version,
			Track:        h.Track,
			BootID:       h.BootID,
			MachineID:    h.MachineID,
			MachineAlias: h.MachineAlias,
			OEM:          h.OEM,
			OEMVersion:   h.OEMVersion,
			AlephVersion: aleph,
			Board:        h.Board,
			Lang:         "en-US",
			DeltaOK:      false,
		}},
	}
}

// MachineOf is the machine (uname -m) of a Flatcar board: x86_64 for amd64-usr, aarch64
// for arm64-usr, empty for a board it does not know.
func MachineOf(board string) string {
	switch board {
	case "amd64-usr":
		return "x86_64"
	case "arm64-usr":
		return "aarch64"
	}
	return ""
}

// NewUpdateCheckRequest builds the request a Flatcar engine sends to check for an update:
// <ping active="1">, <updatecheck> and the given events (usually one: EventRebooted with the
// previous version, or EventRollback). onDemand selects installsource "ondemandupdate" over
// "scheduler".
func NewUpdateCheckRequest(h Host, onDemand bool, events ...*Event) *Request {
	r := h.request(onDemand)
	r.Apps[0].Ping = &Ping{Active: 1}
	r.Apps[0].UpdateCheck = &UpdateCheck{}
	r.Apps[0].Events = events
	return r
}

// NewPingRequest builds the ping-only request an engine sends while an applied update waits
// for a reboot.
func NewPingRequest(h Host) *Request {
	r := h.request(false)
	r.Apps[0].Ping = &Ping{Active: 1}
	return r
}

// NewEventRequest builds an event-only request (progress reports are fire-and-forget).
func NewEventRequest(h Host, events ...*Event) *Request {
	r := h.request(false)
	r.Apps[0].Events = events
	return r
}

// EventDownloadStarted is 13/1, sent before the payload download.
func EventDownloadStarted() *Event {
	return &Event{Type: EventTypeUpdateDownloadStarted, Result: EventResultSuccess}
}

// EventDownloadFinished is 14/1, sent when the payload is downloaded.
func EventDownloadFinished() *Event {
	return &Event{Type: EventTypeUpdateDownloadFinished, Result: EventResultSuccess}
}

// EventInstalled is 3/1: the update is written and the host needs a reboot.
func EventInstalled() *Event {
	return &Event{Type: EventTypeUpdateComplete, Result: EventResultSuccess}
}

// EventUpdateInstalled is Nebraska's 800/1 ("installed, completion pending").
func EventUpdateInstalled() *Event {
	return &Event{Type: EventTypeUpdateInstalled, Result: EventResultSuccess}
}

// EventRebooted is 3/2 with the version the host ran before: sent on the first check after
// the reboot into the new version. Flatcar sends previousversion="" on later checks.
func EventRebooted(previous string) *Event {
	return &Event{Type: EventTypeUpdateComplete, Result: EventResultSuccessReboot, PreviousVersion: previous}
}

// EventError is 3/0 with an error code (base code | flags) and an optional detail
// (a Switchyard extension).
func EventError(code ErrorCode, detail string) *Event {
	return &Event{Type: EventTypeUpdateComplete, Result: EventResultError, ErrorCode: &code, Detail: detail}
}

// EventRollback is 3/0 with ErrorCodeRollback: the new version did not stick.
func EventRollback(flags ErrorCode) *Event {
	return EventError(ErrorCodeRollback|flags.Flags(), "")
}

// EventDeferred is 3/9: an update was held back (backoff) with the given code.
func EventDeferred(code ErrorCode) *Event {
	return &Event{Type: EventTypeUpdateComplete, Result: EventResultUpdateDeferred, ErrorCode: &code}
}

// Offer is an update as both sides see it: what a server announces and what a client takes
// from a response (see Response.Offer).
type Offer struct {
	Version string   // manifest version
	URLs    []string // codebases, tried in order
	Package Package  // the payload: name, size, hashes
	Extra   []Package
	SHA256  []byte // SHA-256 of the whole payload (the postinstall action's sha256, base64 on the wire)

	IsDeltaPayload        bool
	DisablePayloadBackoff bool
	MaxFailureCountPerURL int    // 0: client default (10)
	MetadataSize          string // legacy, ignored by Flatcar
	Release               uint64 // Switchyard extension: release counter, 0 when unknown
	PollInterval          int    // seconds; 0: client default
}

// PayloadURLs returns each codebase joined with the payload name, as a Flatcar engine builds
// them (a "/" is added when the codebase lacks one).
func (o *Offer) PayloadURLs() []string {
	out := make([]string, 0, len(o.URLs))
	for _, u := range o.URLs {
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		out = append(out, u+o.Package.Name)
	}
	return out
}

// NewResponse starts a response from the named server at time now (daystart is the seconds
// since midnight in now's location).
func NewResponse(server string, now time.Time) *Response {
	y, m, d := now.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, now.Location())
	return &Response{
		Protocol: ProtocolVersion,
		Server:   server,
		DayStart: DayStart{ElapsedSeconds: int64(now.Sub(midnight) / time.Second)},
	}
}

// NewAppResponse answers a request app with status ok: a ping ack if it pinged, one event ack
// per event, and updatecheck noupdate if it asked for an update check. Call SetOffer to turn
// the noupdate into an update.
func NewAppResponse(app *App) *AppResponse {
	a := &AppResponse{AppID: app.AppID, Status: AppStatusOK}
	if app.Ping != nil {
		a.Ping = &PingResponse{Status: "ok"}
	}
	if app.UpdateCheck != nil {
		a.UpdateCheck = &UpdateCheckResponse{Status: UpdateStatusNoUpdate}
	}
	for range app.Events {
		a.Events = append(a.Events, &EventResponse{Status: "ok"})
	}
	return a
}

// SetOffer makes the app's updatecheck an update offer with every field Flatcar reads: one
// url per codebase, the manifest version, the payload package (required="true") followed by
// the extras, and the postinstall action with the base64 SHA-256. It fails if the offer does
// not validate.
func (a *AppResponse) SetOffer(o *Offer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	uc := &UpdateCheckResponse{Status: UpdateStatusOK, PollInterval: o.PollInterval}
	for _, u := range o.URLs {
		uc.URLs = append(uc.URLs, URL{CodeBase: u})
	}
	pkg := o.Package
	pkg.Required = true
	m := &Manifest{
		Version:  o.Version,
		Release:  o.Release,
		Packages: append([]Package{pkg}, o.Extra...),
		Actions: []Action{{
			Event:                 ActionPostinstall,
			SHA256:                base64.StdEncoding.EncodeToString(o.SHA256),
			IsDeltaPayload:        o.IsDeltaPayload,
			DisablePayloadBackoff: o.DisablePayloadBackoff,
			MaxFailureCountPerURL: o.MaxFailureCountPerURL,
			MetadataSize:          o.MetadataSize,
		}},
	}
	uc.Manifests = []*Manifest{m}
	a.UpdateCheck = uc
	return nil
}

// NewAppErrorResponse answers an app with an error status the way Nebraska does: the app
// status carries the reason and the updatecheck says error-internal (a Flatcar engine reports
// that as ErrorCodeOmahaResponseInvalid). Policy holds are not errors: answer them with
// NewAppResponse (noupdate).
func NewAppErrorResponse(appID string, status AppStatus) *AppResponse {
	return &AppResponse{
		AppID:       appID,
		Status:      status,
		UpdateCheck: &UpdateCheckResponse{Status: UpdateStatusInternal},
	}
}

// App returns the response app with the given appid (compared case-insensitively, as app ids
// are GUIDs), or the first app when appID is empty.
func (r *Response) App(appID string) *AppResponse {
	for _, a := range r.Apps {
		if appID == "" || strings.EqualFold(a.AppID, appID) {
			return a
		}
	}
	return nil
}

// Offer reads the update offer for appID (the first app when empty) the way a Flatcar engine
// reads it: the updatecheck status, the first manifest, every url, the first package and the
// postinstall action. It returns ErrNoUpdate for noupdate, a *StatusError for an error status,
// and a *ValidationError when a required field is missing or invalid.
func (r *Response) Offer(appID string) (*Offer, error) {
	a := r.App(appID)
	if a == nil {
		return nil, &ValidationError{AppID: appID, Field: "response/app", Reason: "no app in the response"}
	}
	if a.UpdateCheck == nil {
		return nil, &ValidationError{AppID: a.AppID, Field: "app/updatecheck", Reason: "missing"}
	}
	uc := a.UpdateCheck
	if a.Status.IsError() || (uc.Status != UpdateStatusOK && uc.Status != UpdateStatusNoUpdate) {
		return nil, &StatusError{AppID: a.AppID, AppStatus: a.Status, UpdateStatus: uc.Status}
	}
	if uc.Status == UpdateStatusNoUpdate {
		return nil, ErrNoUpdate
	}
	bad := func(field, value, reason string) error {
		return &ValidationError{AppID: a.AppID, Field: field, Value: value, Reason: reason}
	}
	if len(uc.Manifests) == 0 {
		return nil, bad("updatecheck/manifest", "", "missing")
	}
	m := uc.Manifests[0]
	if len(m.Packages) == 0 {
		return nil, bad("manifest/packages/package", "", "missing")
	}
	o := &Offer{
		Version:      m.Version,
		Package:      m.Packages[0],
		Release:      m.Release,
		PollInterval: uc.PollInterval,
	}
	if len(m.Packages) > 1 {
		o.Extra = append([]Package(nil), m.Packages[1:]...)
	}
	for _, u := range uc.URLs {
		o.URLs = append(o.URLs, u.CodeBase)
	}
	var post *Action
	for i := range m.Actions {
		if m.Actions[i].Event == ActionPostinstall {
			post = &m.Actions[i]
			break
		}
	}
	if post == nil {
		return nil, bad("manifest/actions/action", "", "no postinstall action")
	}
	sum, err := base64.StdEncoding.DecodeString(post.SHA256)
	if err != nil {
		return nil, bad("action@sha256", post.SHA256, "not base64")
	}
	o.SHA256 = sum
	o.IsDeltaPayload = post.IsDeltaPayload
	o.DisablePayloadBackoff = post.DisablePayloadBackoff
	o.MaxFailureCountPerURL = post.MaxFailureCountPerURL
	o.MetadataSize = post.MetadataSize
	if err := o.Validate(); err != nil {
		if ve, ok := err.(*ValidationError); ok {
			ve.AppID = a.AppID
		}
		return nil, err
	}
	return o, nil
}
