// Package keys generates, stores, loads and uses the signing keys of Switchyard: the payload
// key that signs payload manifests, and the TUF role keys.
//
// Keys are made and used through github.com/sigstore/sigstore (pkg/signature and
// pkg/cryptoutils), so the same code paths serve file keys and, through the Signer
// interface, a KMS or HSM signer.
//
// # Algorithms
//
//   - ed25519 (the default): pure ed25519 over the message.
//   - ecdsa-p256: ECDSA on P-256 over SHA-256, ASN.1 DER signatures. Only P-256: go-tuf labels
//     every ECDSA key "ecdsa-sha2-nistp256", and other TUF clients then reject P-384 keys.
//   - rsa: RSA (3072 bits when generated here) with RSASSA-PSS over SHA-256, salt length equal
//     to the hash length. Always PSS, never PKCS#1 v1.5: go-tuf verifies RSA keys as PSS only.
//
// # Files
//
// Public keys are PEM "PUBLIC KEY" blocks (PKIX). Private keys are written only encrypted:
// a PEM "ENCRYPTED SIGSTORE PRIVATE KEY" block (PKCS#8 sealed with scrypt and NaCl
// secretbox by sigstore's cryptoutils). Reading also accepts unencrypted PKCS#8, PKCS#1 and
// SEC 1 keys and PKCS#8 "ENCRYPTED PRIVATE KEY" blocks made by other tools. Private key files
// are written with mode 0600 by temp file, fsync, rename and fsync of the directory.
//
// The passphrase comes from a PassFunc supplied by the caller (the command line decides
// whether it is a file, an environment variable or a prompt); this package reads no
// environment variables.
//
// # Key IDs
//
// A key ID is the lowercase hex SHA-256 of the public key's PKIX DER encoding. It is what a
// payload signature names, so a verifier holding several keys (two payload keys during a
// rotation) picks the right one and a signature can never be checked against a key of
// another algorithm. TUF computes its own key IDs from its canonical JSON; those differ.
//
// This package imports nothing else of Switchyard but the internal mechanisms (atomicfile for
// writing key files, smallfile for reading them, bounded by MaxPEMFileSize).
package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/internal/smallfile"
)

// Algorithm names a key type and its signature scheme.
type Algorithm string

// The algorithms a key can have.
const (
	Ed25519   Algorithm = "ed25519"
	ECDSAP256 Algorithm = "ecdsa-p256"
	RSA       Algorithm = "rsa"
)

// DefaultAlgorithm is the algorithm Generate uses when given "".
const DefaultAlgorithm = Ed25519

// RSABits is the modulus size of generated RSA keys.
const RSABits = 3072

// MinRSABits is the smallest RSA modulus accepted when loading a key.
const MinRSABits = 2048

// MaxPEMFileSize bounds how much of a key file is read.
const MaxPEMFileSize = 64 << 10

// PassFunc supplies a passphrase. confirm is true when a new key is being encrypted (a
// prompt should ask twice). It is sigstore's cryptoutils.PassFunc.
type PassFunc = cryptoutils.PassFunc

// Errors callers branch on.
var (
	ErrUnsupportedAlgorithm = errors.New("keys: unsupported key algorithm")
	ErrNoPassphrase         = errors.New("keys: a passphrase is required")
	ErrBadPassphrase        = errors.New("keys: wrong passphrase or corrupt private key")
	ErrNotPEM               = errors.New("keys: not a PEM key file")
	ErrNoKeys               = errors.New("keys: no verification key")
	ErrUnknownKey           = errors.New("keys: signature names a key that is not accepted")
	ErrBadSignature         = errors.New("keys: signature does not verify")
)

// StaticPassphrase returns a PassFunc that always yields p.
func StaticPassphrase(p []byte) PassFunc {
	return func(bool) ([]byte, error) { return p, nil }
}

