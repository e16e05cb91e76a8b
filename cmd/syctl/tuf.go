package main

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

const tufLong = `The offline half of the TUF repository, in a working directory (see docs/tuf.md).
Private keys are read with the passphrase from --passphrase-file, SYCTL_PASSPHRASE or a
prompt.`

// newTUFCmd is `syctl tuf …`.
func newTUFCmd() *cobra.Command {
	return group(&cobra.Command{Use: "tuf COMMAND", Short: "add payload targets and sign targets metadata; rotate the root", Long: tufLong},
		"tuf: no command",
		newTUFInitCmd(), newTUFAddTargetCmd(), newTUFRemoveTargetCmd(), newTUFSignTargetsCmd(), newTUFRotateRootCmd(),
		newTUFSignRootCmd(), newTUFStatusCmd(), newTUFPublishRootCmd(), newTUFServerStatusCmd())
}

// newTUFLeaf returns the tuf command use, with --repo (the working directory, into *dir)
// and no positional arguments.
func newTUFLeaf(use, short string) (*cobra.Command, *string) {
	cmd := &cobra.Command{Use: use, Short: short, Args: usage.NoArgs}
	return cmd, cmd.Flags().String("repo", "", "TUF working directory")
}

// needRepo refuses a tuf command without --repo.
func needRepo(cmd *cobra.Command, dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: tuf %s needs --repo", errUsage, cmd.Name())
	}
	return nil
}

// newTUFInitCmd is `syctl tuf init`.
func newTUFInitCmd() *cobra.Command {
	cmd, dir := newTUFLeaf("init --repo DIR --root FILE", "start a working directory from a root (--root KEYS/1.root.json)")
	fs := cmd.Flags()
	rootPath := fs.String("root", "", "the root to start from (keys init wrote DIR/1.root.json)")
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := needRepo(cmd, *dir); err != nil {
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
	})
	return cmd
}

// newTUFAddTargetCmd is `syctl tuf add-target`.
func newTUFAddTargetCmd() *cobra.Command {
	cmd, dir := newTUFLeaf("add-target --repo DIR --name NAME (--file PAYLOAD | --length N --sha256 HEX) --version V --board B", "pin a payload: length, SHA-256 and custom fields, into the staged targets")
	fs := cmd.Flags()
	name := fs.String("name", "", "target name, e.g. amd64-usr/4230.2.0/payload.sy")
	file := fs.String("file", "", "the payload file (length and SHA-256 are computed)")
	length := fs.Int64("length", -1, "payload length, instead of --file")
	sum := fs.String("sha256", "", "payload SHA-256 in hex, instead of --file")
	var c tuf.Custom
	fs.StringVar(&c.Version, "version", "", "OS version (custom field, required)")
	fs.StringVar(&c.Board, "board", "", "board, e.g. amd64-usr (custom field, required)")
	var channels, extra, extraInt []string
	fs.StringArrayVar(&channels, "channel", nil, "channel hint (repeatable)")
	fs.Int64Var(&c.ReleaseCounter, "release-counter", 0, "monotonic release counter")
	fs.Int64Var(&c.PartitionSize, "partition-size", 0, "size of the resulting partition image in bytes")
	fs.StringVar(&c.PartitionSHA256, "partition-sha256", "", "SHA-256 of the resulting partition image, hex")
	fs.StringArrayVar(&extra, "custom", nil, "extra custom string field KEY=VALUE (repeatable)")
	sourceVersion := fs.String("source-version", "", "the payload is a delta from this version (custom field "+tuf.FieldSourceVersion+")")
	fs.StringArrayVar(&extraInt, "custom-int", nil, "extra custom integer field KEY=N (repeatable)")
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := needRepo(cmd, *dir); err != nil {
			return err
		}
		if *name == "" {
			return fmt.Errorf("%w: add-target needs --name", errUsage)
		}
		c.Channels = channels
		c.PartitionSHA256 = strings.ToLower(c.PartitionSHA256)
		if *sourceVersion != "" {
			extra = append(extra, tuf.FieldSourceVersion+"="+*sourceVersion)
		}
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
	})
	return cmd
}

