package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/signing/keys"
)

// tufFlags turn on the TUF repository under /tuf/.
type tufFlags struct {
	root            string
	keys            stringList
	passphraseFile  string
	dir             string
	snapshotExpiry  time.Duration
	timestampExpiry time.Duration
	resignEvery     time.Duration
}

func (t *tufFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.root, "tuf-root", "", "initial TUF root (1.root.json from syctl keys init); with --tuf-key, serve the TUF repository under /tuf/")
	fs.Var(&t.keys, "tuf-key", "online TUF key file (snapshot.key, timestamp.key); repeatable")
	fs.StringVar(&t.passphraseFile, "tuf-passphrase-file", "", "file holding the passphrase of encrypted --tuf-key files")
	fs.StringVar(&t.dir, "tuf-dir", "", "TUF metadata directory (default DATA-DIR/tuf)")
	fs.DurationVar(&t.snapshotExpiry, "tuf-snapshot-expiry", 0, "validity of signed snapshot metadata (default 7 days)")
	fs.DurationVar(&t.timestampExpiry, "tuf-timestamp-expiry", 0, "validity of signed timestamp metadata (default 1 day)")
	fs.DurationVar(&t.resignEvery, "tuf-resign-interval", time.Minute, "how often to check whether snapshot and timestamp need re-signing")
}

func (t *tufFlags) enabled() bool { return len(t.keys) > 0 || t.root != "" }

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) Type() string       { return "file" }
func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// config loads the online keys and the initial root; the server opens the repository.
func (t tufFlags) config(dataDir string) (*tufhost.Config, error) {
	if len(t.keys) == 0 {
		return nil, fmt.Errorf("%w: --tuf-root needs the online keys (--tuf-key snapshot.key --tuf-key timestamp.key)", errUsage)
	}
	var pass keys.PassFunc
	if t.passphraseFile != "" {
		pass = keys.PassphraseFile(t.passphraseFile)
	}
	var signers []signature.Signer
	for _, path := range t.keys {
		k, err := keys.LoadPrivateKey(path, pass)
		if err != nil {
			return nil, fmt.Errorf("loading TUF key %s: %w", path, err)
		}
		s, err := k.SigstoreSigner()
		if err != nil {
			return nil, fmt.Errorf("TUF key %s: %w", path, err)
		}
		signers = append(signers, s)
	}
	var root []byte
	if t.root != "" {
		b, err := os.ReadFile(t.root)
		if err != nil {
			return nil, fmt.Errorf("reading --tuf-root: %w", err)
		}
		root = b
	}
	dir := t.dir
	if dir == "" {
		dir = filepath.Join(dataDir, "tuf")
	}
	return &tufhost.Config{
		Dir: dir, Keys: signers, InitialRoot: root,
		SnapshotExpiry: t.snapshotExpiry, TimestampExpiry: t.timestampExpiry,
	}, nil
}
