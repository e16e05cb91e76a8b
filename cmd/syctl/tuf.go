package main

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

const tufUsage = `usage: syctl tuf COMMAND --repo DIR [flags]

The offline half of the TUF repository, in a working directory (see docs/tuf.md):

  init           start a working directory from a root (--root KEYS/1.root.json)
  add-target     pin a payload: length, SHA-256 and custom fields, into the staged targets
  remove-target  drop a target from the staged targets
  sign-targets   sign the staged targets as the next version (targets key) into targets.json
  rotate-root    make the next root (add or revoke keys, thresholds), signing it with --key
  sign-root      add signatures to a root rotation in progress
  status         show roots, targets and what is staged
  publish-root   upload a fully signed root to omaha-server (--server, --token, --root FILE)
  server-status  the versions and expiries the server's TUF repository serves now

Private keys are read with the passphrase from --passphrase-file, SYCTL_PASSPHRASE or a
prompt.
`

func runTUF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tuf: no command\n%s", errUsage, tufUsage)
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"init":          runTUFInit,
		"add-target":    runTUFAddTarget,
		"remove-target": runTUFRemoveTarget,
		"sign-targets":  runTUFSignTargets,
		"rotate-root":   runTUFRotateRoot,
		"sign-root":     runTUFSignRoot,
		"status":        runTUFStatus,
		"publish-root":  runTUFPublishRoot,
		"server-status": runTUFServerStatus,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("%w: tuf: unknown command %q\n%s", errUsage, args[0], tufUsage)
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func newTUFFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tuf "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("repo", "", "TUF working directory")
}

func parseTUFFlags(fs *flag.FlagSet, args []string, stdout io.Writer, repoDir *string) error {
	if err := parseLeaf(fs, args, stdout); err != nil {
		return err
	}
	if *repoDir == "" {
		return fmt.Errorf("%w: %s needs --repo", errUsage, fs.Name())
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, fs.Name(), fs.Args())
	}
	return nil
}

func runTUFInit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newTUFFlags("init", stderr)
	rootPath := fs.String("root", "", "the root to start from (keys init wrote DIR/1.root.json)")
	if err := parseTUFFlags(fs, args, stdout, dir); err != nil {
		return err
	}
	if *rootPath == "" {
		return fmt.Errorf("%w: tuf init needs --root", errUsage)
	}
	data, err := smallfile.Read(*rootPath, tuf.MaxRootSize)
	if err != nil {
		return err
	}
	r, err := repo.Init(*dir, data)
	if err != nil {
		return err
	}
	root, _, err := r.Root()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "initialised %s with root version %d\n", *dir, root.Signed.Version)
	return nil
}

func runTUFAddTarget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newTUFFlags("add-target", stderr)
	name := fs.String("name", "", "target name, e.g. amd64-usr/4230.2.0/payload.sy")
	file := fs.String("file", "", "the payload file (length and SHA-256 are computed)")
	length := fs.Int64("length", -1, "payload length, instead of --file")
	sum := fs.String("sha256", "", "payload SHA-256 in hex, instead of --file")
	var c tuf.Custom
	fs.StringVar(&c.Version, "version", "", "OS version (custom field, required)")
	fs.StringVar(&c.Board, "board", "", "board, e.g. amd64-usr (custom field, required)")
	var channels, extra, extraInt stringList
	fs.Var(&channels, "channel", "channel hint (repeatable)")
	fs.Int64Var(&c.ReleaseCounter, "release-counter", 0, "monotonic release counter")
	fs.Int64Var(&c.PartitionSize, "partition-size", 0, "size of the resulting partition image in bytes")
	fs.StringVar(&c.PartitionSHA256, "partition-sha256", "", "SHA-256 of the resulting partition image, hex")
	fs.Var(&extra, "custom", "extra custom string field KEY=VALUE (repeatable)")
	fs.Var(&extraInt, "custom-int", "extra custom integer field KEY=N (repeatable)")
	if err := parseTUFFlags(fs, args, stdout, dir); err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("%w: add-target needs --name", errUsage)
	}
	c.Channels = channels
	c.PartitionSHA256 = strings.ToLower(c.PartitionSHA256)
	for _, kv := range extra {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%w: --custom %q is not KEY=VALUE", errUsage, kv)
		}
		if c.Extra == nil {
			c.Extra = map[string]any{}
		}
		c.Extra[k] = v
	}
	for _, kv := range extraInt {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("%w: --custom-int %q is not KEY=INTEGER", errUsage, kv)
		}
		if c.Extra == nil {
			c.Extra = map[string]any{}
		}
		c.Extra[k] = n
	}
	if err := c.Validate(); err != nil {
		return err
	}
	t := repo.Target{Custom: c}
	switch {
	case *file != "" && (*length >= 0 || *sum != ""):
		return fmt.Errorf("%w: give --file or --length and --sha256, not both", errUsage)
	case *file != "":
		n, s, err := repo.HashFile(ctx, *file)
		if err != nil {
			return err
		}
		t.Length, t.SHA256 = n, s
	case *length >= 0 && *sum != "":
		b, err := hex.DecodeString(*sum)
		if err != nil || len(b) != len(t.SHA256) {
			return fmt.Errorf("%w: --sha256 %q is not 64 hex digits", errUsage, *sum)
		}
		t.Length = *length
		copy(t.SHA256[:], b)
	default:
		return fmt.Errorf("%w: add-target needs --file, or --length and --sha256", errUsage)
	}
	r, err := repo.Open(*dir)
	if err != nil {
		return err
	}
	if err := r.AddTarget(*name, t); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "staged %s length %d sha256 %s\n", *name, t.Length, hex.EncodeToString(t.SHA256[:]))
	return nil
}

