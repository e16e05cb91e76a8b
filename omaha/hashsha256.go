package omaha

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
)

// ErrHashSHA256 is a package@hash_sha256 value that is neither form of a SHA-256.
var ErrHashSHA256 = errors.New("omaha: hash_sha256 is neither 64 hex digits nor base64 of 32 bytes")

// ParseHashSHA256 decodes package@hash_sha256 in either of the forms peers write: 64 hex
// digits, as Nebraska writes it (and omaha-server), or standard base64 of the 32 bytes, as
// go-omaha's Package.FromReader writes it. The two cannot be confused: base64 of 32 bytes is
// 44 characters. Anything else is ErrHashSHA256.
func ParseHashSHA256(s string) ([]byte, error) {
	if isHexSHA256(s) {
		return hex.DecodeString(s)
	}
	if len(s) == base64.StdEncoding.EncodedLen(32) {
		if b, err := base64.StdEncoding.Strict().DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, ErrHashSHA256
}
