package omaha

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field bounds checked by Validate, tighter than the parser's generic attribute limit.
const (
	maxIDLen    = 128 // appid, machineid, bootid
	maxNameLen  = 64  // track, board, oem, lang, …
	maxDetail   = 1024
	maxCodeBase = 2048
)

// Validate checks a parsed request: protocol 3.0, at least one app, and each app valid (see
// App.Validate). It returns the first problem found.
func (r *Request) Validate() error {
	if r.Protocol != ProtocolVersion {
		return &ProtocolError{Got: r.Protocol}
	}
	if len(r.Apps) == 0 {
		return &ValidationError{Field: "request/app", Reason: "request has no app"}
	}
	if r.InstallSource != "" && !isToken(r.InstallSource, maxNameLen) {
		return &ValidationError{Field: "request@installsource", Value: r.InstallSource, Reason: "not a short token"}
	}
	for _, a := range r.Apps {
		if err := a.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks one request app: a well-formed appid, a version that ParseVersion accepts,
// identifiers of bounded length without spaces or control characters, and well-formed events.
// A server answers a ValidationError with its Status for that app.
func (a *App) Validate() error {
	bad := func(field, value, reason string) error {
		return &ValidationError{AppID: truncate(a.AppID, maxIDLen), Field: field, Value: value, Reason: reason}
	}
	switch {
	case a.AppID == "":
		return bad("app@appid", "", "missing")
	case !isToken(a.AppID, maxIDLen):
		return bad("app@appid", a.AppID, "not an app id (letters, digits, {}-._, at most 128)")
	}
	if a.Version == "" {
		return bad("app@version", "", "missing")
	}
	if _, err := ParseVersion(a.Version); err != nil {
		return bad("app@version", a.Version, err.(*VersionError).Reason)
	}
	for _, f := range []struct {
		field, value string
		max          int
	}{
		{"app@track", a.Track, maxNameLen},
		{"app@from_track", a.FromTrack, maxNameLen},
		{"app@machineid", a.MachineID, maxIDLen},
		{"app@bootid", a.BootID, maxIDLen},
		{"app@board", a.Board, maxNameLen},
		{"app@oem", a.OEM, maxNameLen},
		{"app@oemversion", a.OEMVersion, maxNameLen},
		{"app@lang", a.Lang, maxNameLen},
		{"app@hardware_class", a.HardwareClass, maxNameLen},
	} {
		if f.value != "" && !isToken(f.value, f.max) {
			return bad(f.field, f.value, fmt.Sprintf("not a token (letters, digits, {}-._, at most %d)", f.max))
		}
	}
	if a.AlephVersion != "" {
		if _, err := ParseVersion(a.AlephVersion); err != nil {
			return bad("app@alephversion", a.AlephVersion, err.(*VersionError).Reason)
		}
	}
	if len(a.MachineAlias) > maxNameLen*4 {
		return bad("app@machinealias", a.MachineAlias, "too long")
	}
	if err := CheckDisplayText(a.MachineAlias); err != nil {
		return bad("app@machinealias", a.MachineAlias, err.Error())
	}
	for _, e := range a.Events {
		if e.Type < 0 {
			return bad("event@eventtype", fmt.Sprint(int(e.Type)), "negative")
		}
		if e.Result < 0 {
			return bad("event@eventresult", fmt.Sprint(int(e.Result)), "negative")
		}
		// Flatcar sends previousversion="" on most checks and "0.0.0.0" when it never had one.
		if e.PreviousVersion != "" {
			if _, err := ParseVersion(e.PreviousVersion); err != nil {
				return bad("event@previousversion", e.PreviousVersion, err.(*VersionError).Reason)
			}
		}
		if len(e.Detail) > maxDetail {
			return bad("event@sy_detail", e.Detail, "too long")
		}
		if err := CheckDisplayText(e.Detail); err != nil {
			return bad("event@sy_detail", e.Detail, err.Error())
		}
	}
	return nil
}

// isToken reports whether s is 1..max bytes of letters, digits and {}-._:
func isToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '{' || c == '}' || c == '-' || c == '.' || c == '_' || c == ':':
		default:
			return false
		}
	}
	return true
}

// CheckDisplayText checks text a server shows to operators (a machine alias, an event's
// detail, the name of an application, channel or group): valid UTF-8 without control
// characters (C0, DEL, C1), line or paragraph separators, or format characters (Unicode
// category Cf: the bidirectional embeddings, overrides and isolates U+202A–U+202E and
// U+2066–U+2069, the direction marks, zero-width characters). A bidi override makes a name
// read differently from what it is ("host-\u202egnp.exe"); a control character rewrites a
// terminal or a log line. The empty string passes.
func CheckDisplayText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case isBidiControl(r):
			return fmt.Errorf("has the bidirectional control character %U", r)
		case unicode.IsControl(r), unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			return fmt.Errorf("has the control or format character %U", r)
		}
	}
	return nil
}

// isBidiControl reports the characters that reorder text (Unicode UAX #9 explicit
// formatting characters and marks).
func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// Validate checks an offer the way a Flatcar update engine reads one, and then some: a valid
// manifest version, at least one http(s) URL, a payload name that is a plain file name, a
// size above zero, and a SHA-256 of exactly 32 bytes.
func (o *Offer) Validate() error {
	bad := func(field, value, reason string) error {
		return &ValidationError{Field: field, Value: value, Reason: reason}
	}
	if _, err := ParseVersion(o.Version); err != nil {
		return bad("manifest@version", o.Version, err.(*VersionError).Reason)
	}
	if len(o.URLs) == 0 {
		return bad("urls/url", "", "no URL")
	}
	for _, u := range o.URLs {
		if err := checkCodeBase(u); err != "" {
			return bad("url@codebase", u, err)
		}
	}
	if err := checkFileName(o.Package.Name); err != "" {
		return bad("package@name", o.Package.Name, err)
	}
	if o.Package.Size == 0 {
		return bad("package@size", "0", "must be above zero")
	}
	for _, p := range append([]Package{o.Package}, o.Extra...) {
		if err := checkFileName(p.Name); err != "" {
			return bad("package@name", p.Name, err)
		}
		if p.HashSHA256 != "" {
			if _, err := ParseHashSHA256(p.HashSHA256); err != nil {
				return bad("package@hash_sha256", p.HashSHA256, "not a SHA-256 (64 hex digits or base64 of 32 bytes)")
			}
		}
	}
	if len(o.SHA256) != 32 {
		return bad("action@sha256", base64.StdEncoding.EncodeToString(o.SHA256), "not a SHA-256 (32 bytes)")
	}
	return nil
}

func checkCodeBase(s string) string {
	if s == "" {
		return "empty"
	}
	if len(s) > maxCodeBase {
		return "too long"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "scheme is not http or https"
	}
	if u.Host == "" {
		return "no host"
	}
	return ""
}

func checkFileName(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > 255:
		return "longer than 255 bytes"
	case s == "." || s == "..":
		return "not a file name"
	case strings.ContainsAny(s, "/\\?#%"):
		return "contains a path or URL separator"
	case hasControl(s):
		return "has control characters"
	}
	return ""
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
