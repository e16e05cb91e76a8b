package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
)

// passEnv names the environment variable every syctl command reads a passphrase from;
// oldPayloadPassEnv is the name payload sign used to read, still accepted with a warning.
const (
	passEnv           = "SYCTL_PASSPHRASE"
	oldPayloadPassEnv = "SYCTL_KEY_PASSPHRASE"
)

// newPayloadCmd is `syctl payload …`.
func newPayloadCmd() *cobra.Command {
	return group(&cobra.Command{Use: "payload COMMAND", Short: "build, sign, verify and apply update payloads"},
		"payload needs a command",
		newPayloadBuildCmd(), newPayloadSignCmd(), newPayloadVerifyCmd(), newPayloadApplyCmd())
}

// parsePayloadSize reads sizes like 16MiB, 4M, 65536.
func parsePayloadSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// newPayloadLeaf returns the payload command use; it checks its positional arguments itself.
func newPayloadLeaf(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs}
}

// newPayloadBuildCmd is `syctl payload build`.
func newPayloadBuildCmd() *cobra.Command {
	cmd := newPayloadLeaf("build --image USR.img --version V --board B [--chunk 16MiB] [--compression xz|zstd|none] [--xz-encoder auto|go|xz-utils] [--source OLD.img --source-version V] --out FILE", "build an unsigned payload from a partition image (a delta with --source)")
	fs := cmd.Flags()
	image := fs.String("image", "", "partition image to ship (required)")
	version := fs.String("version", "", "version of the image (required)")
	board := fs.String("board", "", "board, e.g. amd64-usr (required)")
	chunk := fs.String("chunk", "16MiB", "bytes per operation")
	compression := fs.String("compression", "xz", "chunk compression: xz, zstd or none")
	xzEncoder := fs.String("xz-encoder", "auto", "xz encoder: go (ulikunitz/xz), xz-utils, or auto (xz-utils when on PATH)")
	source := fs.String("source", "", "previous image: build a delta payload from it (blocks it holds are copied, changed files patched)")
	sourceVersion := fs.String("source-version", "", "version of the --source image (required with --source)")
	out := fs.String("out", "", "payload file to write (required)")
	cmd.RunE = usage.Run(func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if *image == "" || *version == "" || *board == "" || *out == "" || len(args) != 0 {
			return fmt.Errorf("%w: payload build needs --image, --version, --board and --out", errUsage)
		}
		if (*source == "") != (*sourceVersion == "") {
			return fmt.Errorf("%w: payload build needs --source and --source-version together", errUsage)
		}
		cs, err := parsePayloadSize(*chunk)
		if err != nil {
			return fmt.Errorf("%w: --chunk: %v", errUsage, err)
		}
		// The compressed data waits next to the output (it is about the payload's size).
		cfg := payload.BuildConfig{Version: *version, Board: *board, ChunkSize: cs, TempDir: filepath.Dir(*out)}
		switch *compression {
		case "xz":
			cfg.Compression = payload.ReplaceXZ
		case "zstd":
			cfg.Compression = payload.ReplaceZstd
		case "none":
			cfg.Compression = payload.Replace
		default:
			return fmt.Errorf("%w: --compression %q (xz, zstd or none)", errUsage, *compression)
		}
		switch *xzEncoder {
		case "go":
		case "xz-utils", "auto":
			p, err := exec.LookPath("xz")
			if err != nil && *xzEncoder == "xz-utils" {
				return fmt.Errorf("payload build: --xz-encoder xz-utils: %v (apt-get install xz-utils)", err)
			}
			cfg.XZCommand = p
		default:
			return fmt.Errorf("%w: --xz-encoder %q (auto, go or xz-utils)", errUsage, *xzEncoder)
		}
		img, err := os.Open(*image)
		if err != nil {
			return fmt.Errorf("payload build: %w", err)
		}
		defer img.Close()
		st, err := img.Stat()
		if err != nil {
			return fmt.Errorf("payload build: %w", err)
		}
		if *source != "" {
			src, err := os.Open(*source)
			if err != nil {
				return fmt.Errorf("payload build: %w", err)
			}
			defer src.Close()
			sst, err := src.Stat()
			if err != nil {
				return fmt.Errorf("payload build: %w", err)
			}
			cfg.Source, cfg.SourceSize, cfg.SourceVersion = src, sst.Size(), *sourceVersion
		}
		prog := newProgress(stderr, "built", time.Now)
		cfg.Progress = prog.update
		start := time.Now()
		var m *payload.Manifest
		err = atomicfile.Write(*out, 0o644, func(w io.Writer) error {
			var err error
			m, err = payload.Build(ctx, img, st.Size(), w, cfg)
			return err
		})
		if err != nil {
			return err
		}
		counts := map[payload.Type]int{}
		for _, op := range m.Operations {
			counts[op.Type]++
		}
		ost, err := os.Stat(*out)
		if err != nil {
			return fmt.Errorf("payload build: %w", err)
		}
		fmt.Fprintf(stdout, "built %s: %d operations (%s), %d bytes for a %d-byte image, partition sha256 %s, %.1fs (unsigned: run syctl payload sign)\n",
			*out, len(m.Operations), payloadOpCounts(counts), ost.Size(), m.PartitionSize, hex.EncodeToString(m.PartitionSHA256[:]), time.Since(start).Seconds())
		return nil
	})
	return cmd
}

