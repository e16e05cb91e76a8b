package omaha

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ProtocolVersion is the only Omaha protocol this package speaks.
const ProtocolVersion = "3.0"

// Default limits. A Flatcar request is about 1 KiB and a Nebraska response with extension
// packages about 4 KiB; the limits leave ample room for honest peers and none for abuse.
const (
	DefaultMaxBodyBytes = 1 << 20 // 1 MiB
	DefaultMaxDepth     = 10
	DefaultMaxElements  = 4096
	DefaultMaxAttrs     = 64
	DefaultMaxAttrBytes = 4096
	DefaultMaxApps      = 64
	DefaultMaxEvents    = 32  // per app
	DefaultMaxChildren  = 256 // of any other element: urls, packages, actions, manifests
)

// Limits bounds what a parser accepts. A zero field means the default.
type Limits struct {
	MaxBodyBytes int64 // whole document
	MaxDepth     int   // element nesting; the root is depth 1
	MaxElements  int   // elements in the document
	MaxAttrs     int   // attributes on one element
	MaxAttrBytes int   // bytes in one attribute value
	MaxApps      int   // <app> elements under the root
	MaxEvents    int   // <event> elements in one <app>
	MaxChildren  int   // child elements of any other element
}

// DefaultLimits returns the limits used by ParseRequest and ParseResponse.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	def(&l.MaxDepth, DefaultMaxDepth)
	def(&l.MaxElements, DefaultMaxElements)
	def(&l.MaxAttrs, DefaultMaxAttrs)
	def(&l.MaxAttrBytes, DefaultMaxAttrBytes)
	def(&l.MaxApps, DefaultMaxApps)
	def(&l.MaxEvents, DefaultMaxEvents)
	def(&l.MaxChildren, DefaultMaxChildren)
	return l
}

// ParseRequest reads and parses a request with the default limits. See Limits.ParseRequest.
func ParseRequest(r io.Reader) (*Request, error) { return Limits{}.ParseRequest(r) }

// ParseResponse reads and parses a response with the default limits. See Limits.ParseResponse.
func ParseResponse(r io.Reader) (*Response, error) { return Limits{}.ParseResponse(r) }

// ParseRequest reads at most MaxBodyBytes from r and parses one <request> with protocol 3.0.
// It checks structure only (well-formed, within limits, no DTD, right root, right protocol);
// call Request.Validate for the fields. Errors wrap ErrBodyTooLarge, ErrMalformed, ErrEntity,
// ErrLimit, ErrProtocol or ErrInvalid.
func (l Limits) ParseRequest(r io.Reader) (*Request, error) {
	var req Request
	if err := l.parse(r, "request", &req); err != nil {
		return nil, err
	}
	if req.Protocol != ProtocolVersion {
		return nil, &ProtocolError{Got: req.Protocol}
	}
	req.XMLName = xml.Name{Local: "request"} // Omaha has no namespaces; drop any
	return &req, nil
}

// ParseResponse is ParseRequest for a <response>.
func (l Limits) ParseResponse(r io.Reader) (*Response, error) {
	var resp Response
	if err := l.parse(r, "response", &resp); err != nil {
		return nil, err
	}
	if resp.Protocol != ProtocolVersion {
		return nil, &ProtocolError{Got: resp.Protocol}
	}
	resp.XMLName = xml.Name{Local: "response"}
	// Wrapper elements (<urls>, <packages>, <actions>) may repeat, and their children are
	// merged into one list; bound the merged lists too, so what Marshal writes back parses.
	lim := l.withDefaults()
	for _, a := range resp.Apps {
		if a.UpdateCheck == nil {
			continue
		}
		if len(a.UpdateCheck.URLs) > lim.MaxChildren {
			return nil, &LimitError{What: "urls in one updatecheck", Limit: int64(lim.MaxChildren)}
		}
		for _, m := range a.UpdateCheck.Manifests {
			if len(m.Packages) > lim.MaxChildren || len(m.Actions) > lim.MaxChildren {
				return nil, &LimitError{What: "packages or actions in one manifest", Limit: int64(lim.MaxChildren)}
			}
		}
	}
	return &resp, nil
}

const limitBody = "body bytes"

func (l Limits) parse(r io.Reader, root string, v any) error {
	l = l.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, l.MaxBodyBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &LimitError{What: limitBody, Limit: mbe.Limit}
		}
		return fmt.Errorf("omaha: reading body: %w", err)
	}
	if int64(len(data)) > l.MaxBodyBytes {
		return &LimitError{What: limitBody, Limit: l.MaxBodyBytes}
	}
	if fastDecode(data, l, v) {
		return nil
	}
	return l.decode(data, root, v)
}

// fastDecode fills v (a *Request or *Response) through the fast path (fastparse.go) and
// reports whether it could; when it could not, v is untouched.
func fastDecode(data []byte, l Limits, v any) bool {
	t, ok := fastTree(data, l)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case *Request:
		var req Request
		if fillRequest(t, &req) {
			*v = req
			return true
		}
	case *Response:
		var resp Response
		if fillResponse(t, &resp) {
			*v = resp
			return true
		}
	}
	return false
}

