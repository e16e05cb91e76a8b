package omaha

import (
	"bytes"
	"strconv"
)

// A fast path for parsing the documents real peers send. encoding/xml reads a document a
// byte at a time through an interface and allocates for every token; on a busy server that
// was most of the cost of a check-in. fastTree reads the plain subset of XML that Omaha
// peers write (ASCII names without prefixes, quoted attributes with the five named entities
// and ASCII character references, whitespace and comments between elements, an optional
// standard XML declaration) with the same limits as the checker, and fillRequest and fillResponse map
// it onto the structs with encoding/xml's rules (repeated single elements merge, lists
// append, a>b wrappers may repeat, unknown elements and attributes are skipped).
//
// Anything outside that subset (and every error) makes the fast path give up, and the
// document is parsed again by encoding/xml behind the checker, which is the reference: it
// decides what is accepted and with which error. The fast path only ever answers what the
// reference would answer; the fuzz targets and tests compare the two.

// fnode is one element of a fast-parsed document.
type fnode struct {
	name     []byte
	attrs    []fattr
	children []*fnode
}

// fattr is one attribute; value is the raw text between the quotes.
type fattr struct {
	name, value []byte
}

type fastParser struct {
	b        []byte
	i        int
	lim      Limits
	elements int
	apps     int
	events   int
	nodes    []fnode // arena
}

// xmlDecls are the XML declarations the fast path accepts (anything else goes to the
// reference parser, which checks version and encoding).
var xmlDecls = [][]byte{
	[]byte(`<?xml version="1.0" encoding="UTF-8"?>`),
	[]byte(`<?xml version="1.0" encoding="utf-8"?>`),
	[]byte(`<?xml version="1.0"?>`),
	[]byte(`<?xml version='1.0' encoding='UTF-8'?>`),
}

// fastTree parses data into a tree, or reports false when the reference parser must decide.
func fastTree(data []byte, lim Limits) (*fnode, bool) {
	p := &fastParser{b: data, lim: lim, nodes: make([]fnode, 0, 16)}
	for _, d := range xmlDecls { // only at the very start
		if bytes.HasPrefix(p.b[p.i:], d) {
			p.i += len(d)
			break
		}
	}
	p.space()
	root, ok := p.element(1, nil)
	if !ok {
		return nil, false
	}
	p.space()
	if p.i != len(p.b) {
		return nil, false
	}
	return root, true
}

// ws skips whitespace inside a tag.
func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// space skips whitespace and comments between elements.
func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		case '<':
			if !bytes.HasPrefix(p.b[p.i:], commentStart) {
				return
			}
			// A comment ends at the first "--", which must be followed by '>'.
			rest := p.b[p.i+len(commentStart):]
			end := bytes.Index(rest, commentDashes)
			if end < 0 || end+2 >= len(rest) || rest[end+2] != '>' {
				return // the caller then fails on "<!": the reference decides
			}
			p.i += len(commentStart) + end + 3
		default:
			return
		}
	}
}

var (
	commentStart  = []byte("<!--")
	commentDashes = []byte("--")
)

func isNameStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

func isNameByte(c byte) bool {
	return isNameStart(c) || '0' <= c && c <= '9' || c == '.' || c == '-'
}

func (p *fastParser) name() ([]byte, bool) {
	start := p.i
	if p.i >= len(p.b) || !isNameStart(p.b[p.i]) {
		return nil, false
	}
	for p.i < len(p.b) && isNameByte(p.b[p.i]) {
		p.i++
	}
	// A prefix, a non-ASCII name or a strange character: the reference decides.
	if p.i < len(p.b) && (p.b[p.i] == ':' || p.b[p.i] >= 0x80) {
		return nil, false
	}
	return p.b[start:p.i], true
}