// PassphraseFile returns a PassFunc that reads the passphrase from a file, dropping one
// trailing newline (or CRLF).
func PassphraseFile(path string) PassFunc {
	return func(bool) ([]byte, error) {
		b, err := smallfile.Read(path, MaxPEMFileSize)
		if err != nil {
			return nil, fmt.Errorf("keys: reading passphrase file: %w", err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		return b, nil
	}
}

// PublicKey is a verification key with its algorithm and key ID.
type PublicKey struct {
	alg Algorithm
	key crypto.PublicKey
	id  string
}

// NewPublicKey wraps a crypto public key (ed25519.PublicKey, *ecdsa.PublicKey on P-256 or
// *rsa.PublicKey of at least MinRSABits).
func NewPublicKey(pub crypto.PublicKey) (*PublicKey, error) {
	var alg Algorithm
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: ed25519 key of %d bytes", ErrUnsupportedAlgorithm, len(k))
		}
		alg = Ed25519
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ECDSA curve %s (only P-256)", ErrUnsupportedAlgorithm, k.Curve.Params().Name)
		}
		alg = ECDSAP256
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits (minimum %d)", ErrUnsupportedAlgorithm, k.N.BitLen(), MinRSABits)
		}
		alg = RSA
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedAlgorithm, pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("keys: encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &PublicKey{alg: alg, key: pub, id: hex.EncodeToString(sum[:])}, nil
}

// Algorithm returns the key's algorithm.
func (p *PublicKey) Algorithm() Algorithm { return p.alg }

// ID returns the key ID: hex SHA-256 of the PKIX DER encoding.
func (p *PublicKey) ID() string { return p.id }

// CryptoPublicKey returns the underlying key (for go-tuf's metadata.KeyFromPublicKey).
func (p *PublicKey) CryptoPublicKey() crypto.PublicKey { return p.key }

// Equal reports whether two keys are the same key.
func (p *PublicKey) Equal(o *PublicKey) bool { return o != nil && p.id == o.id }

// MarshalPEM returns the PKIX "PUBLIC KEY" PEM encoding.
func (p *PublicKey) MarshalPEM() ([]byte, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(p.key)
	if err != nil {
		return nil, fmt.Errorf("keys: encoding public key: %w", err)
	}
	return b, nil
}

// Save writes the public key as PEM (mode 0644, atomically).
func (p *PublicKey) Save(path string) error {
	b, err := p.MarshalPEM()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// ParsePublicKeyPEM parses a PEM public key ("PUBLIC KEY" or "RSA PUBLIC KEY").
func ParsePublicKeyPEM(data []byte) (*PublicKey, error) {
	if blk, _ := pem.Decode(data); blk == nil {
		return nil, ErrNotPEM
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: parsing public key: %w", err)
	}
	return NewPublicKey(pub)
}

// LoadPublicKey reads a PEM public key file.
func LoadPublicKey(path string) (*PublicKey, error) {
	b, err := smallfile.Read(path, MaxPEMFileSize)
	if err != nil {
		return nil, fmt.Errorf("keys: reading public key: %w", err)
	}
	p, err := ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// PrivateKey is a signing key held in memory.
type PrivateKey struct {
	key crypto.Signer
	pub *PublicKey
}

// Generate makes a new key of the given algorithm ("" means DefaultAlgorithm).
func Generate(alg Algorithm) (*PrivateKey, error) {
	if alg == "" {
		alg = DefaultAlgorithm
	}
	var priv crypto.Signer
	var err error
	switch alg {
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA:
		priv, err = rsa.GenerateKey(rand.Reader, RSABits)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generating %s key: %w", alg, err)
	}
	return NewPrivateKey(priv)
}

// NewPrivateKey wraps an ed25519.PrivateKey, *ecdsa.PrivateKey (P-256) or *rsa.PrivateKey.
func NewPrivateKey(priv crypto.PrivateKey) (*PrivateKey, error) {
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedAlgorithm, priv)
	}
	switch s.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedAlgorithm, priv)
	}
	pub, err := NewPublicKey(s.Public())
	if err != nil {
		return nil, err
	}
	return &PrivateKey{key: s, pub: pub}, nil
}

// Public returns the public half.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// Algorithm returns the key's algorithm.
func (k *PrivateKey) Algorithm() Algorithm { return k.pub.alg }

// ID returns the key ID of the public half.
func (k *PrivateKey) ID() string { return k.pub.id }

// CryptoSigner returns the underlying crypto.Signer.
func (k *PrivateKey) CryptoSigner() crypto.Signer { return k.key }

