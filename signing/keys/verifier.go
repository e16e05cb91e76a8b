package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/sigstore/sigstore/pkg/signature"
)

// Verifier checks signatures against a set of accepted public keys, looked up by key ID.
// Hosts hold two payload keys at once during a rotation; a signature is accepted when it
// verifies under the key its key ID names. A Verifier is safe for concurrent use.
type Verifier struct {
	keys map[string]verifierKey
}

type verifierKey struct {
	pub *PublicKey
	v   signature.Verifier
}

// NewVerifier returns a Verifier accepting the given keys. With no keys it fails with
// ErrNoKeys: no key installed means nothing verifies, never a silent skip.
func NewVerifier(pubs ...*PublicKey) (*Verifier, error) {
	if len(pubs) == 0 {
		return nil, ErrNoKeys
	}
	v := &Verifier{keys: make(map[string]verifierKey, len(pubs))}
	for _, p := range pubs {
		if p == nil {
			return nil, fmt.Errorf("keys: nil public key")
		}
		sv, err := sigstoreVerifier(p)
		if err != nil {
			return nil, err
		}
		v.keys[p.id] = verifierKey{pub: p, v: sv}
	}
	return v, nil
}

// LoadVerifier reads PEM public key files and returns a Verifier accepting them all.
func LoadVerifier(paths ...string) (*Verifier, error) {
	var pubs []*PublicKey
	for _, p := range paths {
		k, err := LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		pubs = append(pubs, k)
	}
	return NewVerifier(pubs...)
}

// KeyFiles expands a list of public key locations as hosts configure them (PAYLOAD_KEYS):
// a file stands for itself, a directory for the *.pem files in it (sorted), and a path
// that does not exist is skipped, so an image may name a directory only some hosts have.
func KeyFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.pem"))
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		out = append(out, m...)
	}
	return out, nil
}

// KeyIDs returns the accepted key IDs, sorted.
func (v *Verifier) KeyIDs() []string {
	ids := make([]string, 0, len(v.keys))
	for id := range v.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Key returns the accepted key with the given ID, if any.
func (v *Verifier) Key(id string) (*PublicKey, bool) {
	k, ok := v.keys[id]
	return k.pub, ok
}

// Verify checks sig over msg under the accepted key keyID. It fails with ErrUnknownKey
// when keyID is not accepted and ErrBadSignature when the signature does not verify.
func (v *Verifier) Verify(keyID string, msg, sig []byte) error {
	if v == nil || len(v.keys) == 0 {
		return ErrNoKeys
	}
	k, ok := v.keys[keyID]
	if !ok {
		return fmt.Errorf("%w: %.16s", ErrUnknownKey, keyID)
	}
	if err := k.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("%w (key %.16s): %v", ErrBadSignature, keyID, err)
	}
	return nil
}

func sigstoreVerifier(p *PublicKey) (signature.Verifier, error) {
	var sv signature.Verifier
	var err error
	switch pub := p.key.(type) {
	case ed25519.PublicKey:
		sv, err = signature.LoadED25519Verifier(pub)
	case *ecdsa.PublicKey:
		sv, err = signature.LoadECDSAVerifier(pub, crypto.SHA256)
	case *rsa.PublicKey:
		sv, err = signature.LoadRSAPSSVerifier(pub, crypto.SHA256, pssOptions())
	default:
		err = fmt.Errorf("%w: %T", ErrUnsupportedAlgorithm, p.key)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: loading verifier: %w", err)
	}
	return sv, nil
}
