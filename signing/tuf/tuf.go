// Package tuf holds what the three parties of Switchyard's TUF repository share: the release
// engineer's offline tools (package repo), the server that hosts the repository and re-signs
// its online roles (omaha-server/tufhost), and the hosts that read it (package client).
//
// The repository is plain TUF 1.0 as implemented by github.com/theupdateframework/go-tuf/v2,
// with these rules on top, all of which this package enforces:
//
//   - Four top-level roles. root and targets are signed offline by the release engineer;
//     snapshot and timestamp are signed online by the server. Delegations are not used.
//   - Consistent snapshots: N.root.json for every root version, timestamp.json,
//     V.snapshot.json, V.targets.json, and targets published as targets/<dir>/<sha256>.<base>.
//     Targets list only a sha256 hash, so every implementation asks for the same file name.
//   - Expiry times are whole seconds in UTC ([Expiry]); python-tuf rejects fractions.
//   - A payload target carries [Custom] fields: strings and integers only, because canonical
//     JSON has no floating point.
//   - Keys are ed25519, ECDSA P-256 (go-tuf labels every ECDSA key nistp256, so P-384 and
//     P-521 keys would be unverifiable elsewhere and are refused, see [Key]) or RSA, which
//     signs TUF metadata with RSASSA-PSS/SHA-256 (signing/keys makes such signers).
//
// The parties write metadata files with internal/atomicfile (temp file, fsync, rename, fsync
// of the directory) and read them with internal/smallfile, bounded by the Max*Size constants.
//
// This package imports nothing of Switchyard's; anything may import it.
package tuf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Top-level role names.
const (
	RoleRoot      = metadata.ROOT
	RoleTargets   = metadata.TARGETS
	RoleSnapshot  = metadata.SNAPSHOT
	RoleTimestamp = metadata.TIMESTAMP
)

// Roles lists the top-level roles in the order they are usually shown.
var Roles = [...]string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp}

// Default validity periods, counted from the moment the metadata is signed.
const (
	DefaultRootExpiry      = 365 * 24 * time.Hour
	DefaultTargetsExpiry   = 90 * 24 * time.Hour
	DefaultSnapshotExpiry  = 7 * 24 * time.Hour
	DefaultTimestampExpiry = 24 * time.Hour
)

// Size limits for metadata files, used both when serving and when fetching. They match
// go-tuf's client defaults.
const (
	MaxRootSize      = 512_000
	MaxTimestampSize = 16_384
	MaxSnapshotSize  = 2_000_000
	MaxTargetsSize   = 5_000_000
)

// ErrKeyType is returned for a key TUF metadata must not be signed with.
var ErrKeyType = errors.New("tuf: unsupported key type")

// Expiry returns now+validity as whole seconds in UTC, the only form of expiry this
// repository writes.
func Expiry(now time.Time, validity time.Duration) time.Time {
	return now.Add(validity).UTC().Truncate(time.Second)
}

// Key returns the TUF key for a public key, refusing the ECDSA curves go-tuf mislabels.
func Key(pub crypto.PublicKey) (*metadata.Key, error) {
	if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: ECDSA curve %s (only P-256 is labelled correctly by go-tuf)", ErrKeyType, k.Curve.Params().Name)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %T", ErrKeyType, pub)
	}
	return k, nil
}

// KeyID returns the TUF key ID of a public key.
func KeyID(pub crypto.PublicKey) (string, error) {
	k, err := Key(pub)
	if err != nil {
		return "", err
	}
	id, err := k.ID()
	if err != nil {
		return "", fmt.Errorf("tuf: key id: %w", err)
	}
	return id, nil
}

// SignerKeyID returns the TUF key ID of a signer's public key.
func SignerKeyID(s signature.Signer) (string, error) {
	pub, err := s.PublicKey()
	if err != nil {
		return "", fmt.Errorf("tuf: signer public key: %w", err)
	}
	return KeyID(pub)
}
