package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"golang.org/x/term"
)

const keysInitLong = `Generates the TUF role keys and the payload key, each as DIR/<role>.key (private, PEM,
encrypted) and DIR/<role>.pub (public, PEM), and DIR/1.root.json signed by the root keys.
With --root-keys M > 1 the root keys are DIR/root-1.key ... DIR/root-M.key.

Keep root-*.key, targets.key and payload.key offline. snapshot.key and timestamp.key go to
the server (omaha-server), which signs those roles online.

The passphrase protecting the private keys comes from --passphrase-file, else from the
environment variable SYCTL_PASSPHRASE, else from a prompt when stdin is a terminal.`

// keyRoles are the key files keys init writes, in order; root is handled apart.
var keyRoles = []string{tuf.RoleTargets, tuf.RoleSnapshot, tuf.RoleTimestamp, "payload"}

// newKeysCmd is `syctl keys …`.
func newKeysCmd() *cobra.Command {
	return group(&cobra.Command{Use: "keys COMMAND", Short: "generate the TUF role keys and the payload key"}, "keys: no subcommand (init)",
		newKeysInitCmd())
}

// passFlags are the flags that say where a passphrase comes from.
type passFlags struct {
	file     string
	insecure bool
}

func (p *passFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.file, "passphrase-file", "", "read the private-key passphrase from this file")
	fs.BoolVar(&p.insecure, "insecure-no-passphrase", false, "INSECURE, for tests and demos only: private keys in the clear")
}

// passFunc returns the passphrase source: the file, SYCTL_PASSPHRASE, or a terminal prompt.
// With --insecure-no-passphrase it returns nil (new keys are written unencrypted).
func (p *passFlags) passFunc(stderr io.Writer) (keys.PassFunc, error) {
	if p.insecure {
		if p.file != "" {
			return nil, fmt.Errorf("%w: --insecure-no-passphrase and --passphrase-file together", errUsage)
		}
		return nil, nil
	}
	if p.file != "" {
		return keys.PassphraseFile(p.file), nil
	}
	if env, ok := os.LookupEnv(passEnv); ok {
		if env == "" {
			return nil, errors.New("SYCTL_PASSPHRASE is set but empty")
		}
		return keys.StaticPassphrase([]byte(env)), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, errors.New("no passphrase: give --passphrase-file or SYCTL_PASSPHRASE (stdin is not a terminal)")
	}
	return func(confirm bool) ([]byte, error) {
		fmt.Fprint(stderr, "Passphrase: ")
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("reading passphrase: %w", err)
		}
		if confirm {
			fmt.Fprint(stderr, "Passphrase again: ")
			again, err := term.ReadPassword(fd)
			fmt.Fprintln(stderr)
			if err != nil {
				return nil, fmt.Errorf("reading passphrase: %w", err)
			}
			if string(again) != string(pw) {
				return nil, errors.New("the passphrases differ")
			}
		}
		if len(pw) == 0 {
			return nil, keys.ErrNoPassphrase
		}
		return pw, nil
	}, nil
}

// warnInsecure prints the warning --insecure-no-passphrase deserves.
func warnInsecure(stderr io.Writer) {
	fmt.Fprintln(stderr, "WARNING: --insecure-no-passphrase: private keys are stored UNENCRYPTED. Anyone who reads them can sign updates for your whole fleet. Use this for tests and demos only.")
}

// passOnce asks the source once and reuses the answer, so a prompt is not repeated for
// every key file.
func passOnce(pass keys.PassFunc) keys.PassFunc {
	var got []byte
	return func(confirm bool) ([]byte, error) {
		if got != nil {
			return got, nil
		}
		pw, err := pass(confirm)
		if err != nil {
			return nil, err
		}
		got = pw
		return pw, nil
	}
}

// writeKeyPair writes DIR/name.key and DIR/name.pub; pass nil writes the private key in
// the clear. Existing files are never overwritten.
func writeKeyPair(dir, name string, k *keys.PrivateKey, pass keys.PassFunc) error {
	priv, pubPath := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	for _, p := range []string{priv, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists; refusing to overwrite a key", p)
		}
	}
	if pass == nil {
		pem, err := cryptoutils.MarshalPrivateKeyToPEM(k.CryptoSigner())
		if err != nil {
			return fmt.Errorf("encoding %s: %w", priv, err)
		}
		if err := atomicfile.WriteFile(priv, pem, 0o600); err != nil {
			return err
		}
	} else if err := k.Save(priv, pass); err != nil {
		return err
	}
	return k.Public().Save(pubPath)
}

