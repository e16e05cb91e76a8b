package repo

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Errors callers branch on.
var (
	// ErrThreshold: metadata lacks enough valid signatures from a role's keys.
	ErrThreshold = errors.New("repo: not enough valid signatures")
	// ErrVersion: metadata does not have the version the chain requires.
	ErrVersion = errors.New("repo: wrong metadata version")
	// ErrExpired: metadata is expired at the reference time.
	ErrExpired = errors.New("repo: metadata expired")
	// ErrNotPinned: the targets metadata does not pin the payload.
	ErrNotPinned = errors.New("repo: payload not pinned by targets metadata")
	// ErrInvalid: metadata or an argument is malformed.
	ErrInvalid = errors.New("repo: invalid")
)

// RoleKeys assigns public keys and a threshold to one top-level role.
type RoleKeys struct {
	Keys      []crypto.PublicKey
	Threshold int
}

// NewRoot returns version 1 of a root, unsigned, with consistent snapshots and the given
// keys for each of the four top-level roles.
func NewRoot(roles map[string]RoleKeys, expires time.Time) (*metadata.Metadata[metadata.RootType], error) {
	root := metadata.Root(expires.UTC().Truncate(time.Second))
	root.Signed.ConsistentSnapshot = true
	for _, role := range tuf.Roles {
		rk, ok := roles[role]
		if !ok || len(rk.Keys) == 0 {
			return nil, fmt.Errorf("%w: no keys for role %s", ErrInvalid, role)
		}
		for _, pub := range rk.Keys {
			k, err := tuf.Key(pub)
			if err != nil {
				return nil, err
			}
			if err := root.Signed.AddKey(k, role); err != nil {
				return nil, fmt.Errorf("repo: adding %s key: %w", role, err)
			}
		}
		if err := setThreshold(root, role, rk.Threshold); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func setThreshold(root *metadata.Metadata[metadata.RootType], role string, threshold int) error {
	r := root.Signed.Roles[role]
	if threshold < 1 || threshold > len(r.KeyIDs) {
		return fmt.Errorf("%w: threshold %d for role %s with %d keys", ErrInvalid, threshold, role, len(r.KeyIDs))
	}
	r.Threshold = threshold
	return nil
}

// RootChange describes the next root relative to the current one.
type RootChange struct {
	Add        map[string][]crypto.PublicKey // role → keys to add
	Revoke     map[string][]string           // role → key IDs to remove
	Thresholds map[string]int                // role → new threshold (0: unchanged)
	Expires    time.Time
}

// NextRoot returns the unsigned successor of prev (version+1) with the change applied.
// Every role keeps at least as many keys as its threshold.
func NextRoot(prev *metadata.Metadata[metadata.RootType], ch RootChange) (*metadata.Metadata[metadata.RootType], error) {
	data, err := prev.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("repo: copying root: %w", err)
	}
	next, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("repo: copying root: %w", err)
	}
	next.ClearSignatures()
	next.Signed.Version = prev.Signed.Version + 1
	next.Signed.Expires = ch.Expires.UTC().Truncate(time.Second)
	for role, ids := range ch.Revoke {
		if _, ok := next.Signed.Roles[role]; !ok {
			return nil, fmt.Errorf("%w: unknown role %q", ErrInvalid, role)
		}
		for _, id := range ids {
			if err := next.Signed.RevokeKey(id, role); err != nil {
				return nil, fmt.Errorf("%w: revoking %s key %s: %v", ErrInvalid, role, id, err)
			}
		}
	}
	for role, keys := range ch.Add {
		if _, ok := next.Signed.Roles[role]; !ok {
			return nil, fmt.Errorf("%w: unknown role %q", ErrInvalid, role)
		}
		for _, pub := range keys {
			k, err := tuf.Key(pub)
			if err != nil {
				return nil, err
			}
			if err := next.Signed.AddKey(k, role); err != nil {
				return nil, fmt.Errorf("repo: adding %s key: %w", role, err)
			}
		}
	}
	for _, role := range tuf.Roles {
		t := next.Signed.Roles[role].Threshold
		if n, ok := ch.Thresholds[role]; ok && n != 0 {
			t = n
		}
		if err := setThreshold(next, role, t); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// SignRoot adds signatures to a root. prev is the root before it (nil for version 1). Each
// signer must hold a root key of prev or of root, and must not have signed already.
func SignRoot(prev, root *metadata.Metadata[metadata.RootType], signers ...signature.Signer) error {
	for _, s := range signers {
		id, err := tuf.SignerKeyID(s)
		if err != nil {
			return err
		}
		inNew := slices.Contains(root.Signed.Roles[tuf.RoleRoot].KeyIDs, id)
		inOld := prev != nil && slices.Contains(prev.Signed.Roles[tuf.RoleRoot].KeyIDs, id)
		if !inNew && !inOld {
			return fmt.Errorf("%w: key %s is not a root key of version %d or its predecessor", ErrInvalid, id, root.Signed.Version)
		}
		if slices.ContainsFunc(root.Signatures, func(sig metadata.Signature) bool { return sig.KeyID == id }) {
			return fmt.Errorf("%w: key %s has already signed", ErrInvalid, id)
		}
		if _, err := root.Sign(s); err != nil {
			return fmt.Errorf("repo: signing root: %w", err)
		}
	}
	return nil
}

// VerifyRootUpdate checks next the way a TUF client does when it walks from prev to next:
// version exactly prev+1, signed by the threshold of prev's root keys and by the threshold
// of next's own root keys. prev nil means next must be a self-signed version 1. Expiry is
// not checked: clients accept expired intermediate roots.
func VerifyRootUpdate(prev, next *metadata.Metadata[metadata.RootType]) error {
	want := int64(1)
	if prev != nil {
		want = prev.Signed.Version + 1
	}
	if next.Signed.Version != want {
		return fmt.Errorf("%w: root version %d, want %d", ErrVersion, next.Signed.Version, want)
	}
	if !next.Signed.ConsistentSnapshot {
		return fmt.Errorf("%w: root without consistent snapshots", ErrInvalid)
	}
	if prev != nil {
		if err := prev.VerifyDelegate(tuf.RoleRoot, next); err != nil {
			return fmt.Errorf("%w: root %d by the keys of root %d: %v", ErrThreshold, next.Signed.Version, prev.Signed.Version, err)
		}
	}
	if err := next.VerifyDelegate(tuf.RoleRoot, next); err != nil {
		return fmt.Errorf("%w: root %d by its own keys: %v", ErrThreshold, next.Signed.Version, err)
	}
	return nil
}

// RootMissing reports, for a root still being signed, how many more valid signatures each
// side needs: from prev's root keys and from its own. Both zero means it is complete.
func RootMissing(prev, root *metadata.Metadata[metadata.RootType]) (fromOld, fromNew int) {
	count := func(delegator *metadata.Metadata[metadata.RootType]) int {
		role := delegator.Signed.Roles[tuf.RoleRoot]
		have := 0
		for _, id := range role.KeyIDs {
			if verifiedBy(delegator, id, root) {
				have++
			}
		}
		return max(role.Threshold-have, 0)
	}
	if prev != nil {
		fromOld = count(prev)
	}
	return fromOld, count(root)
}

// verifiedBy tells whether key id of delegator validly signed root, by asking go-tuf to
// verify a copy that carries only that signature against a threshold of one.
func verifiedBy(delegator *metadata.Metadata[metadata.RootType], id string, root *metadata.Metadata[metadata.RootType]) bool {
	key, ok := delegator.Signed.Keys[id]
	if !ok {
		return false
	}
	for _, sig := range root.Signatures {
		if sig.KeyID != id {
			continue
		}
		probe := metadata.Root(root.Signed.Expires)
		probe.Signed.Keys = map[string]*metadata.Key{id: key}
		probe.Signed.Roles[tuf.RoleRoot] = &metadata.Role{KeyIDs: []string{id}, Threshold: 1}
		one := *root
		one.Signatures = []metadata.Signature{sig}
		return probe.VerifyDelegate(tuf.RoleRoot, &one) == nil
	}
	return false
}

// SignTargets sets the version and expiry of targets, replaces its signatures with the
// given signers' and checks the result against root's targets role.
func SignTargets(root *metadata.Metadata[metadata.RootType], targets *metadata.Metadata[metadata.TargetsType], version int64, expires time.Time, signers ...signature.Signer) error {
	if version < 1 {
		return fmt.Errorf("%w: targets version %d", ErrVersion, version)
	}
	targets.Signed.Version = version
	targets.Signed.Expires = expires.UTC().Truncate(time.Second)
	targets.ClearSignatures()
	for _, s := range signers {
		if _, err := targets.Sign(s); err != nil {
			return fmt.Errorf("repo: signing targets: %w", err)
		}
	}
	if err := root.VerifyDelegate(tuf.RoleTargets, targets); err != nil {
		return fmt.Errorf("%w: targets by the keys of root %d: %v", ErrThreshold, root.Signed.Version, err)
	}
	return nil
}