func payloadOpCounts(c map[payload.Type]int) string {
	var parts []string
	for _, t := range []payload.Type{payload.Replace, payload.ReplaceXZ, payload.ReplaceZstd, payload.Zero, payload.SourceCopy, payload.SourceZstd} {
		if c[t] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[t], t))
		}
	}
	return strings.Join(parts, ", ")
}

func payloadPassFunc(file string, stderr io.Writer) keys.PassFunc {
	if file != "" {
		return keys.PassphraseFile(file)
	}
	if p, ok := os.LookupEnv(passEnv); ok {
		return keys.StaticPassphrase([]byte(p))
	}
	if p, ok := os.LookupEnv(oldPayloadPassEnv); ok {
		fmt.Fprintf(stderr, "syctl: warning: %s is deprecated; set %s instead\n", oldPayloadPassEnv, passEnv)
		return keys.StaticPassphrase([]byte(p))
	}
	return func(bool) ([]byte, error) {
		tty, err := os.Open("/dev/tty")
		if err != nil {
			return nil, fmt.Errorf("no --passphrase-file, no $%s and no terminal to ask on", passEnv)
		}
		defer tty.Close()
		fmt.Fprint(stderr, "passphrase for the payload key: ")
		p, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(stderr)
		return p, err
	}
}

// newPayloadSignCmd is `syctl payload sign`.
func newPayloadSignCmd() *cobra.Command {
	cmd := newPayloadLeaf("sign --key KEY.pem [--passphrase-file F] FILE", "sign a payload (passphrase: --passphrase-file, else $SYCTL_PASSPHRASE, else a prompt)")
	fs := cmd.Flags()
	keyPath := fs.String("key", "", "payload private key, PEM (required)")
	passFile := fs.String("passphrase-file", "", "file holding the key's passphrase")
	cmd.RunE = usage.Run(func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if *keyPath == "" || len(args) != 1 {
			return fmt.Errorf("%w: payload sign needs --key and one payload file", errUsage)
		}
		k, err := keys.LoadPrivateKey(*keyPath, payloadPassFunc(*passFile, stderr))
		if err != nil {
			return err
		}
		s, err := keys.NewSigner(k)
		if err != nil {
			return err
		}
		if err := payload.SignFile(ctx, args[0], s); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "signed %s with %s key %s\n", args[0], k.Algorithm(), k.ID())
		return nil
	})
	return cmd
}