// newTUFRemoveTargetCmd is `syctl tuf remove-target`.
func newTUFRemoveTargetCmd() *cobra.Command {
	cmd, dir := newTUFLeaf("remove-target --repo DIR --name NAME", "drop a target from the staged targets")
	fs := cmd.Flags()
	name := fs.String("name", "", "target name")
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := needRepo(cmd, *dir); err != nil {
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
	})
	return cmd
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

// newTUFSignTargetsCmd is `syctl tuf sign-targets`.
func newTUFSignTargetsCmd() *cobra.Command {
	cmd, dir := newTUFLeaf("sign-targets --repo DIR --key KEY", "sign the staged targets as the next version (targets key) into targets.json")
	fs := cmd.Flags()
	var keyPaths []string
	fs.StringArrayVar(&keyPaths, "key", nil, "targets private key (repeatable, for a threshold above one)")
	expires := validityFlag{tuf.DefaultTargetsExpiry}
	fs.Var(&expires, "expires", "validity of the targets metadata (e.g. 90d)")
	var pf passFlags
	pf.register(fs)
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := needRepo(cmd, *dir); err != nil {
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
	})
	return cmd
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

// newTUFRotateRootCmd is `syctl tuf rotate-root`.
func newTUFRotateRootCmd() *cobra.Command {
	cmd, dir := newTUFLeaf("rotate-root --repo DIR --key KEY [--add-key ROLE=PUB] [--revoke-key ROLE=PUB|ID] [--threshold ROLE=N]", "make the next root (add or revoke keys, thresholds), signing it with --key")
	fs := cmd.Flags()
	var keyPaths, adds, revokes, thresholds []string
	fs.StringArrayVar(&keyPaths, "key", nil, "root private key to sign with, old or new (repeatable)")
	fs.StringArrayVar(&adds, "add-key", nil, "ROLE=PUBLIC-KEY-FILE: add a key to a role (repeatable)")
	fs.StringArrayVar(&revokes, "revoke-key", nil, "ROLE=PUBLIC-KEY-FILE or ROLE=TUF-KEY-ID: remove a key from a role (repeatable)")
	fs.StringArrayVar(&thresholds, "threshold", nil, "ROLE=N: set a role's threshold (repeatable)")
	expires := validityFlag{tuf.DefaultRootExpiry}
	fs.Var(&expires, "expires", "validity of the new root (e.g. 365d)")
	var pf passFlags
	pf.register(fs)
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := needRepo(cmd, *dir); err != nil {
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
	})
	return cmd
}

func printRootStatus(w io.Writer, st repo.RootStatus) {
	if st.Complete {
		fmt.Fprintf(w, "root version %d is complete: %s\nupload it to the server with the next release (or on its own)\n", st.Version, st.File)
		return
	}
	fmt.Fprintf(w, "root version %d needs %s; it waits in %s for `syctl tuf sign-root`\n", st.Version, st.Summary, st.File)
}

// newTUFSignRootCmd is `syctl tuf sign-root`.
func newTUFSignRootCmd() *cobra.Command {
	cmd, dir := newTUFLeaf("sign-root --repo DIR --key KEY", "add signatures to a root rotation in progress")
	fs := cmd.Flags()
	var keyPaths []string
	fs.StringArrayVar(&keyPaths, "key", nil, "root private key to sign with (repeatable)")
	var pf passFlags
	pf.register(fs)
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := needRepo(cmd, *dir); err != nil {
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
	})
	return cmd
}

// newTUFStatusCmd is `syctl tuf status`.
func newTUFStatusCmd() *cobra.Command {
	cmd, dir := newTUFLeaf("status --repo DIR", "show roots, targets and what is staged")
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := needRepo(cmd, *dir); err != nil {
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
	})
	return cmd
}
