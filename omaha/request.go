package omaha

import (
	"encoding/xml"
	"strconv"
)

// Request is an Omaha v3 <request>: one host asking about one or more apps. Fields carry every
// attribute a Flatcar update_engine sends plus the ones go-omaha and ChromeOS define; unknown
// attributes and elements are ignored when parsing.
type Request struct {
	XMLName        xml.Name `xml:"request"`
	Protocol       string   `xml:"protocol,attr"`
	Version        string   `xml:"version,attr,omitempty"`        // the updater, e.g. update_engine-0.4.10
	UpdaterVersion string   `xml:"updaterversion,attr,omitempty"` // same as Version for Flatcar
	InstallSource  string   `xml:"installsource,attr,omitempty"`  // InstallSourceScheduler or InstallSourceOnDemand
	IsMachine      int      `xml:"ismachine,attr,omitempty"`
	RequestID      string   `xml:"requestid,attr,omitempty"`
	SessionID      string   `xml:"sessionid,attr,omitempty"`
	UserID         string   `xml:"userid,attr,omitempty"`
	TestSource     string   `xml:"testsource,attr,omitempty"`
	OS             *OS      `xml:"os"`
	Apps           []*App   `xml:"app"`
}

// Install sources a Flatcar engine sends.
const (
	InstallSourceScheduler = "scheduler"
	InstallSourceOnDemand  = "ondemandupdate"
)

// OS is the <os> element. Flatcar sends platform "CoreOS", version "Chateau" and
// sp "<version>_<uname -m>"; it sends no arch (the board attribute of <app> carries it).
type OS struct {
	Platform    string `xml:"platform,attr,omitempty"`
	Version     string `xml:"version,attr,omitempty"`
	ServicePack string `xml:"sp,attr,omitempty"`
	Arch        string `xml:"arch,attr,omitempty"`
}

// App is a request <app>: the identity of the host and its running version, and what it asks
// for (ping, update check) and reports (events).
type App struct {
	AppID           string `xml:"appid,attr"`
	Version         string `xml:"version,attr,omitempty"`
	Track           string `xml:"track,attr,omitempty"` // the group, Flatcar's GROUP
	FromTrack       string `xml:"from_track,attr,omitempty"`
	BootID          string `xml:"bootid,attr,omitempty"`
	MachineID       string `xml:"machineid,attr,omitempty"`
	MachineAlias    string `xml:"machinealias,attr,omitempty"`
	OEM             string `xml:"oem,attr,omitempty"`
	OEMVersion      string `xml:"oemversion,attr,omitempty"`
	AlephVersion    string `xml:"alephversion,attr,omitempty"` // first version this install ran
	Board           string `xml:"board,attr,omitempty"`        // amd64-usr, arm64-usr
	Lang            string `xml:"lang,attr,omitempty"`
	HardwareClass   string `xml:"hardware_class,attr,omitempty"`
	DeltaOK         bool   `xml:"delta_okay,attr"`
	Client          string `xml:"client,attr,omitempty"`
	InstallAge      string `xml:"installage,attr,omitempty"`
	NextVersion     string `xml:"nextversion,attr,omitempty"`
	MultiManifestOK bool   `xml:"multi_manifest_ok,attr,omitempty"`

	Ping        *Ping        `xml:"ping"`
	UpdateCheck *UpdateCheck `xml:"updatecheck"`
	Events      []*Event     `xml:"event"`
}

// Ping is a request <ping>: "I'm alive". Flatcar sends active="1" and nothing else.
type Ping struct {
	Active               int  `xml:"active,attr,omitempty"`
	LastActiveReportDays *int `xml:"a,attr,omitempty"`
	LastReportDays       *int `xml:"r,attr,omitempty"`
}

// UpdateCheck is a request <updatecheck>. Flatcar sends it empty.
type UpdateCheck struct {
	TargetVersionPrefix string `xml:"targetversionprefix,attr,omitempty"`
}

// Event is a request <event>: a progress or result report.
type Event struct {
	Type            EventType   `xml:"eventtype,attr"`
	Result          EventResult `xml:"eventresult,attr"`
	ErrorCode       *ErrorCode  `xml:"errorcode,attr,omitempty"`
	PreviousVersion string      `xml:"previousversion,attr,omitempty"`
	NextVersion     string      `xml:"nextversion,attr,omitempty"`
	// Detail is a Switchyard extension (sy_detail, 2026-11-25): a short human-readable reason
	// for a failure. Old servers ignore it.
	Detail string `xml:"sy_detail,attr,omitempty"`
}

// Code returns the event's error code, or ErrorCodeSuccess when it carries none.
func (e *Event) Code() ErrorCode {
	if e.ErrorCode == nil {
		return ErrorCodeSuccess
	}
	return *e.ErrorCode
}

// MarshalXMLAttr writes the code as an unsigned decimal.
func (c ErrorCode) MarshalXMLAttr(name xml.Name) (xml.Attr, error) {
	return xml.Attr{Name: name, Value: strconv.FormatUint(uint64(c), 10)}, nil
}

// UnmarshalXMLAttr accepts the unsigned and the signed 32-bit spelling.
func (c *ErrorCode) UnmarshalXMLAttr(attr xml.Attr) error {
	v, err := ParseErrorCode(attr.Value)
	if err != nil {
		return err
	}
	*c = v
	return nil
}