// SigstoreSigner returns a sigstore signer for the key with the scheme of the package doc
// (RSA as PSS/SHA-256). It is what go-tuf's Metadata.Sign takes.
func (k *PrivateKey) SigstoreSigner() (signature.SignerVerifier, error) {
	var sv signature.SignerVerifier
	var err error
	switch priv := k.key.(type) {
	case ed25519.PrivateKey:
		sv, err = signature.LoadED25519SignerVerifier(priv)
	case *ecdsa.PrivateKey:
		sv, err = signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	case *rsa.PrivateKey:
		sv, err = signature.LoadRSAPSSSignerVerifier(priv, crypto.SHA256, pssOptions())
	default:
		err = fmt.Errorf("%w: %T", ErrUnsupportedAlgorithm, k.key)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: loading signer: %w", err)
	}
	return sv, nil
}

// MarshalPEM encrypts the key with the passphrase from pass and PEM-encodes it. An empty or
// missing passphrase is refused with ErrNoPassphrase: private keys are never written in
// the clear.
func (k *PrivateKey) MarshalPEM(pass PassFunc) ([]byte, error) {
	if pass == nil {
		return nil, ErrNoPassphrase
	}
	pw, err := pass(true)
	if err != nil {
		return nil, fmt.Errorf("keys: reading passphrase: %w", err)
	}
	if len(pw) == 0 {
		return nil, ErrNoPassphrase
	}
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(k.key, StaticPassphrase(pw))
	if err != nil {
		return nil, fmt.Errorf("keys: encrypting private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), Bytes: der}), nil
}

// Save writes the encrypted private key (mode 0600, atomically).
func (k *PrivateKey) Save(path string, pass PassFunc) error {
	b, err := k.MarshalPEM(pass)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o600)
}

// ParsePrivateKeyPEM parses a PEM private key, decrypting it with the passphrase from pass
// when it is encrypted.
func ParsePrivateKeyPEM(data []byte, pass PassFunc) (*PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, ErrNotPEM
	}
	if strings.Contains(blk.Headers["Proc-Type"], "ENCRYPTED") {
		// RFC 1423 encryption is unauthenticated (padding oracles); re-encrypt such keys.
		return nil, fmt.Errorf("%w: legacy PEM encryption (Proc-Type) is refused; convert with openssl pkcs8 -topk8", ErrUnsupportedAlgorithm)
	}
	encrypted := blk.Type == string(cryptoutils.EncryptedSigstorePrivateKeyPEMType) ||
		blk.Type == "ENCRYPTED COSIGN PRIVATE KEY" || blk.Type == "ENCRYPTED PRIVATE KEY"
	var pf PassFunc
	if encrypted {
		if pass == nil {
			return nil, ErrNoPassphrase
		}
		pw, err := pass(false)
		if err != nil {
			return nil, fmt.Errorf("keys: reading passphrase: %w", err)
		}
		if len(pw) == 0 {
			return nil, ErrNoPassphrase
		}
		pf = StaticPassphrase(pw)
	}
	priv, err := unmarshalPrivateKey(data, pf)
	if err != nil {
		if encrypted {
			return nil, fmt.Errorf("%w: %v", ErrBadPassphrase, err)
		}
		return nil, fmt.Errorf("keys: parsing private key: %w", err)
	}
	return NewPrivateKey(priv)
}

// LoadPrivateKey reads and decrypts a PEM private key file.
func LoadPrivateKey(path string, pass PassFunc) (*PrivateKey, error) {
	b, err := smallfile.Read(path, MaxPEMFileSize)
	if err != nil {
		return nil, fmt.Errorf("keys: reading private key: %w", err)
	}
	k, err := ParsePrivateKeyPEM(b, pass)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// unmarshalPrivateKey calls cryptoutils, turning a panic into an error: the PKCS#8
// decryption it uses (youmark/pkcs8) panics on a malformed IV (found by FuzzParseKeyPEM,
// seed testdata/fuzz/FuzzParseKeyPEM/882df852a67fd6d6).
func unmarshalPrivateKey(data []byte, pf PassFunc) (priv crypto.PrivateKey, err error) {
	defer func() {
		if r := recover(); r != nil {
			priv, err = nil, fmt.Errorf("malformed private key: %v", r)
		}
	}()
	return cryptoutils.UnmarshalPEMToPrivateKey(data, pf)
}

func pssOptions() *rsa.PSSOptions {
	return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
}

// sigstoreSignOpts passes the context through to signers that use it (KMS).
func sigstoreSignOpts(ctx context.Context) []signature.SignOption {
	return []signature.SignOption{options.WithContext(ctx)}
}