func runTUFRemoveTarget(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newTUFFlags("remove-target", stderr)
	name := fs.String("name", "", "target name")
	if err := parseTUFFlags(fs, args, stdout, dir); err != nil {
		return err
	}
	r, err := repo.Open(*dir)
	if err != nil {
		return err
	}
	if err := r.RemoveTarget(*name); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %s from the staged targets\n", *name)
	return nil
}

// loadSigners loads private keys as TUF signers, asking for a passphrase once.
func loadSigners(paths []string, pf *passFlags, stderr io.Writer) ([]signature.Signer, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: give at least one --key", errUsage)
	}
	var pass keys.PassFunc
	if pf.insecure {
		pass = func(bool) ([]byte, error) {
			return nil, errors.New("the key is encrypted but --insecure-no-passphrase was given")
		}
	} else {
		// Unencrypted keys load without asking; ask only when a key needs it.
		var once keys.PassFunc
		pass = func(confirm bool) ([]byte, error) {
			if once == nil {
				p, err := pf.passFunc(stderr)
				if err != nil {
					return nil, err
				}
				once = passOnce(p)
			}
			return once(confirm)
		}
	}
	var out []signature.Signer
	for _, p := range paths {
		k, err := keys.LoadPrivateKey(p, pass)
		if err != nil {
			return nil, err
		}
		s, err := k.SigstoreSigner()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func runTUFSignTargets(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newTUFFlags("sign-targets", stderr)
	var keyPaths stringList
	fs.Var(&keyPaths, "key", "targets private key (repeatable, for a threshold above one)")
	expires := validityFlag{tuf.DefaultTargetsExpiry}
	fs.Var(&expires, "expires", "validity of the targets metadata (e.g. 90d)")
	var pf passFlags
	pf.register(fs)
	if err := parseTUFFlags(fs, args, stdout, dir); err != nil {
		return err
	}
	r, err := repo.Open(*dir)
	if err != nil {
		return err
	}
	signers, err := loadSigners(keyPaths, &pf, stderr)
	if err != nil {
		return err
	}
	if _, err := r.SignTargets(tuf.Expiry(time.Now(), expires.d), signers...); err != nil {
		return err
	}
	t, _, err := r.Targets()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed targets version %d (%d targets, expires %s): %s/%s\n", t.Signed.Version, len(t.Signed.Targets),
		t.Signed.Expires.Format(time.RFC3339), *dir, repo.TargetsFile)
	return nil
}

// parseRoleValues reads ROLE=VALUE flags.
func parseRoleValues(flagName string, vals []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, kv := range vals {
		role, v, ok := strings.Cut(kv, "=")
		known := false
		for _, r := range tuf.Roles {
			known = known || r == role
		}
		if !ok || !known || v == "" {
			return nil, fmt.Errorf("%w: --%s %q is not ROLE=VALUE with ROLE one of root, targets, snapshot, timestamp", errUsage, flagName, kv)
		}
		out[role] = append(out[role], v)
	}
	return out, nil
}

