package keys

import (
	"bytes"
	"context"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Signer signs messages with one key. File keys (FileSigner) and any sigstore signer,
// such as a KMS one (NewSigstoreSigner), implement it.
type Signer interface {
	// Sign returns the signature of msg under the scheme of the key's algorithm.
	Sign(ctx context.Context, msg []byte) ([]byte, error)
	// PublicKey returns the verification key.
	PublicKey() *PublicKey
	// KeyID returns PublicKey().ID().
	KeyID() string
}

// FileSigner is a Signer over a key held in memory.
type FileSigner struct {
	key *PrivateKey
	sv  signature.SignerVerifier
}

// NewSigner returns a Signer for a private key.
func NewSigner(k *PrivateKey) (*FileSigner, error) {
	sv, err := k.SigstoreSigner()
	if err != nil {
		return nil, err
	}
	return &FileSigner{key: k, sv: sv}, nil
}

// Sign signs msg.
func (s *FileSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	sig, err := s.sv.SignMessage(bytes.NewReader(msg), sigstoreSignOpts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("keys: signing: %w", err)
	}
	return sig, nil
}

// PublicKey returns the verification key.
func (s *FileSigner) PublicKey() *PublicKey { return s.key.pub }

// KeyID returns the key ID.
func (s *FileSigner) KeyID() string { return s.key.pub.id }

// SigstoreSigner is a Signer over any sigstore signature.Signer, e.g. one from
// sigstore's kms.Get. The signer must use the scheme this package verifies for its key's
// algorithm (for RSA: PSS with SHA-256).
type SigstoreSigner struct {
	s   signature.Signer
	pub *PublicKey
}

// NewSigstoreSigner wraps a sigstore signer.
func NewSigstoreSigner(ctx context.Context, s signature.Signer) (*SigstoreSigner, error) {
	cp, err := s.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("keys: reading signer's public key: %w", err)
	}
	pub, err := NewPublicKey(cp)
	if err != nil {
		return nil, err
	}
	return &SigstoreSigner{s: s, pub: pub}, nil
}

// Sign signs msg.
func (s *SigstoreSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	sig, err := s.s.SignMessage(bytes.NewReader(msg), sigstoreSignOpts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("keys: signing: %w", err)
	}
	return sig, nil
}

// PublicKey returns the verification key.
func (s *SigstoreSigner) PublicKey() *PublicKey { return s.pub }

// KeyID returns the key ID.
func (s *SigstoreSigner) KeyID() string { return s.pub.id }
