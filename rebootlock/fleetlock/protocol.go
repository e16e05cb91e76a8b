package fleetlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// Protocol constants.
const (
	// Header must be present with the value "true" on every request.
	Header = "fleet-lock-protocol"
	// PreReboot and SteadyState are the paths under the base URL.
	PreReboot   = "/v1/pre-reboot"
	SteadyState = "/v1/steady-state"
	// MaxBody bounds request and error-response bodies.
	MaxBody = 64 << 10
)

// ClientParams identify the host and its group.
type ClientParams struct {
	ID    string `json:"id"`
	Group string `json:"group"`
}

// Request is the body of both operations.
type Request struct {
	ClientParams *ClientParams `json:"client_params"`
}

// Error is a failure reply: the HTTP status and the JSON body's kind and value.
type Error struct {
	// Status is the HTTP status; it is not part of the body, which the protocol defines as
	// exactly {"kind", "value"}.
	Status int    `json:"-"`
	Kind   string `json:"kind"`
	Value  string `json:"value"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("fleetlock: %d %s: %s", e.Status, e.Kind, e.Value)
}

// decodeRequest reads and validates a request body (at most MaxBody bytes are read).
func decodeRequest(r io.Reader) (ClientParams, *Error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return ClientParams{}, &Error{Status: 400, Kind: "invalid_body", Value: "reading the body: " + err.Error()}
	}
	if len(data) > MaxBody {
		return ClientParams{}, &Error{Status: 413, Kind: "body_too_large", Value: fmt.Sprintf("body above %d bytes", MaxBody)}
	}
	var req Request
	if err := json.Unmarshal(data, &req); err != nil {
		return ClientParams{}, &Error{Status: 400, Kind: "invalid_body", Value: "body is not a FleetLock request: " + err.Error()}
	}
	if req.ClientParams == nil {
		return ClientParams{}, &Error{Status: 400, Kind: "invalid_body", Value: "body has no client_params"}
	}
	p := *req.ClientParams
	if err := rebootlock.ValidateID(p.ID); err != nil {
		return ClientParams{}, &Error{Status: 400, Kind: "invalid_client_identity", Value: err.Error()}
	}
	if err := rebootlock.ValidateGroup(p.Group); err != nil {
		return ClientParams{}, &Error{Status: 400, Kind: "invalid_group", Value: err.Error()}
	}
	return p, nil
}

// decodeError reads an error reply; bodies that are not a JSON error become kind
// generic_http_<status>, as Zincati reports them.
func decodeError(status int, r io.Reader) *Error {
	data, _ := io.ReadAll(io.LimitReader(r, MaxBody))
	e := &Error{}
	if json.Unmarshal(data, e) != nil || e.Kind == "" {
		e = &Error{Kind: fmt.Sprintf("generic_http_%d", status), Value: string(truncate(data))}
	}
	e.Status = status
	return e
}

func truncate(b []byte) []byte {
	if len(b) > 256 {
		return b[:256]
	}
	return b
}

// IsFull reports whether err is the server's "every slot is held" reply.
func IsFull(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == "failed_lock_semaphore_full"
}
