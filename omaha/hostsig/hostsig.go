// Package hostsig is the wire format of host signatures, a Switchyard extension to Omaha
// (2026-12-03): a host proves, on every request, that it holds the private half of an
// Ed25519 key, so that the server can tell a report from a known host from a report anyone
// could have sent. Parties: update-engine signs (package update-engine/identity holds the
// key), omaha-server verifies (package omaha-server/hostauth decides what a verified key
// is worth). It imports the standard library only; both sides import it.
//
// # Headers
//
// A signed request carries three HTTP headers besides its Omaha body; a server that does
// not know them ignores them, and a request without them is an ordinary Omaha request:
//
//	X-Switchyard-Host-Key        base64 (standard, padded) of the 32-byte Ed25519 public key
//	X-Switchyard-Host-Time       the signing time, decimal seconds since the Unix epoch
//	X-Switchyard-Host-Signature  base64 of the 64-byte Ed25519 signature of the message
//
// # Signed message
//
// The message is domain-separated text, one field a line:
//
//	switchyard-host-signature-v1
//	<method>                      POST
//	<host>                        the request's Host (updates.example.com:443 as sent)
//	<path>                        the escaped URL path (/v1/update/)
//	<time>                        the X-Switchyard-Host-Time value, as sent
//	<body>                        lower-case hex of SHA-256 of the exact body bytes
//
// Signing the body's bytes, not its XML, needs no canonical form, and signing in HTTP (not
// in TLS, as mutual TLS would) survives a load balancer that terminates TLS, as long as it
// keeps the Host header and the path. The machine id the signature vouches for is inside
// the body, so a signature cannot be moved to another host's report.
//
// # Freshness
//
// Verify refuses a time further than MaxSkew from the verifier's clock in either direction
// (ErrStale): a captured request can be replayed only within that window, and then only to
// the same host and path with the same body, which repeats a report the host made anyway.
package hostsig

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderKey       = "X-Switchyard-Host-Key"
	HeaderTime      = "X-Switchyard-Host-Time"
	HeaderSignature = "X-Switchyard-Host-Signature"
)

// Context is the first line of every signed message.
const Context = "switchyard-host-signature-v1"

// MaxSkew is how far a signature's time may be from the verifier's clock.
const MaxSkew = 5 * time.Minute

// maxHeaderBytes bounds each header value Verify decodes (a base64 signature is 88 bytes).
const maxHeaderBytes = 128

// Errors Verify wraps; callers branch on them with errors.Is.
var (
	// ErrMalformed: some but not all headers, or a value that does not decode.
	ErrMalformed = errors.New("hostsig: malformed host signature headers")
	// ErrStale: the signing time is more than MaxSkew from the verifier's clock.
	ErrStale = errors.New("hostsig: signature time outside the allowed skew")
	// ErrBadSignature: the signature does not verify for this key, request and body.
	ErrBadSignature = errors.New("hostsig: signature does not verify")
)

// Message is the byte string that is signed for a request (see the package doc).
func Message(method, host, path, unixTime string, bodySHA256 [sha256.Size]byte) []byte {
	return []byte(strings.Join([]string{Context, method, host, path, unixTime, hex.EncodeToString(bodySHA256[:])}, "\n"))
}

// Sign sets the three headers on req for body (the exact bytes req sends), signed with key
// at time now.
func Sign(req *http.Request, body []byte, key ed25519.PrivateKey, now time.Time) error {
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("hostsig: signing: not an Ed25519 private key")
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	msg := Message(req.Method, requestHost(req), req.URL.EscapedPath(), ts, sha256.Sum256(body))
	req.Header.Set(HeaderKey, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	req.Header.Set(HeaderTime, ts)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg)))
	return nil
}

// requestHost is the Host a client request sends: req.Host when set, else the URL's.
func requestHost(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

// Signed reports whether r carries any of the headers.
func Signed(r *http.Request) bool {
	return r.Header.Get(HeaderKey) != "" || r.Header.Get(HeaderTime) != "" || r.Header.Get(HeaderSignature) != ""
}

// Verify checks the signature of a received request whose body hashed to bodySHA256, at
// time now. It returns the verified public key, or nil and no error when the request
// carries none of the headers (an old client).
func Verify(r *http.Request, bodySHA256 [sha256.Size]byte, now time.Time) (ed25519.PublicKey, error) {
	if !Signed(r) {
		return nil, nil
	}
	k, ts, s := r.Header.Get(HeaderKey), r.Header.Get(HeaderTime), r.Header.Get(HeaderSignature)
	if k == "" || ts == "" || s == "" {
		return nil, fmt.Errorf("%w: want all of %s, %s and %s", ErrMalformed, HeaderKey, HeaderTime, HeaderSignature)
	}
	if len(k) > maxHeaderBytes || len(ts) > maxHeaderBytes || len(s) > maxHeaderBytes {
		return nil, fmt.Errorf("%w: header value over %d bytes", ErrMalformed, maxHeaderBytes)
	}
	pub, err := ParsePublicKey(k)
	if err != nil {
		return nil, err
	}
	sig, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %s is not a base64 Ed25519 signature", ErrMalformed, HeaderSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return nil, fmt.Errorf("%w: %s %q is not decimal Unix seconds", ErrMalformed, HeaderTime, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return nil, fmt.Errorf("%w: signed at %s, %s from now (at most %s)", ErrStale,
			time.Unix(sec, 0).UTC().Format(time.RFC3339), d.Round(time.Second), MaxSkew)
	}
	if !ed25519.Verify(pub, Message(r.Method, r.Host, r.URL.EscapedPath(), ts, bodySHA256), sig) {
		return nil, fmt.Errorf("%w (a proxy that rewrites the Host header or the path breaks signatures)", ErrBadSignature)
	}
	return pub, nil
}

// ParsePublicKey reads a public key as the headers and operators write it: base64 of the
// 32-byte Ed25519 key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %q is not a base64 Ed25519 public key (32 bytes)", ErrMalformed, s)
	}
	return ed25519.PublicKey(b), nil
}

// FormatPublicKey writes a public key as ParsePublicKey reads it.
func FormatPublicKey(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }
