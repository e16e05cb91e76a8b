package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ParseRoot parses root metadata of at most tuf.MaxRootSize bytes.
func ParseRoot(data []byte) (*metadata.Metadata[metadata.RootType], error) {
	if len(data) > tuf.MaxRootSize {
		return nil, fmt.Errorf("%w: root metadata of %d bytes", ErrInvalid, len(data))
	}
	root, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%w: root metadata: %v", ErrInvalid, err)
	}
	return root, nil
}

// ParseTargets parses targets metadata of at most tuf.MaxTargetsSize bytes and checks that
// every target follows the repository's rules (see [CheckTarget]).
func ParseTargets(data []byte) (*metadata.Metadata[metadata.TargetsType], error) {
	if len(data) > tuf.MaxTargetsSize {
		return nil, fmt.Errorf("%w: targets metadata of %d bytes", ErrInvalid, len(data))
	}
	targets, err := metadata.Targets().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%w: targets metadata: %v", ErrInvalid, err)
	}
	if targets.Signed.Delegations != nil {
		return nil, fmt.Errorf("%w: targets metadata with delegations", ErrInvalid)
	}
	for name, tf := range targets.Signed.Targets {
		if err := CheckTarget(name, tf); err != nil {
			return nil, err
		}
	}
	return targets, nil
}

var targetNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*(/[A-Za-z0-9_][A-Za-z0-9._+-]*)*$`)

// MaxTargetName bounds target names.
const MaxTargetName = 255

// CheckTargetName accepts slash-separated names of simple segments (letters, digits, '.',
// '_', '+', '-', not starting with '.', '+' or '-'), at most MaxTargetName bytes: names
// that map to a URL path and a file name without escaping.
func CheckTargetName(name string) error {
	if len(name) > MaxTargetName || !targetNameRE.MatchString(name) {
		return fmt.Errorf("%w: target name %q", ErrInvalid, name)
	}
	return nil
}

// CheckTarget checks one target entry: a good name, a length, exactly one hash (sha256, 32
// bytes), and custom fields that parse as tuf.Custom when present.
func CheckTarget(name string, tf *metadata.TargetFiles) error {
	if err := CheckTargetName(name); err != nil {
		return err
	}
	if tf.Length < 0 {
		return fmt.Errorf("%w: target %s: negative length", ErrInvalid, name)
	}
	if len(tf.Hashes) != 1 || len(tf.Hashes["sha256"]) != sha256.Size {
		return fmt.Errorf("%w: target %s: must list exactly one sha256 hash", ErrInvalid, name)
	}
	if tf.Custom != nil {
		if _, err := tuf.ParseCustom(*tf.Custom); err != nil {
			return fmt.Errorf("repo: target %s: %w", name, err)
		}
	}
	return nil
}

// VerifyTargets parses uploaded targets metadata and checks it the way a client will:
// signed by the threshold of root's targets role, not expired at now, and a version above
// current (the version the server now serves; 0 when there is none). When current equals
// the uploaded version and currentData is byte-for-byte the same upload, it is accepted as
// a repeat of the same release.
func VerifyTargets(root *metadata.Metadata[metadata.RootType], data []byte, current int64, currentData []byte, now time.Time) (*metadata.Metadata[metadata.TargetsType], error) {
	targets, err := ParseTargets(data)
	if err != nil {
		return nil, err
	}
	if err := root.VerifyDelegate(tuf.RoleTargets, targets); err != nil {
		return nil, fmt.Errorf("%w: targets by the keys of root %d: %v", ErrThreshold, root.Signed.Version, err)
	}
	if targets.Signed.IsExpired(now) {
		return nil, fmt.Errorf("%w: targets version %d expired at %s", ErrExpired, targets.Signed.Version, targets.Signed.Expires.Format(time.RFC3339))
	}
	v := targets.Signed.Version
	if v < current || (v == current && !bytes.Equal(data, currentData)) {
		return nil, fmt.Errorf("%w: targets version %d is not newer than the served version %d", ErrVersion, v, current)
	}
	return targets, nil
}

// Payload identifies an uploaded payload file.
type Payload struct {
	Length  int64
	SHA256  [sha256.Size]byte
	Version string // the version the release claims; "" skips the check
}

// FindPayload returns the name and entry of the target in targets that pins p: same length,
// same SHA-256 and, when p.Version is set, a custom version equal to it. ErrNotPinned when
// there is none.
func FindPayload(targets *metadata.Metadata[metadata.TargetsType], p Payload) (string, *metadata.TargetFiles, error) {
	var found []string
	for name, tf := range targets.Signed.Targets {
		if tf.Length != p.Length || !bytes.Equal(tf.Hashes["sha256"], p.SHA256[:]) {
			continue
		}
		if p.Version != "" {
			if tf.Custom == nil {
				continue
			}
			c, err := tuf.ParseCustom(*tf.Custom)
			if err != nil || c.Version != p.Version {
				continue
			}
		}
		found = append(found, name)
	}
	if len(found) == 0 {
		return "", nil, fmt.Errorf("%w: length %d sha256 %s version %q", ErrNotPinned, p.Length, hex.EncodeToString(p.SHA256[:]), p.Version)
	}
	// Several names may pin the same bytes; pick one deterministically.
	name := found[0]
	for _, n := range found[1:] {
		if strings.Compare(n, name) < 0 {
			name = n
		}
	}
	return name, targets.Signed.Targets[name], nil
}