func runTUFRotateRoot(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newTUFFlags("rotate-root", stderr)
	var keyPaths, adds, revokes, thresholds stringList
	fs.Var(&keyPaths, "key", "root private key to sign with, old or new (repeatable)")
	fs.Var(&adds, "add-key", "ROLE=PUBLIC-KEY-FILE: add a key to a role (repeatable)")
	fs.Var(&revokes, "revoke-key", "ROLE=PUBLIC-KEY-FILE or ROLE=TUF-KEY-ID: remove a key from a role (repeatable)")
	fs.Var(&thresholds, "threshold", "ROLE=N: set a role's threshold (repeatable)")
	expires := validityFlag{tuf.DefaultRootExpiry}
	fs.Var(&expires, "expires", "validity of the new root (e.g. 365d)")
	var pf passFlags
	pf.register(fs)
	if err := parseTUFFlags(fs, args, stdout, dir); err != nil {
		return err
	}
	ch := repo.RootChange{Add: map[string][]crypto.PublicKey{}, Revoke: map[string][]string{}, Thresholds: map[string]int{}, Expires: tuf.Expiry(time.Now(), expires.d)}
	addMap, err := parseRoleValues("add-key", adds)
	if err != nil {
		return err
	}
	for role, paths := range addMap {
		for _, p := range paths {
			pk, err := keys.LoadPublicKey(p)
			if err != nil {
				return err
			}
			ch.Add[role] = append(ch.Add[role], pk.CryptoPublicKey())
		}
	}
	revMap, err := parseRoleValues("revoke-key", revokes)
	if err != nil {
		return err
	}
	for role, vals := range revMap {
		for _, v := range vals {
			id := v
			if _, err := os.Stat(v); err == nil {
				pk, err := keys.LoadPublicKey(v)
				if err != nil {
					return err
				}
				if id, err = tuf.KeyID(pk.CryptoPublicKey()); err != nil {
					return err
				}
			}
			ch.Revoke[role] = append(ch.Revoke[role], id)
		}
	}
	thMap, err := parseRoleValues("threshold", thresholds)
	if err != nil {
		return err
	}
	for role, vals := range thMap {
		n, err := strconv.Atoi(vals[len(vals)-1])
		if err != nil || n < 1 {
			return fmt.Errorf("%w: --threshold %s=%s", errUsage, role, vals[len(vals)-1])
		}
		ch.Thresholds[role] = n
	}
	r, err := repo.Open(*dir)
	if err != nil {
		return err
	}
	signers, err := loadSigners(keyPaths, &pf, stderr)
	if err != nil {
		return err
	}
	st, err := r.RotateRoot(ch, signers...)
	if err != nil {
		return err
	}
	printRootStatus(stdout, st)
	return nil
}

func printRootStatus(w io.Writer, st repo.RootStatus) {
	if st.Complete {
		fmt.Fprintf(w, "root version %d is complete: %s\nupload it to the server with the next release (or on its own)\n", st.Version, st.File)
		return
	}
	fmt.Fprintf(w, "root version %d needs %s; it waits in %s for `syctl tuf sign-root`\n", st.Version, st.Summary, st.File)
}

func runTUFSignRoot(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newTUFFlags("sign-root", stderr)
	var keyPaths stringList
	fs.Var(&keyPaths, "key", "root private key to sign with (repeatable)")
	var pf passFlags
	pf.register(fs)
	if err := parseTUFFlags(fs, args, stdout, dir); err != nil {
		return err
	}
	r, err := repo.Open(*dir)
	if err != nil {
		return err
	}
	signers, err := loadSigners(keyPaths, &pf, stderr)
	if err != nil {
		return err
	}
	st, err := r.SignRoot(signers...)
	if err != nil {
		return err
	}
	printRootStatus(stdout, st)
	return nil
}

func runTUFStatus(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newTUFFlags("status", stderr)
	if err := parseTUFFlags(fs, args, stdout, dir); err != nil {
		return err
	}
	r, err := repo.Open(*dir)
	if err != nil {
		return err
	}
	root, _, err := r.Root()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "root: version %d, expires %s\n", root.Signed.Version, root.Signed.Expires.Format(time.RFC3339))
	for _, role := range tuf.Roles {
		rl := root.Signed.Roles[role]
		fmt.Fprintf(stdout, "  %-9s %d of %d: %s\n", role, rl.Threshold, len(rl.KeyIDs), strings.Join(rl.KeyIDs, " "))
	}
	if staged, _, err := r.StagedRoot(); err != nil {
		return err
	} else if staged != nil {
		fmt.Fprintf(stdout, "staged root: version %d, %d signatures so far\n", staged.Signed.Version, len(staged.Signatures))
	}
	t, _, err := r.Targets()
	if err != nil {
		return err
	}
	if t == nil {
		fmt.Fprintln(stdout, "targets: none signed yet")
	} else {
		fmt.Fprintf(stdout, "targets: version %d, expires %s, %d targets\n", t.Signed.Version, t.Signed.Expires.Format(time.RFC3339), len(t.Signed.Targets))
	}
	staged, err := r.Staged()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(staged.Signed.Targets))
	for n := range staged.Signed.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "staged targets (next version): %d\n", len(names))
	for _, n := range names {
		tf := staged.Signed.Targets[n]
		custom := ""
		if tf.Custom != nil {
			custom = string(*tf.Custom)
		}
		fmt.Fprintf(stdout, "  %s\t%d\t%s\t%s\n", n, tf.Length, hex.EncodeToString(tf.Hashes["sha256"]), custom)
	}
	return nil
}
