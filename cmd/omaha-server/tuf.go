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
	store           string
	lease           time.Duration
	syncEvery       time.Duration
}

func (t *tufFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.root, "tuf-root", "", "initial TUF root (1.root.json from syctl keys init); with --tuf-key, serve the TUF repository under /tuf/")
	fs.Var(&t.keys, "tuf-key", "online TUF key file (snapshot.key, timestamp.key); repeatable")
	fs.StringVar(&t.passphraseFile, "tuf-passphrase-file", "", "file holding the passphrase of encrypted --tuf-key files")
	fs.StringVar(&t.dir, "tuf-dir", "", "TUF metadata directory (default DATA-DIR/tuf); with --tuf-store db, a repository there is imported once")
	fs.DurationVar(&t.snapshotExpiry, "tuf-snapshot-expiry", 0, "validity of signed snapshot metadata (default 7 days)")
	fs.DurationVar(&t.timestampExpiry, "tuf-timestamp-expiry", 0, "validity of signed timestamp metadata (default 1 day)")
	fs.DurationVar(&t.resignEvery, "tuf-resign-interval", time.Minute, "how often to check whether snapshot and timestamp need re-signing")
	fs.StringVar(&t.store, "tuf-store", "dir", "where the TUF repository lives: dir (--tuf-dir, one server) or db (the database, shared by every replica)")
	fs.DurationVar(&t.lease, "tuf-lease", tufhost.DefaultLeaseDuration, "with --tuf-store db: how long the signing lease lasts unrenewed (a dead signer is replaced within it)")
	fs.DurationVar(&t.syncEvery, "tuf-sync-interval", tufhost.DefaultSyncInterval, "with --tuf-store db: how often at most a replica reads the current timestamp from the database")
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
	if err := t.check(); err != nil {
		return nil, err
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
	cfg := &tufhost.Config{
		Dir: dir, Keys: signers, InitialRoot: root,
		SnapshotExpiry: t.snapshotExpiry, TimestampExpiry: t.timestampExpiry,
	}
	if t.store == "db" {
		// The server keeps the repository in its store; a repository in the directory is
		// copied in once, so that clients keep trusting the versions they have seen.
		cfg.Dir, cfg.ImportDir, cfg.LeaseDuration, cfg.SyncInterval = "", dir, t.lease, t.syncEvery
	}
	return cfg, nil
}

// check refuses contradictory TUF flags.
func (t *tufFlags) check() error {
	switch {
	case t.store != "dir" && t.store != "db":
		return fmt.Errorf("%w: --tuf-store is dir or db, not %q", errUsage, t.store)
	case t.lease <= 0 || t.syncEvery <= 0:
		return fmt.Errorf("%w: --tuf-lease and --tuf-sync-interval must be positive", errUsage)
	}
	return nil
}