// payloadXZDecoder turns --xz-decoder into ApplyConfig.XZCommand.
func payloadXZDecoder(name string) (string, error) {
	p, err := payload.XZDecoderCommand(name)
	if errors.Is(err, payload.ErrUnknownXZDecoder) {
		return "", fmt.Errorf("%w: --xz-decoder %q (auto, go or xz-utils)", errUsage, name)
	}
	return p, err
}

func payloadVerifier(paths []string) (*keys.Verifier, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: at least one --pubkey is needed (%v)", errUsage, payload.ErrNoKeys)
	}
	return keys.LoadVerifier(paths...)
}

// newPayloadVerifyCmd is `syctl payload verify`.
func newPayloadVerifyCmd() *cobra.Command {
	cmd := newPayloadLeaf("verify --pubkey PUB.pem [--pubkey PUB2.pem] [--source PATH] [--xz-decoder auto|go|xz-utils] FILE", "check a payload's signature and every operation, writing nothing")
	fs := cmd.Flags()
	var pubs []string
	fs.StringArrayVar(&pubs, "pubkey", nil, "accepted payload public key, PEM (repeatable)")
	source := fs.String("source", "", "source partition, for delta payloads")
	xzDecoder := fs.String("xz-decoder", "auto", "decoder for xz chunks: auto (xz-utils when on PATH, as update-engine does), go (github.com/xi2/xz) or xz-utils")
	cmd.RunE = usage.Run(func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if len(args) != 1 {
			return fmt.Errorf("%w: payload verify needs one payload file", errUsage)
		}
		xzCommand, err := payloadXZDecoder(*xzDecoder)
		if err != nil {
			return err
		}
		v, err := payloadVerifier(pubs)
		if err != nil {
			return err
		}
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("payload verify: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("payload verify: %w", err)
		}
		cfg := payload.ApplyConfig{Target: payload.NewHashingSink(), XZCommand: xzCommand}
		closeSource, err := openPayloadSource(*source, &cfg)
		if err != nil {
			return fmt.Errorf("payload verify: %w", err)
		}
		defer closeSource()
		prog := newProgress(stderr, "verified", time.Now)
		var total int64
		cfg.Progress = func(p payload.Progress) { prog.update(p.BytesRead, total) }
		r := bufio.NewReaderSize(f, 1<<20)
		vm, err := payload.ReadManifest(ctx, r, v)
		if err != nil {
			return err
		}
		total = st.Size() - vm.DataStart
		if err := checkPayloadSource(ctx, vm, cfg.Source); err != nil {
			return err
		}
		if err := vm.Apply(ctx, r, cfg); err != nil {
			return err
		}
		printPayloadSummary(stdout, args[0], st.Size(), vm)
		return nil
	})
	return cmd
}

func printPayloadSummary(w io.Writer, name string, size int64, vm *payload.Verified) {
	m := vm.Manifest
	counts := map[payload.Type]int{}
	for _, op := range m.Operations {
		counts[op.Type]++
	}
	fmt.Fprintf(w, "payload %s: OK\n", name)
	fmt.Fprintf(w, "  version          %s\n", m.Version)
	fmt.Fprintf(w, "  board            %s\n", m.Board)
	fmt.Fprintf(w, "  signed by key    %s\n", vm.KeyID)
	fmt.Fprintf(w, "  payload size     %d bytes\n", size)
	fmt.Fprintf(w, "  partition size   %d bytes (block size %d)\n", m.PartitionSize, m.BlockSize)
	fmt.Fprintf(w, "  partition sha256 %s\n", hex.EncodeToString(m.PartitionSHA256[:]))
	fmt.Fprintf(w, "  operations       %d (%s)\n", len(m.Operations), payloadOpCounts(counts))
	if s := m.Source; s != nil {
		fmt.Fprintf(w, "  delta from       %s (%d bytes, sha256 %s)\n", s.Version, s.Size, hex.EncodeToString(s.SHA256[:]))
	}
}