func (l Limits) decode(data []byte, root string, v any) error {
	inner := xml.NewDecoder(bytes.NewReader(data))
	inner.Strict = true
	inner.Entity = map[string]string{} // only the five predefined entities
	c := &checker{d: inner, lim: l}
	outer := xml.NewTokenDecoder(c)
	// Find the root element first so a wrong root is a clear error rather than the
	// decoder's "expected element type".
	var start xml.StartElement
	for {
		tok, err := outer.Token()
		if err == io.EOF {
			return &SyntaxError{Err: errors.New("empty document")}
		}
		if err != nil {
			return c.wrap(err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			start = se
			break
		}
	}
	if start.Name.Local != root {
		return &SyntaxError{Line: c.line(), Err: fmt.Errorf("root element is <%s>, want <%s>", start.Name.Local, root)}
	}
	if err := outer.DecodeElement(v, &start); err != nil {
		return c.wrap(err)
	}
	// Only whitespace, comments and the end of input may follow the root.
	for {
		_, err := outer.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return c.wrap(err)
		}
	}
}

// checker sits between the byte-level decoder and the struct decoder and refuses, token by
// token, what the limits and the no-DTD rule forbid, before any of it reaches a struct.
type checker struct {
	d        *xml.Decoder
	lim      Limits
	elements int
	stack    []int // children seen so far, per open element
	events   int   // in the current <app>
	apps     int
	rootDone bool
}

func (c *checker) line() int {
	line, _ := c.d.InputPos()
	return line
}

func (c *checker) limit(what string, n int) error {
	return &LimitError{What: what, Limit: int64(n), Line: c.line()}
}

func (c *checker) Token() (xml.Token, error) {
	tok, err := c.d.Token()
	if err != nil {
		return nil, err
	}
	depth := len(c.stack)
	switch t := tok.(type) {
	case xml.StartElement:
		if c.rootDone {
			return nil, &SyntaxError{Line: c.line(), Err: errors.New("content after the root element")}
		}
		if depth+1 > c.lim.MaxDepth {
			return nil, c.limit("element depth", c.lim.MaxDepth)
		}
		c.elements++
		if c.elements > c.lim.MaxElements {
			return nil, c.limit("element count", c.lim.MaxElements)
		}
		if len(t.Attr) > c.lim.MaxAttrs {
			return nil, c.limit("attributes on <"+t.Name.Local+">", c.lim.MaxAttrs)
		}
		for _, a := range t.Attr {
			if len(a.Value) > c.lim.MaxAttrBytes {
				return nil, c.limit("attribute "+t.Name.Local+"@"+truncate(a.Name.Local, 32)+" length", c.lim.MaxAttrBytes)
			}
		}
		if depth > 0 {
			c.stack[depth-1]++
			switch {
			case depth == 1 && t.Name.Local == "app":
				c.apps++
				c.events = 0
				if c.apps > c.lim.MaxApps {
					return nil, c.limit("apps", c.lim.MaxApps)
				}
			case depth == 2 && t.Name.Local == "event":
				c.events++
				if c.events > c.lim.MaxEvents {
					return nil, c.limit("events in one app", c.lim.MaxEvents)
				}
			case c.stack[depth-1] > c.lim.MaxChildren:
				return nil, c.limit("children of one element", c.lim.MaxChildren)
			}
		}
		c.stack = append(c.stack, 0)
	case xml.EndElement:
		c.stack = c.stack[:depth-1]
		if depth == 1 {
			c.rootDone = true
		}
	case xml.Directive:
		return nil, &SyntaxError{Line: c.line(), Err: fmt.Errorf("%w: <!%s>", ErrEntity, truncate(firstWord(t), 16))}
	case xml.ProcInst:
		if t.Target != "xml" || depth > 0 || c.elements > 0 {
			return nil, &SyntaxError{Line: c.line(), Err: fmt.Errorf("processing instruction <?%s?> not allowed", truncate(t.Target, 16))}
		}
	case xml.CharData:
		if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
			return nil, &SyntaxError{Line: c.line(), Err: errors.New("text outside the root element")}
		}
	}
	return tok, nil
}

func firstWord(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		s = s[:i]
	}
	return s
}

// wrap turns an error from the decoders into one of this package's typed errors.
func (c *checker) wrap(err error) error {
	var (
		le *LimitError
		se *SyntaxError
		ve *ValidationError
	)
	switch {
	case errors.As(err, &le), errors.As(err, &se), errors.As(err, &ve):
		return err
	}
	var xse *xml.SyntaxError
	if errors.As(err, &xse) {
		// "invalid character entity &name;" is a custom entity; "&#…;" is a bad character
		// reference, which is merely malformed.
		if strings.Contains(xse.Msg, "entity &") && !strings.Contains(xse.Msg, "entity &#") {
			return &SyntaxError{Line: xse.Line, Err: fmt.Errorf("%w: %s", ErrEntity, xse.Msg)}
		}
		return &SyntaxError{Line: xse.Line, Err: errors.New(xse.Msg)}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &SyntaxError{Line: c.line(), Err: errors.New("unexpected end of document")}
	}
	return &SyntaxError{Line: c.line(), Err: err}
}
