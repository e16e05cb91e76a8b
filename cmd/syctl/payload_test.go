package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
)

// payloadTestImage is 1 MiB of text, zeros and pseudo-random bytes.
func payloadTestImage() []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	img := make([]byte, 1<<20)
	for i := 0; i < len(img); i += 64 << 10 {
		seg := img[i : i+64<<10]
		switch (i >> 16) % 3 {
		case 0:
			copy(seg, strings.Repeat("switchyard payload test line\n", 3000))
		case 1:
		case 2:
			for j := range seg {
				seg[j] = byte(rng.Uint32())
			}
		}
	}
	return img
}

func TestPayloadCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	img := payloadTestImage()
	if err := os.WriteFile(p("usr.img"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("pass"), []byte("hunter2\n"), 0o600)
	if err := k.Save(p("payload.pem"), keys.StaticPassphrase([]byte("hunter2"))); err != nil {
		t.Fatal(err)
	}
	k.Public().Save(p("payload.pub.pem"))
	other, _ := keys.Generate(keys.Ed25519)
	other.Public().Save(p("other.pub.pem"))

	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, args, &out, &errb); err != nil {
			t.Fatalf("syctl %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		if errb.Len() != 0 {
			t.Errorf("syctl %s wrote to stderr (not a terminal): %q", args[1], errb.String())
		}
		return out.String()
	}
	for _, comp := range []string{"xz", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			out := p("update-" + comp + ".bin")
			runOK("payload", "build", "--image", p("usr.img"), "--version", "1.2.3", "--board", "amd64-usr",
				"--chunk", "256KiB", "--compression", comp, "--xz-encoder", "go", "--out", out)
			// Unsigned payloads do not verify.
			if err := run(ctx, []string{"payload", "verify", "--pubkey", p("payload.pub.pem"), out}, &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, payload.ErrUnsigned) {
				t.Fatalf("verify unsigned: %v, want ErrUnsigned", err)
			}
			runOK("payload", "sign", "--key", p("payload.pem"), "--passphrase-file", p("pass"), out)
			summary := runOK("payload", "verify", "--pubkey", p("other.pub.pem"), "--pubkey", p("payload.pub.pem"), out)
			want := sha256.Sum256(img)
			for _, s := range []string{"OK", "1.2.3", "amd64-usr", k.ID()} {
				if !strings.Contains(summary, s) {
					t.Errorf("summary lacks %q:\n%s", s, summary)
				}
			}
			runOK("payload", "apply", "--pubkey", p("payload.pub.pem"), "--target", p("target-"+comp+".img"), out)
			runOK("payload", "verify", "--xz-decoder", "go", "--pubkey", p("payload.pub.pem"), out)
			if _, err := exec.LookPath("xz"); err == nil {
				runOK("payload", "verify", "--xz-decoder", "xz-utils", "--pubkey", p("payload.pub.pem"), out)
			}
			got, err := os.ReadFile(p("target-" + comp + ".img"))
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != want {
				t.Fatal("applied image differs")
			}
			if err := run(ctx, []string{"payload", "verify", "--pubkey", p("other.pub.pem"), out}, &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, payload.ErrWrongKey) {
				t.Fatalf("verify with another key: %v, want ErrWrongKey", err)
			}
			// Tamper with the last data byte: verify and apply refuse.
			b, _ := os.ReadFile(out)
			b[len(b)-1] ^= 0xff
			bad := p("bad-" + comp + ".bin")
			os.WriteFile(bad, b, 0o644)
			if err := run(ctx, []string{"payload", "verify", "--pubkey", p("payload.pub.pem"), bad}, &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, payload.ErrDataHash) {
				t.Fatalf("verify tampered: %v, want ErrDataHash", err)
			}
		})
	}
}

func TestPayloadUsageErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		args []string
	}{
		{"no command", []string{"payload"}},
		{"unknown command", []string{"payload", "frobnicate"}},
		{"build without image", []string{"payload", "build", "--version", "1", "--board", "b", "--out", "x"}},
		{"bad chunk", []string{"payload", "build", "--image", "i", "--version", "1", "--board", "b", "--out", "x", "--chunk", "lots"}},
		{"bad compression", []string{"payload", "build", "--image", "i", "--version", "1", "--board", "b", "--out", "x", "--compression", "lz4"}},
		{"verify without key", []string{"payload", "verify", "file"}},
		{"sign without key", []string{"payload", "sign", "file"}},
		{"apply without target", []string{"payload", "apply", "--pubkey", "k", "file"}},
		{"bad xz decoder", []string{"payload", "verify", "--pubkey", "k", "--xz-decoder", "lzip", "file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(ctx, tt.args, &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, errUsage) {
				t.Fatalf("run = %v, want a usage error", err)
			}
		})
	}
}

func TestParsePayloadSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"16MiB", 16 << 20}, {"4M", 4 << 20}, {"256KiB", 256 << 10}, {"65536", 65536}, {"1GiB", 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePayloadSize(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("parsePayloadSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "MiB", "-1M", "1.5M", "x"} {
		if _, err := parsePayloadSize(bad); err == nil {
			t.Errorf("parsePayloadSize(%q) accepted", bad)
		}
	}
}

// TestPayloadApplyTargetSize: `syctl payload apply` refuses a target file whose size is not
// the payload's partition size (an error from run, so syctl exits 1) and leaves it as it
// was; a new or empty file is sized to the partition.
func TestPayloadApplyTargetSize(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	img := payloadTestImage()
	if err := os.WriteFile(p("usr.img"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Save(p("payload.pem"), keys.StaticPassphrase([]byte("pw"))); err != nil {
		t.Fatal(err)
	}
	if err := k.Public().Save(p("payload.pub.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("pass"), []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"payload", "build", "--image", p("usr.img"), "--version", "1.2.3", "--board", "amd64-usr",
			"--chunk", "256KiB", "--compression", "zstd", "--out", p("update.bin")},
		{"payload", "sign", "--key", p("payload.pem"), "--passphrase-file", p("pass"), p("update.bin")},
	} {
		if err := run(ctx, args, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
			t.Fatalf("syctl %s: %v", strings.Join(args, " "), err)
		}
	}
	old := func(n int) []byte { return bytes.Repeat([]byte{0xa5}, n) }
	tests := []struct {
		name    string
		before  []byte // the target's content; nil: no file
		refused bool
	}{
		{name: "larger file", before: old(len(img) + 64<<10), refused: true},
		{name: "smaller file", before: old(len(img) - 64<<10), refused: true},
		{name: "file of the partition's size", before: old(len(img))},
		{name: "empty file", before: []byte{}},
		{name: "no file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "usr-b.img")
			if tt.before != nil {
				if err := os.WriteFile(target, tt.before, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			err := run(ctx, []string{"payload", "apply", "--pubkey", p("payload.pub.pem"), "--target", target, p("update.bin")}, &out, &bytes.Buffer{})
			got, rerr := os.ReadFile(target)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !tt.refused {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, img) || !strings.Contains(out.String(), "verified") {
					t.Fatalf("target is not the partition (%d bytes); syctl said %q", len(got), out.String())
				}
				return
			}
			if !errors.Is(err, payload.ErrTargetSize) {
				t.Fatalf("syctl payload apply = %v (stdout %q), want ErrTargetSize", err, out.String())
			}
			if want := fmt.Sprintf("target %d bytes, partition %d bytes", len(tt.before), len(img)); !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name both sizes (%q)", err, want)
			}
			if out.Len() != 0 || !bytes.Equal(got, tt.before) {
				t.Fatalf("a refused target was written (%d bytes) or reported: %q", len(got), out.String())
			}
		})
	}
}

// TestPayloadDeltaCommands: build --source, verify --source and apply --source --target,
// and the refusals of a source that is not the delta's.
func TestPayloadDeltaCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	old := payloadTestImage()
	img := append(append([]byte(nil), old[8192:]...), old[:8192]...) // blocks moved
	copy(img[300<<10:], "changed in version 1.2.4")
	os.WriteFile(p("old.img"), old, 0o644)
	os.WriteFile(p("new.img"), img, 0o644)
	wrong := append([]byte(nil), old...)
	wrong[len(wrong)-1] ^= 1
	os.WriteFile(p("wrong.img"), wrong, 0o644)
	k, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	k.Save(p("payload.pem"), keys.StaticPassphrase([]byte("pw")))
	os.WriteFile(p("pass"), []byte("pw\n"), 0o600)
	k.Public().Save(p("payload.pub.pem"))
	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, args, &out, &errb); err != nil {
			t.Fatalf("syctl %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	runErr := func(args ...string) error {
		t.Helper()
		return run(ctx, args, &bytes.Buffer{}, &bytes.Buffer{})
	}
	delta, full := p("delta.bin"), p("full.bin")
	runOK("payload", "build", "--image", p("new.img"), "--version", "1.2.4", "--board", "amd64-usr", "--xz-encoder", "go", "--out", full)
	built := runOK("payload", "build", "--image", p("new.img"), "--version", "1.2.4", "--board", "amd64-usr",
		"--source", p("old.img"), "--source-version", "1.2.3", "--out", delta)
	if !strings.Contains(built, "SOURCE_COPY") {
		t.Errorf("build summary names no SOURCE_COPY: %s", built)
	}
	ds, _ := os.Stat(delta)
	fs, _ := os.Stat(full)
	if ds.Size()*10 > fs.Size() {
		t.Errorf("delta %d bytes, full payload %d: want at most a tenth", ds.Size(), fs.Size())
	}
	runOK("payload", "sign", "--key", p("payload.pem"), "--passphrase-file", p("pass"), delta)
	summary := runOK("payload", "verify", "--pubkey", p("payload.pub.pem"), "--source", p("old.img"), delta)
	if !strings.Contains(summary, "delta from       1.2.3") {
		t.Errorf("summary does not name the source:\n%s", summary)
	}
	if err := runErr("payload", "verify", "--pubkey", p("payload.pub.pem"), delta); !errors.Is(err, payload.ErrNoSource) {
		t.Fatalf("verify without --source: %v, want ErrNoSource", err)
	}
	if err := runErr("payload", "verify", "--pubkey", p("payload.pub.pem"), "--source", p("wrong.img"), delta); !errors.Is(err, payload.ErrSourceMismatch) {
		t.Fatalf("verify with another source: %v, want ErrSourceMismatch", err)
	}
	if err := runErr("payload", "apply", "--pubkey", p("payload.pub.pem"), "--source", p("wrong.img"), "--target", p("t-wrong.img"), delta); !errors.Is(err, payload.ErrSourceMismatch) {
		t.Fatalf("apply with another source: %v, want ErrSourceMismatch", err)
	}
	if _, err := os.Stat(p("t-wrong.img")); err == nil {
		t.Fatal("apply with another source created the target")
	}
	runOK("payload", "apply", "--pubkey", p("payload.pub.pem"), "--source", p("old.img"), "--target", p("t.img"), delta)
	if got, _ := os.ReadFile(p("t.img")); !bytes.Equal(got, img) {
		t.Fatal("applied delta differs from the new image")
	}
	if err := runErr("payload", "build", "--image", p("new.img"), "--version", "1.2.4", "--board", "b", "--source", p("old.img"), "--out", p("x.bin")); !errors.Is(err, errUsage) {
		t.Fatalf("--source without --source-version: %v, want a usage error", err)
	}
}
