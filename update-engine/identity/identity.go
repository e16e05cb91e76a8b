// Package identity is update-engine's host key: an Ed25519 key made on first start and kept
// in the state directory, with which the host signs every Omaha request (package
// omaha/hostsig has the wire format). omaha-server pins the key to the host's machine id,
// so reports signed with it count as the host's own and reports anyone else sends for that
// machine id do not (see package omaha-server/hostauth).
//
// On disk, in the state directory:
//
//	host-key       PEM "PRIVATE KEY" (PKCS #8), mode 0600
//	host-key.pub   the public key as an operator enrolls it (base64, one line), mode 0644
//
// The private key is written once, with atomicfile's CommitNew: a temporary file that is
// fsynced and then hard-linked into place (link fails when the name exists, so two
// processes starting together end up with one key, not each with its own), followed by an
// fsync of the directory. A key file that exists but does not parse, or that others may read, is an
// error: making a new key would silently change the host's identity and, with the server
// pinning the old one, make its reports count for nothing.
//
// Only cmd/update-engine imports it.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/omaha/hostsig"
)

// File names in the state directory.
const (
	KeyFile       = "host-key"
	PublicKeyFile = "host-key.pub"
)

// maxKeyFileBytes bounds the read of the key file (a PEM Ed25519 key is 119 bytes).
const maxKeyFileBytes = 4 << 10

// Identity is a host key.
type Identity struct {
	key ed25519.PrivateKey
	now func() time.Time
}

// LoadOrCreate reads the host key from dir, creating it (and dir) on first start. now is
// the clock signatures are dated with (time.Now when nil).
func LoadOrCreate(dir string, now func() time.Time) (*Identity, error) {
	if now == nil {
		now = time.Now
	}
	path := filepath.Join(dir, KeyFile)
	key, err := load(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		if err := create(path); err != nil {
			return nil, err
		}
		key, err = load(path)
	}
	if err != nil {
		return nil, err
	}
	id := &Identity{key: key, now: now}
	pub := []byte(id.PublicKeyString() + "\n")
	if old, err := smallfile.Read(filepath.Join(dir, PublicKeyFile), maxKeyFileBytes); err != nil || string(old) != string(pub) {
		if err := atomicfile.WriteFile(filepath.Join(dir, PublicKeyFile), pub, 0o644); err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
	}
	return id, nil
}

func load(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity: %s may be read by others (mode %04o): want 0600", path, fi.Mode().Perm())
	}
	data, err := smallfile.ReadFrom(f, maxKeyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: %s holds no PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: %s holds a %T, not an Ed25519 key", path, k)
	}
	return key, nil
}

// create writes a new key to path unless a key appeared there first.
func create(path string) error {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("identity: generating the host key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("identity: writing the host key: %w", err)
	}
	err = f.CommitNew()
	if errors.Is(err, fs.ErrExist) {
		return nil // another process made the key first: use that one
	}
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}

// PublicKey is the host's public key.
func (id *Identity) PublicKey() ed25519.PublicKey { return id.key.Public().(ed25519.PublicKey) }

// PublicKeyString is the public key as `syctl host enroll` takes it.
func (id *Identity) PublicKeyString() string { return hostsig.FormatPublicKey(id.PublicKey()) }

// SignRequest signs an Omaha request whose body is body (omahaclient.Signer).
func (id *Identity) SignRequest(req *http.Request, body []byte) error {
	return hostsig.Sign(req, body, id.key, id.now())
}
