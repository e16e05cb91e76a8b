package omaha

import (
	"strconv"
	"unicode/utf8"
)

// A hand-written encoder for the two documents this package writes. It produces exactly
// what encoding/xml produces for the struct tags in request.go and response.go (the tests
// compare the two byte for byte), without reflection: every check-in costs the server one
// response and the host one request, and reflection was most of that cost.

type encoder struct{ b []byte }

func (e *encoder) open(name string) { e.b = append(append(e.b, '<'), name...) }

// empty ends a start tag and writes the matching end tag right after it (encoding/xml
// never writes self-closing tags).
func (e *encoder) empty(name string) {
	e.b = append(e.b, "></"...)
	e.b = append(append(e.b, name...), '>')
}

func (e *encoder) endStart() { e.b = append(e.b, '>') }

func (e *encoder) end(name string) {
	e.b = append(append(append(e.b, "</"...), name...), '>')
}

func (e *encoder) attr(name, v string) {
	e.b = append(append(append(e.b, ' '), name...), `="`...)
	e.escape(v)
	e.b = append(e.b, '"')
}

func (e *encoder) attrOmit(name, v string) {
	if v != "" {
		e.attr(name, v)
	}
}

func (e *encoder) attrInt(name string, v int64) {
	e.b = append(append(append(e.b, ' '), name...), `="`...)
	e.b = strconv.AppendInt(e.b, v, 10)
	e.b = append(e.b, '"')
}

func (e *encoder) attrUint(name string, v uint64) {
	e.b = append(append(append(e.b, ' '), name...), `="`...)
	e.b = strconv.AppendUint(e.b, v, 10)
	e.b = append(e.b, '"')
}

func (e *encoder) attrBool(name string, v bool) {
	e.b = append(append(append(e.b, ' '), name...), `="`...)
	e.b = strconv.AppendBool(e.b, v)
	e.b = append(e.b, '"')
}

// escape writes an attribute value as encoding/xml's EscapeString does.
func (e *encoder) escape(s string) {
	last := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		i += width
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if !inCharacterRange(r) || (r == utf8.RuneError && width == 1) {
				esc = "\uFFFD"
				break
			}
			continue
		}
		e.b = append(e.b, s[last:i-width]...)
		e.b = append(e.b, esc...)
		last = i
	}
	e.b = append(e.b, s[last:]...)
}

func inCharacterRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

func (e *encoder) request(r *Request) {
	e.open("request")
	e.attr("protocol", r.Protocol)
	e.attrOmit("version", r.Version)
	e.attrOmit("updaterversion", r.UpdaterVersion)
	e.attrOmit("installsource", r.InstallSource)
	if r.IsMachine != 0 {
		e.attrInt("ismachine", int64(r.IsMachine))
	}
	e.attrOmit("requestid", r.RequestID)
	e.attrOmit("sessionid", r.SessionID)
	e.attrOmit("userid", r.UserID)
	e.attrOmit("testsource", r.TestSource)
	e.endStart()
	if o := r.OS; o != nil {
		e.open("os")
		e.attrOmit("platform", o.Platform)
		e.attrOmit("version", o.Version)
		e.attrOmit("sp", o.ServicePack)
		e.attrOmit("arch", o.Arch)
		e.empty("os")
	}
	for _, a := range r.Apps {
		if a != nil {
			e.app(a)
		}
	}
	e.end("request")
}

func (e *encoder) app(a *App) {
	e.open("app")
	e.attr("appid", a.AppID)
	e.attrOmit("version", a.Version)
	e.attrOmit("track", a.Track)
	e.attrOmit("from_track", a.FromTrack)
	e.attrOmit("bootid", a.BootID)
	e.attrOmit("machineid", a.MachineID)
	e.attrOmit("machinealias", a.MachineAlias)
	e.attrOmit("oem", a.OEM)
	e.attrOmit("oemversion", a.OEMVersion)
	e.attrOmit("alephversion", a.AlephVersion)
	e.attrOmit("board", a.Board)
	e.attrOmit("lang", a.Lang)
	e.attrOmit("hardware_class", a.HardwareClass)
	e.attrBool("delta_okay", a.DeltaOK)
	e.attrOmit("client", a.Client)
	e.attrOmit("installage", a.InstallAge)
	e.attrOmit("nextversion", a.NextVersion)
	if a.MultiManifestOK {
		e.attrBool("multi_manifest_ok", true)
	}
	e.endStart()
	if p := a.Ping; p != nil {
		e.open("ping")
		if p.Active != 0 {
			e.attrInt("active", int64(p.Active))
		}
		if p.LastActiveReportDays != nil {
			e.attrInt("a", int64(*p.LastActiveReportDays))
		}
		if p.LastReportDays != nil {
			e.attrInt("r", int64(*p.LastReportDays))
		}
		e.empty("ping")
	}
	if u := a.UpdateCheck; u != nil {
		e.open("updatecheck")
		e.attrOmit("targetversionprefix", u.TargetVersionPrefix)
		e.empty("updatecheck")
	}
	for _, ev := range a.Events {
		if ev == nil {
			continue
		}
		e.open("event")
		e.attrInt("eventtype", int64(ev.Type))
		e.attrInt("eventresult", int64(ev.Result))
		if ev.ErrorCode != nil {
			e.attrUint("errorcode", uint64(*ev.ErrorCode))
		}
		e.attrOmit("previousversion", ev.PreviousVersion)
		e.attrOmit("nextversion", ev.NextVersion)
		e.attrOmit("sy_detail", ev.Detail)
		e.empty("event")
	}
	e.end("app")
}