// openPayloadSource opens the source partition of a delta (path "" for none) into cfg:
// Source, and SourceSize for a regular file. The returned function closes it.
func openPayloadSource(path string, cfg *payload.ApplyConfig) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := src.Stat()
	if err != nil {
		src.Close()
		return nil, err
	}
	cfg.Source = src
	if st.Mode().IsRegular() {
		cfg.SourceSize = st.Size()
	}
	return func() { src.Close() }, nil
}

// checkPayloadSource checks, for a delta, that the source is the one it was built from
// (size and SHA-256), before anything is applied.
func checkPayloadSource(ctx context.Context, vm *payload.Verified, src io.ReaderAt) error {
	s := vm.Manifest.Source
	if s == nil {
		return nil
	}
	if src == nil {
		return fmt.Errorf("%w: pass --source, the %s partition this delta was built from", payload.ErrNoSource, s.Version)
	}
	if err := vm.CheckSource(ctx, src, 0); err != nil {
		return fmt.Errorf("%w (use the full payload)", err)
	}
	return nil
}

// newPayloadApplyCmd is `syctl payload apply`.
func newPayloadApplyCmd() *cobra.Command {
	cmd := newPayloadLeaf("apply --pubkey PUB.pem [--pubkey ...] --target PATH [--source PATH] [--xz-decoder auto|go|xz-utils] FILE", "verify a payload and write the partition it describes to --target")
	fs := cmd.Flags()
	var pubs []string
	fs.StringArrayVar(&pubs, "pubkey", nil, "accepted payload public key, PEM (repeatable)")
	target := fs.String("target", "", "partition or image file to write (required; a new or empty file is sized to the partition, any other must be its size)")
	source := fs.String("source", "", "active partition, for delta payloads")
	xzDecoder := fs.String("xz-decoder", "auto", "decoder for xz chunks: auto (xz-utils when on PATH, as update-engine does), go (github.com/xi2/xz) or xz-utils")
	cmd.RunE = usage.Run(func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if *target == "" || len(args) != 1 {
			return fmt.Errorf("%w: payload apply needs --target and one payload file", errUsage)
		}
		xzCommand, err := payloadXZDecoder(*xzDecoder)
		if err != nil {
			return err
		}
		v, err := payloadVerifier(pubs)
		if err != nil {
			return err
		}
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("payload apply: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("payload apply: %w", err)
		}
		r := bufio.NewReaderSize(f, 1<<20)
		// The manifest is verified before the target is even opened.
		vm, err := payload.ReadManifest(ctx, r, v)
		if err != nil {
			return err
		}
		cfg := payload.ApplyConfig{XZCommand: xzCommand}
		closeSource, err := openPayloadSource(*source, &cfg)
		if err != nil {
			return fmt.Errorf("payload apply: %w", err)
		}
		defer closeSource()
		if err := checkPayloadSource(ctx, vm, cfg.Source); err != nil {
			return err
		}
		tf, err := os.OpenFile(*target, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("payload apply: %w", err)
		}
		defer tf.Close()
		// The applier sizes a new (empty) image file and refuses a file or device of any size
		// but the partition's before writing to it.
		cfg.Target = tf
		cfg.Sync = tf.Sync
		prog := newProgress(stderr, "applied", time.Now)
		total := st.Size() - vm.DataStart
		cfg.Progress = func(p payload.Progress) { prog.update(p.BytesRead, total) }
		if err := vm.Apply(ctx, r, cfg); err != nil {
			if errors.Is(err, payload.ErrPartitionHash) || errors.Is(err, payload.ErrDataHash) {
				return fmt.Errorf("%w (the target holds partial or wrong data: do not boot it)", err)
			}
			return err
		}
		fmt.Fprintf(stdout, "applied %s %s to %s: partition sha256 %s verified\n", vm.Manifest.Board, vm.Manifest.Version, *target, hex.EncodeToString(vm.Manifest.PartitionSHA256[:]))
		return nil
	})
	return cmd
}
