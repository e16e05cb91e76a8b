package omaha

import "encoding/xml"

// Response is an Omaha v3 <response>. Element order inside <app> is ping, updatecheck, events,
// as Nebraska writes it.
type Response struct {
	XMLName  xml.Name       `xml:"response"`
	Protocol string         `xml:"protocol,attr"`
	Server   string         `xml:"server,attr,omitempty"`
	DayStart DayStart       `xml:"daystart"`
	Apps     []*AppResponse `xml:"app"`
}

// DayStart tells the client the server's time of day.
type DayStart struct {
	ElapsedSeconds int64 `xml:"elapsed_seconds,attr"`
	ElapsedDays    int64 `xml:"elapsed_days,attr,omitempty"`
}

// AppResponse answers one request <app>.
type AppResponse struct {
	AppID       string               `xml:"appid,attr"`
	Status      AppStatus            `xml:"status,attr"`
	Ping        *PingResponse        `xml:"ping"`
	UpdateCheck *UpdateCheckResponse `xml:"updatecheck"`
	Events      []*EventResponse     `xml:"event"`
}

// PingResponse acknowledges a ping; its status is always "ok".
type PingResponse struct {
	Status string `xml:"status,attr"`
}

// EventResponse acknowledges one request event; its status is always "ok".
type EventResponse struct {
	Status string `xml:"status,attr"`
}

// UpdateCheckResponse is the response <updatecheck>.
type UpdateCheckResponse struct {
	Status UpdateStatus `xml:"status,attr"`
	// PollInterval, in seconds, overrides the client's check interval when non-zero.
	PollInterval int         `xml:"PollInterval,attr,omitempty"`
	URLs         []URL       `xml:"urls>url"`
	Manifests    []*Manifest `xml:"manifest"`
}

// URL is one base location of the payload: the client appends the package name (and a "/"
// first if the codebase lacks one). Clients try them in order.
type URL struct {
	CodeBase string `xml:"codebase,attr"`
}

// Manifest describes one release. A Flatcar engine reads only the first; Nebraska sends
// several (floors, then the target) only to clients that set multi_manifest_ok.
type Manifest struct {
	Version     string `xml:"version,attr"`
	IsFloor     bool   `xml:"is_floor,attr,omitempty"`
	FloorReason string `xml:"floor_reason,attr,omitempty"`
	IsTarget    bool   `xml:"is_target,attr,omitempty"`
	// Release is a Switchyard extension (sy_release, 2026-11-25): the release counter the TUF
	// target carries, so a client can refuse a rollback before fetching TUF metadata. Zero
	// means not sent.
	Release  uint64    `xml:"sy_release,attr,omitempty"`
	Packages []Package `xml:"packages>package"`
	Actions  []Action  `xml:"actions>action"`
}

// Package is one downloadable file. The first is the update payload; later ones are extras
// (OEM and extension images) that a Flatcar post-install script fetches.
type Package struct {
	Name       string `xml:"name,attr"`
	Hash       string `xml:"hash,attr,omitempty"`        // base64 SHA-1 (legacy)
	HashSHA256 string `xml:"hash_sha256,attr,omitempty"` // SHA-256: hex as Nebraska writes it, or go-omaha's base64 (ParseHashSHA256)
	Size       uint64 `xml:"size,attr"`
	Required   bool   `xml:"required,attr"`
	// TUFTarget is a Switchyard extension (sy_target, 2026-11-25): the TUF target path that
	// pins this file. Old clients ignore it; ours look the target up by it.
	TUFTarget string `xml:"sy_target,attr,omitempty"`
}

// Action is a manifest <action>. Flatcar requires the one with Event "postinstall" and reads
// SHA256 (base64 SHA-256 of the whole payload), IsDeltaPayload, DisablePayloadBackoff and
// MaxFailureCountPerURL from it; the other attributes are legacy and ignored by it.
type Action struct {
	Event                 string `xml:"event,attr"`
	SHA256                string `xml:"sha256,attr,omitempty"`
	DisplayVersion        string `xml:"DisplayVersion,attr,omitempty"`
	NeedsAdmin            bool   `xml:"needsadmin,attr,omitempty"`
	IsDeltaPayload        bool   `xml:"IsDeltaPayload,attr,omitempty"`
	DisablePayloadBackoff bool   `xml:"DisablePayloadBackoff,attr,omitempty"`
	MaxFailureCountPerURL int    `xml:"MaxFailureCountPerUrl,attr,omitempty"`
	MetadataSignatureRsa  string `xml:"MetadataSignatureRsa,attr,omitempty"`
	MetadataSize          string `xml:"MetadataSize,attr,omitempty"`
	Deadline              string `xml:"deadline,attr,omitempty"`
	MoreInfo              string `xml:"MoreInfo,attr,omitempty"`
	Prompt                bool   `xml:"Prompt,attr,omitempty"`
}

// ActionPostinstall is the event name of the action Flatcar requires.
const ActionPostinstall = "postinstall"