func (e *encoder) response(r *Response) {
	e.open("response")
	e.attr("protocol", r.Protocol)
	e.attrOmit("server", r.Server)
	e.endStart()
	e.open("daystart")
	e.attrInt("elapsed_seconds", r.DayStart.ElapsedSeconds)
	if r.DayStart.ElapsedDays != 0 {
		e.attrInt("elapsed_days", r.DayStart.ElapsedDays)
	}
	e.empty("daystart")
	for _, a := range r.Apps {
		if a != nil {
			e.appResponse(a)
		}
	}
	e.end("response")
}

func (e *encoder) status(name, status string) {
	e.open(name)
	e.attr("status", status)
	e.empty(name)
}

func (e *encoder) appResponse(a *AppResponse) {
	e.open("app")
	e.attr("appid", a.AppID)
	e.attr("status", string(a.Status))
	e.endStart()
	if a.Ping != nil {
		e.status("ping", a.Ping.Status)
	}
	if u := a.UpdateCheck; u != nil {
		e.open("updatecheck")
		e.attr("status", string(u.Status))
		if u.PollInterval != 0 {
			e.attrInt("PollInterval", int64(u.PollInterval))
		}
		e.endStart()
		// encoding/xml writes a>b wrappers even around an empty list.
		e.b = append(e.b, "<urls>"...)
		for _, url := range u.URLs {
			e.open("url")
			e.attr("codebase", url.CodeBase)
			e.empty("url")
		}
		e.end("urls")
		for _, m := range u.Manifests {
			if m != nil {
				e.manifest(m)
			}
		}
		e.end("updatecheck")
	}
	for _, ev := range a.Events {
		if ev != nil {
			e.status("event", ev.Status)
		}
	}
	e.end("app")
}

func (e *encoder) manifest(m *Manifest) {
	e.open("manifest")
	e.attr("version", m.Version)
	if m.IsFloor {
		e.attrBool("is_floor", true)
	}
	e.attrOmit("floor_reason", m.FloorReason)
	if m.IsTarget {
		e.attrBool("is_target", true)
	}
	if m.Release != 0 {
		e.attrUint("sy_release", m.Release)
	}
	e.endStart()
	e.b = append(e.b, "<packages>"...)
	for _, p := range m.Packages {
		e.open("package")
		e.attr("name", p.Name)
		e.attrOmit("hash", p.Hash)
		e.attrOmit("hash_sha256", p.HashSHA256)
		e.attrUint("size", p.Size)
		e.attrBool("required", p.Required)
		e.attrOmit("sy_target", p.TUFTarget)
		e.empty("package")
	}
	e.end("packages")
	e.b = append(e.b, "<actions>"...)
	for _, a := range m.Actions {
		e.open("action")
		e.attr("event", a.Event)
		e.attrOmit("sha256", a.SHA256)
		e.attrOmit("DisplayVersion", a.DisplayVersion)
		if a.NeedsAdmin {
			e.attrBool("needsadmin", true)
		}
		if a.IsDeltaPayload {
			e.attrBool("IsDeltaPayload", true)
		}
		if a.DisablePayloadBackoff {
			e.attrBool("DisablePayloadBackoff", true)
		}
		if a.MaxFailureCountPerURL != 0 {
			e.attrInt("MaxFailureCountPerUrl", int64(a.MaxFailureCountPerURL))
		}
		e.attrOmit("MetadataSignatureRsa", a.MetadataSignatureRsa)
		e.attrOmit("MetadataSize", a.MetadataSize)
		e.attrOmit("deadline", a.Deadline)
		e.attrOmit("MoreInfo", a.MoreInfo)
		if a.Prompt {
			e.attrBool("Prompt", true)
		}
		e.empty("action")
	}
	e.end("actions")
	e.end("manifest")
}