func parseAlgorithm(s string) (keys.Algorithm, error) {
	switch s {
	case "ed25519":
		return keys.Ed25519, nil
	case "ecdsa", "ecdsa-p256":
		return keys.ECDSAP256, nil
	case "rsa":
		return keys.RSA, nil
	}
	return "", fmt.Errorf("%w: key type %q (ed25519, ecdsa or rsa)", errUsage, s)
}

// parseValidity reads a validity period: a Go duration ("2160h") or a number of days ("90d").
func parseValidity(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int64
		days, err = strconv.ParseInt(n, 10, 32)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: validity %q (e.g. 90d or 2160h)", errUsage, s)
	}
	return d, nil
}

type validityFlag struct{ d time.Duration }

func (v *validityFlag) String() string { return v.d.String() }
func (v *validityFlag) Type() string   { return "duration" }
func (v *validityFlag) Set(s string) (err error) {
	v.d, err = parseValidity(s)
	return err
}

// newKeysInitCmd is `syctl keys init`.
func newKeysInitCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "generate the TUF role keys, the payload key and the first root",
		Long:  keysInitLong,
		Args:  cobra.ArbitraryArgs,
	}
	fs := c.Flags()
	dir := fs.String("dir", "", "directory for the keys and 1.root.json (created)")
	threshold := fs.Int("root-threshold", 1, "root signatures required")
	nRoot := fs.Int("root-keys", 1, "number of root keys")
	typ := fs.String("type", "ed25519", "key type: ed25519, ecdsa (P-256) or rsa (3072, PSS)")
	expires := validityFlag{tuf.DefaultRootExpiry}
	fs.Var(&expires, "root-expires", "root validity (e.g. 365d)")
	var pf passFlags
	pf.register(fs)
	c.RunE = usage.Run(func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if *dir == "" || len(args) != 0 {
			return fmt.Errorf("%w: keys init needs --dir and no arguments", errUsage)
		}
		return keysInit(ctx, stdout, stderr, *dir, *threshold, *nRoot, *typ, expires.d, &pf)
	})
	return c
}

// keysInit writes the keys and 1.root.json into dir.
func keysInit(ctx context.Context, stdout, stderr io.Writer, dir string, threshold, nRoot int, typ string,
	expires time.Duration, pf *passFlags) error {
	if nRoot < 1 || threshold < 1 || threshold > nRoot {
		return fmt.Errorf("%w: --root-threshold %d of --root-keys %d", errUsage, threshold, nRoot)
	}
	alg, err := parseAlgorithm(typ)
	if err != nil {
		return err
	}
	pass, err := pf.passFunc(stderr)
	if err != nil {
		return err
	}
	if pass == nil {
		warnInsecure(stderr)
	} else {
		pass = passOnce(pass)
	}
	rootPath := filepath.Join(dir, "1.root.json")
	if _, err := os.Stat(rootPath); err == nil {
		return fmt.Errorf("%s exists; refusing to overwrite", rootPath)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	roles := map[string]repo.RoleKeys{}
	var rootSS []*keys.PrivateKey
	gen := func(name string) (*keys.PrivateKey, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, err := keys.Generate(alg)
		if err != nil {
			return nil, err
		}
		if err := writeKeyPair(dir, name, k, pass); err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "%s\t%s\n", name, filepath.Join(dir, name+".key"))
		return k, nil
	}
	for i := 1; i <= nRoot; i++ {
		name := tuf.RoleRoot
		if nRoot > 1 {
			name = fmt.Sprintf("root-%d", i)
		}
		k, err := gen(name)
		if err != nil {
			return err
		}
		rootSS = append(rootSS, k)
	}
	rk := repo.RoleKeys{Threshold: threshold}
	for _, k := range rootSS {
		rk.Keys = append(rk.Keys, k.Public().CryptoPublicKey())
	}
	roles[tuf.RoleRoot] = rk
	for _, role := range keyRoles {
		k, err := gen(role)
		if err != nil {
			return err
		}
		if role != "payload" {
			roles[role] = repo.RoleKeys{Keys: []crypto.PublicKey{k.Public().CryptoPublicKey()}, Threshold: 1}
		}
	}
	root, err := repo.NewRoot(roles, tuf.Expiry(time.Now(), expires))
	if err != nil {
		return err
	}
	for _, k := range rootSS {
		s, err := k.SigstoreSigner()
		if err != nil {
			return err
		}
		if err := repo.SignRoot(nil, root, s); err != nil {
			return err
		}
	}
	if err := repo.VerifyRootUpdate(nil, root); err != nil {
		return err
	}
	data, err := root.ToBytes(true)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(rootPath, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "root\t%s (version 1, %d-of-%d root keys, expires %s)\n", rootPath, threshold, nRoot, root.Signed.Expires.Format(time.RFC3339))
	fmt.Fprintln(stdout, "keep the root, targets and payload keys offline; give snapshot.key and timestamp.key to omaha-server")
	return nil
}