// element parses the element starting at p.i at the given depth (the root is 1); parent
// counts its children as the checker does.
func (p *fastParser) element(depth int, parentChildren *int) (*fnode, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '<' {
		return nil, false
	}
	p.i++
	name, ok := p.name()
	if !ok {
		return nil, false
	}
	if depth > p.lim.MaxDepth {
		return nil, false
	}
	p.elements++
	if p.elements > p.lim.MaxElements {
		return nil, false
	}
	if parentChildren != nil {
		*parentChildren++
		switch {
		case depth == 2 && string(name) == "app":
			p.apps++
			p.events = 0
			if p.apps > p.lim.MaxApps {
				return nil, false
			}
		case depth == 3 && string(name) == "event":
			p.events++
			if p.events > p.lim.MaxEvents {
				return nil, false
			}
		case *parentChildren > p.lim.MaxChildren:
			return nil, false
		}
	}
	p.nodes = append(p.nodes, fnode{name: name})
	n := &p.nodes[len(p.nodes)-1]
	if len(p.nodes) == cap(p.nodes) {
		// The next append would move the arena under the pointers handed out.
		p.nodes = make([]fnode, 0, 2*cap(p.nodes))
	}
	// Attributes.
	for {
		sp := p.i
		p.ws()
		if p.i >= len(p.b) {
			return nil, false
		}
		c := p.b[p.i]
		if c == '/' {
			if p.i+1 >= len(p.b) || p.b[p.i+1] != '>' {
				return nil, false
			}
			p.i += 2
			return n, p.attrsValid(n)
		}
		if c == '>' {
			p.i++
			break
		}
		if p.i == sp {
			return nil, false // attributes are separated by space
		}
		an, ok := p.name()
		if !ok || bytes.HasPrefix(an, []byte("xmlns")) {
			return nil, false
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '=' {
			return nil, false
		}
		p.i++
		p.ws()
		if p.i >= len(p.b) || (p.b[p.i] != '"' && p.b[p.i] != '\'') {
			return nil, false
		}
		q := p.b[p.i]
		p.i++
		end := bytes.IndexByte(p.b[p.i:], q)
		if end < 0 {
			return nil, false
		}
		v := p.b[p.i : p.i+end]
		p.i += end + 1
		for _, a := range n.attrs {
			if bytes.Equal(a.name, an) {
				return nil, false
			}
		}
		for _, c := range v {
			if c < 0x20 && c != '\t' && c != '\n' || c == '<' || c >= 0x7f {
				return nil, false
			}
		}
		n.attrs = append(n.attrs, fattr{name: an, value: v})
		if len(n.attrs) > p.lim.MaxAttrs {
			return nil, false
		}
	}
	if !p.attrsValid(n) {
		return nil, false
	}
	// Children, then the end tag.
	children := 0
	for {
		p.space()
		if p.i+1 >= len(p.b) || p.b[p.i] != '<' {
			return nil, false // text, or the end of input
		}
		if p.b[p.i+1] == '/' {
			p.i += 2
			en, ok := p.name()
			if !ok || !bytes.Equal(en, name) {
				return nil, false
			}
			p.ws()
			if p.i >= len(p.b) || p.b[p.i] != '>' {
				return nil, false
			}
			p.i++
			return n, true
		}
		child, ok := p.element(depth+1, &children)
		if !ok {
			return nil, false
		}
		n.children = append(n.children, child)
	}
}

// attrsValid checks every attribute value, of known fields or not, as the reference
// would: its references decode, and decoded it is within MaxAttrBytes.
func (p *fastParser) attrsValid(n *fnode) bool {
	for _, a := range n.attrs {
		if len(a.value) > p.lim.MaxAttrBytes || bytes.IndexByte(a.value, '&') >= 0 {
			if v, ok := unescape(a.value); !ok || len(v) > p.lim.MaxAttrBytes {
				return false
			}
		}
	}
	return true
}

// unescape decodes the five named entities and ASCII character references; anything else
// is for the reference parser.
func unescape(v []byte) ([]byte, bool) {
	if bytes.IndexByte(v, '&') < 0 {
		return v, true
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); {
		c := v[i]
		if c != '&' {
			out = append(out, c)
			i++
			continue
		}
		semi := bytes.IndexByte(v[i:], ';')
		if semi < 0 {
			return nil, false
		}
		ent := string(v[i+1 : i+semi])
		i += semi + 1
		switch ent {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "apos":
			out = append(out, '\'')
		case "quot":
			out = append(out, '"')
		default:
			var n uint64
			var err error
			switch {
			case len(ent) > 2 && ent[0] == '#' && ent[1] == 'x':
				n, err = strconv.ParseUint(ent[2:], 16, 8)
			case len(ent) > 1 && ent[0] == '#' && ent[1] != '+' && ent[1] != '-':
				n, err = strconv.ParseUint(ent[1:], 10, 8)
			default:
				return nil, false
			}
			if err != nil || !(n == '\t' || n == '\n' || n == '\r' || 0x20 <= n && n < 0x7f) {
				return nil, false
			}
			out = append(out, byte(n))
		}
	}
	return out, true
}

// attrMapper assigns an element's attributes with encoding/xml's conversions.
type attrMapper struct{ ok bool }

func (m *attrMapper) str(dst *string, v []byte) {
	u, ok := unescape(v)
	if !ok {
		m.ok = false
		return
	}
	*dst = string(u)
}

// digits reports whether v is an optional '-' and decimal digits only (encoding/xml trims
// Unicode space first; the reference handles any other form).
func digits(v []byte) bool {
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (m *attrMapper) int(dst *int, v []byte) { setSigned(m, dst, v, strconv.IntSize) }

func (m *attrMapper) int64(dst *int64, v []byte) { setSigned(m, dst, v, 64) }

// setSigned converts a signed integer attribute as encoding/xml does: empty is zero.
func setSigned[T int | int64](m *attrMapper, dst *T, v []byte, bits int) {
	if len(v) == 0 {
		*dst = 0
		return
	}
	n, err := strconv.ParseInt(string(v), 10, bits)
	if err != nil || !digits(v) {
		m.ok = false
		return
	}
	*dst = T(n)
}

func (m *attrMapper) uint64(dst *uint64, v []byte) {
	if len(v) == 0 {
		*dst = 0
		return
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || !digits(v) {
		m.ok = false
		return
	}
	*dst = n
}

func (m *attrMapper) bool(dst *bool, v []byte) {
	if len(v) == 0 {
		*dst = false
		return
	}
	b, err := strconv.ParseBool(string(v))
	if err != nil {
		m.ok = false
		return
	}
	*dst = b
}

func (m *attrMapper) intPtr(dst **int, v []byte) {
	if *dst == nil {
		*dst = new(int)
	}
	m.int(*dst, v)
}

// fillRequest maps a fast-parsed <request> onto req.
func fillRequest(root *fnode, req *Request) bool {
	if string(root.name) != "request" {
		return false
	}
	m := attrMapper{ok: true}
	for _, a := range root.attrs {
		switch string(a.name) {
		case "protocol":
			m.str(&req.Protocol, a.value)
		case "version":
			m.str(&req.Version, a.value)
		case "updaterversion":
			m.str(&req.UpdaterVersion, a.value)
		case "installsource":
			m.str(&req.InstallSource, a.value)
		case "ismachine":
			m.int(&req.IsMachine, a.value)
		case "requestid":
			m.str(&req.RequestID, a.value)
		case "sessionid":
			m.str(&req.SessionID, a.value)
		case "userid":
			m.str(&req.UserID, a.value)
		case "testsource":
			m.str(&req.TestSource, a.value)
		}
	}
	for _, c := range root.children {
		switch string(c.name) {
		case "os":
			if req.OS == nil {
				req.OS = &OS{}
			}
			for _, a := range c.attrs {
				switch string(a.name) {
				case "platform":
					m.str(&req.OS.Platform, a.value)
				case "version":
					m.str(&req.OS.Version, a.value)
				case "sp":
					m.str(&req.OS.ServicePack, a.value)
				case "arch":
					m.str(&req.OS.Arch, a.value)
				}
			}
		case "app":
			app := &App{}
			fillApp(&m, c, app)
			req.Apps = append(req.Apps, app)
		}
	}
	return m.ok
}

func fillApp(m *attrMapper, n *fnode, app *App) {
	for _, a := range n.attrs {
		switch string(a.name) {
		case "appid":
			m.str(&app.AppID, a.value)
		case "version":
			m.str(&app.Version, a.value)
		case "track":
			m.str(&app.Track, a.value)
		case "from_track":
			m.str(&app.FromTrack, a.value)
		case "bootid":
			m.str(&app.BootID, a.value)
		case "machineid":
			m.str(&app.MachineID, a.value)
		case "machinealias":
			m.str(&app.MachineAlias, a.value)
		case "oem":
			m.str(&app.OEM, a.value)
		case "oemversion":
			m.str(&app.OEMVersion, a.value)
		case "alephversion":
			m.str(&app.AlephVersion, a.value)
		case "board":
			m.str(&app.Board, a.value)
		case "lang":
			m.str(&app.Lang, a.value)
		case "hardware_class":
			m.str(&app.HardwareClass, a.value)
		case "delta_okay":
			m.bool(&app.DeltaOK, a.value)
		case "client":
			m.str(&app.Client, a.value)
		case "installage":
			m.str(&app.InstallAge, a.value)
		case "nextversion":
			m.str(&app.NextVersion, a.value)
		case "multi_manifest_ok":
			m.bool(&app.MultiManifestOK, a.value)
		}
	}
	for _, c := range n.children {
		switch string(c.name) {
		case "ping":
			if app.Ping == nil {
				app.Ping = &Ping{}
			}
			for _, a := range c.attrs {
				switch string(a.name) {
				case "active":
					m.int(&app.Ping.Active, a.value)
				case "a":
					m.intPtr(&app.Ping.LastActiveReportDays, a.value)
				case "r":
					m.intPtr(&app.Ping.LastReportDays, a.value)
				}
			}
		case "updatecheck":
			if app.UpdateCheck == nil {
				app.UpdateCheck = &UpdateCheck{}
			}
			for _, a := range c.attrs {
				if string(a.name) == "targetversionprefix" {
					m.str(&app.UpdateCheck.TargetVersionPrefix, a.value)
				}
			}
		case "event":
			e := &Event{}
			for _, a := range c.attrs {
				switch string(a.name) {
				case "eventtype":
					var v int
					m.int(&v, a.value)
					e.Type = EventType(v)
				case "eventresult":
					var v int
					m.int(&v, a.value)
					e.Result = EventResult(v)
				case "errorcode":
					u, ok := unescape(a.value)
					if !ok {
						m.ok = false
						continue
					}
					code, err := ParseErrorCode(string(u))
					if err != nil {
						m.ok = false
						continue
					}
					e.ErrorCode = &code
				case "previousversion":
					m.str(&e.PreviousVersion, a.value)
				case "nextversion":
					m.str(&e.NextVersion, a.value)
				case "sy_detail":
					m.str(&e.Detail, a.value)
				}
			}
			app.Events = append(app.Events, e)
		}
	}
}

// fillResponse maps a fast-parsed <response> onto resp.
func fillResponse(root *fnode, resp *Response) bool {
	if string(root.name) != "response" {
		return false
	}
	m := attrMapper{ok: true}
	for _, a := range root.attrs {
		switch string(a.name) {
		case "protocol":
			m.str(&resp.Protocol, a.value)
		case "server":
			m.str(&resp.Server, a.value)
		}
	}
	for _, c := range root.children {
		switch string(c.name) {
		case "daystart":
			for _, a := range c.attrs {
				switch string(a.name) {
				case "elapsed_seconds":
					m.int64(&resp.DayStart.ElapsedSeconds, a.value)
				case "elapsed_days":
					m.int64(&resp.DayStart.ElapsedDays, a.value)
				}
			}
		case "app":
			app := &AppResponse{}
			fillAppResponse(&m, c, app)
			resp.Apps = append(resp.Apps, app)
		}
	}
	return m.ok
}

func fillAppResponse(m *attrMapper, n *fnode, app *AppResponse) {
	for _, a := range n.attrs {
		switch string(a.name) {
		case "appid":
			m.str(&app.AppID, a.value)
		case "status":
			var s string
			m.str(&s, a.value)
			app.Status = AppStatus(s)
		}
	}
	for _, c := range n.children {
		switch string(c.name) {
		case "ping":
			if app.Ping == nil {
				app.Ping = &PingResponse{}
			}
			for _, a := range c.attrs {
				if string(a.name) == "status" {
					m.str(&app.Ping.Status, a.value)
				}
			}
		case "event":
			e := &EventResponse{}
			for _, a := range c.attrs {
				if string(a.name) == "status" {
					m.str(&e.Status, a.value)
				}
			}
			app.Events = append(app.Events, e)
		case "updatecheck":
			if app.UpdateCheck == nil {
				app.UpdateCheck = &UpdateCheckResponse{}
			}
			fillUpdateCheck(m, c, app.UpdateCheck)
		}
	}
}

func fillUpdateCheck(m *attrMapper, n *fnode, u *UpdateCheckResponse) {
	for _, a := range n.attrs {
		switch string(a.name) {
		case "status":
			var s string
			m.str(&s, a.value)
			u.Status = UpdateStatus(s)
		case "PollInterval":
			m.int(&u.PollInterval, a.value)
		}
	}
	for _, c := range n.children {
		switch string(c.name) {
		case "urls":
			for _, uc := range c.children {
				if string(uc.name) != "url" {
					continue
				}
				var url URL
				for _, a := range uc.attrs {
					if string(a.name) == "codebase" {
						m.str(&url.CodeBase, a.value)
					}
				}
				u.URLs = append(u.URLs, url)
			}
		case "manifest":
			mf := &Manifest{}
			fillManifest(m, c, mf)
			u.Manifests = append(u.Manifests, mf)
		}
	}
}

func fillManifest(m *attrMapper, n *fnode, mf *Manifest) {
	for _, a := range n.attrs {
		switch string(a.name) {
		case "version":
			m.str(&mf.Version, a.value)
		case "is_floor":
			m.bool(&mf.IsFloor, a.value)
		case "floor_reason":
			m.str(&mf.FloorReason, a.value)
		case "is_target":
			m.bool(&mf.IsTarget, a.value)
		case "sy_release":
			m.uint64(&mf.Release, a.value)
		}
	}
	for _, c := range n.children {
		switch string(c.name) {
		case "packages":
			for _, pc := range c.children {
				if string(pc.name) != "package" {
					continue
				}
				var p Package
				for _, a := range pc.attrs {
					switch string(a.name) {
					case "name":
						m.str(&p.Name, a.value)
					case "hash":
						m.str(&p.Hash, a.value)
					case "hash_sha256":
						m.str(&p.HashSHA256, a.value)
					case "size":
						m.uint64(&p.Size, a.value)
					case "required":
						m.bool(&p.Required, a.value)
					case "sy_target":
						m.str(&p.TUFTarget, a.value)
					}
				}
				mf.Packages = append(mf.Packages, p)
			}
		case "actions":
			for _, ac := range c.children {
				if string(ac.name) != "action" {
					continue
				}
				var a Action
				for _, at := range ac.attrs {
					v := at.value
					switch string(at.name) {
					case "event":
						m.str(&a.Event, v)
					case "sha256":
						m.str(&a.SHA256, v)
					case "DisplayVersion":
						m.str(&a.DisplayVersion, v)
					case "needsadmin":
						m.bool(&a.NeedsAdmin, v)
					case "IsDeltaPayload":
						m.bool(&a.IsDeltaPayload, v)
					case "DisablePayloadBackoff":
						m.bool(&a.DisablePayloadBackoff, v)
					case "MaxFailureCountPerUrl":
						m.int(&a.MaxFailureCountPerURL, v)
					case "MetadataSignatureRsa":
						m.str(&a.MetadataSignatureRsa, v)
					case "MetadataSize":
						m.str(&a.MetadataSize, v)
					case "deadline":
						m.str(&a.Deadline, v)
					case "MoreInfo":
						m.str(&a.MoreInfo, v)
					case "Prompt":
						m.bool(&a.Prompt, v)
					}
				}
				mf.Actions = append(mf.Actions, a)
			}
		}
	}
}
