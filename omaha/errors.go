package omaha

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Every error this package returns for bad input wraps exactly one of them,
// so a server can branch with errors.Is and pick an HTTP status and an Omaha status.
var (
	// ErrBodyTooLarge: the document is larger than Limits.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("omaha: body too large")
	// ErrMalformed: the document is not well-formed XML or not an Omaha document.
	ErrMalformed = errors.New("omaha: malformed document")
	// ErrEntity: the document declares a DOCTYPE or entities, or refers to an entity other
	// than the five XML predefines. Entities are never expanded.
	ErrEntity = errors.New("omaha: DOCTYPE, entity declarations and custom entities are refused")
	// ErrLimit: the document exceeds a structural limit (depth, element count, attribute
	// length, apps, events).
	ErrLimit = errors.New("omaha: limit exceeded")
	// ErrProtocol: the protocol attribute is not "3.0".
	ErrProtocol = errors.New("omaha: unsupported protocol version")
	// ErrInvalid: the document parsed but a field is missing or invalid.
	ErrInvalid = errors.New("omaha: invalid field")
	// ErrNoUpdate: the response says noupdate for the app.
	ErrNoUpdate = errors.New("omaha: no update")
)

// SyntaxError is a document that is not well-formed XML, or whose root or attribute values do
// not fit the Omaha types. It wraps ErrMalformed (or ErrEntity) and the decoder's error.
type SyntaxError struct {
	Line int // 0 when not known
	Err  error
}

func (e *SyntaxError) Error() string {
	if errors.Is(e.Err, ErrEntity) {
		return fmt.Sprintf("%v (line %d)", e.Err, e.Line)
	}
	if e.Line > 0 {
		return fmt.Sprintf("omaha: malformed XML at line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("omaha: malformed XML: %v", e.Err)
}

func (e *SyntaxError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// LimitError reports which structural limit a document exceeded.
type LimitError struct {
	What  string // "body bytes", "depth", "elements", "attribute length", "apps", …
	Limit int64
	Line  int
}

func (e *LimitError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("omaha: %s exceeds the limit of %d (line %d)", e.What, e.Limit, e.Line)
	}
	return fmt.Sprintf("omaha: %s exceeds the limit of %d", e.What, e.Limit)
}

// Is makes a LimitError match ErrLimit, and ErrBodyTooLarge when the body is the problem.
func (e *LimitError) Is(target error) bool {
	return target == ErrLimit || (target == ErrBodyTooLarge && e.What == limitBody)
}

// ProtocolError is a document with a protocol other than 3.0.
type ProtocolError struct {
	Got string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("omaha: unsupported protocol version %q, want %q", e.Got, ProtocolVersion)
}

func (e *ProtocolError) Unwrap() error { return ErrProtocol }

// ValidationError is a field of a parsed document that is missing or invalid.
type ValidationError struct {
	AppID  string // the app the field belongs to, if any
	Field  string // element@attribute, e.g. "app@version"
	Value  string
	Reason string
}

func (e *ValidationError) Error() string {
	s := "omaha: "
	if e.AppID != "" {
		s += "app " + e.AppID + ": "
	}
	return s + fmt.Sprintf("%s %q: %s", e.Field, truncate(e.Value, 64), e.Reason)
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

// AppStatus is the app status Omaha defines for this error, when it defines one: an invalid
// appid (error-invalidAppId) or version (error-invalidVersion). For any other field it
// returns "", false: the request is the client's error with no app status of its own, and
// a server answers it with HTTP 400 (HTTPStatus), storing nothing.
func (e *ValidationError) AppStatus() (AppStatus, bool) {
	switch e.Field {
	case "app@appid":
		return AppStatusInvalidAppID, true
	case "app@version":
		return AppStatusInvalidVersion, true
	}
	return "", false
}

// Status is AppStatus, or AppStatusInternal where Omaha defines no status, for a peer that
// must answer every app with a status. omaha-server answers those with HTTP 400 instead.
func (e *ValidationError) Status() AppStatus {
	if s, ok := e.AppStatus(); ok {
		return s
	}
	return AppStatusInternal
}

// HTTPStatus maps an error from ParseRequest or Validate to the HTTP status a server should
// answer: 413 for an oversized body, 400 for any other bad input, 500 for everything else.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrEntity), errors.Is(err, ErrLimit),
		errors.Is(err, ErrProtocol), errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
