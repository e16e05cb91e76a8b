// Package debkernel fetches a Debian kernel package with apt and unpacks it into a cache, with
// no root and no package installation.
//
// Debian's linux-image-amd64 is a metapackage: its one dependency, linux-image-X.Y.Z-N-amd64,
// holds the kernel (boot/vmlinuz-*) and its modules (lib/modules/*). Fetch resolves the
// metapackage with `apt-cache depends`, reads the exact version and SHA-256 with
// `apt-cache show`, downloads that version with `apt-get download`, checks the file's SHA-256
// against apt's record, and unpacks it with `dpkg-deb -x`.
//
// Cache layout: DIR/<package>_<version>/ holds the unpacked tree and a "complete" marker written
// last; an entry without the marker is discarded and fetched again, so a killed fetch never
// leaves a half tree that looks whole. The unpacking happens in a temporary sibling directory
// renamed into place.
package debkernel

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Metapackage is the Debian package that follows the current amd64 kernel.
const Metapackage = "linux-image-amd64"

// ErrNoApt reports that the apt or dpkg tools are missing.
var ErrNoApt = errors.New("debkernel: apt-get, apt-cache and dpkg-deb are needed (a Debian system)")

// Kernel is an unpacked kernel package.
type Kernel struct {
	Package string // e.g. linux-image-6.1.0-56-amd64
	Version string // the Debian package version, e.g. 6.1.192-2
	Release string // the kernel release (uname -r), e.g. 6.1.0-56-amd64
	Vmlinuz string // path of the kernel image
	Modules string // path of lib/modules/<release>
}

// Fetch resolves pkg (a metapackage such as Metapackage, or a concrete linux-image package),
// and returns the unpacked kernel from cacheDir, downloading it when it is not cached yet.
func Fetch(ctx context.Context, log *slog.Logger, cacheDir, pkg string) (*Kernel, error) {
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, ErrNoApt
		}
	}
	real := pkg
	out, err := command(ctx, "", "apt-cache", "depends", "--important", pkg)
	if err != nil {
		return nil, err
	}
	if dep, ok := kernelDependency(out); ok {
		real = dep
	}
	out, err = command(ctx, "", "apt-cache", "show", "--no-all-versions", real)
	if err != nil {
		return nil, err
	}
	rec, err := parseRecord(out)
	if err != nil {
		return nil, fmt.Errorf("debkernel: apt-cache show %s: %w", real, err)
	}
	if rec["Version"] == "" || len(rec["SHA256"]) != 64 {
		return nil, fmt.Errorf("debkernel: apt-cache show %s: no Version or SHA256", real)
	}
	dir := filepath.Join(cacheDir, safeName(real+"_"+rec["Version"]))
	if k, err := open(real, rec["Version"], dir); err == nil {
		return k, nil
	}
	log.InfoContext(ctx, "fetching kernel package", "package", real, "version", rec["Version"])
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("debkernel: %w", err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("debkernel: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return nil, fmt.Errorf("debkernel: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := command(ctx, tmp, "apt-get", "download", "-q", real+"="+rec["Version"]); err != nil {
		return nil, err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("debkernel: apt-get download left %d .deb files", len(debs))
	}
	if err := checkSHA256(debs[0], rec["SHA256"]); err != nil {
		return nil, err
	}
	tree := filepath.Join(tmp, "tree")
	if _, err := command(ctx, "", "dpkg-deb", "-x", debs[0], tree); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tree, "complete"), []byte(rec["SHA256"]+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("debkernel: %w", err)
	}
	if err := os.Rename(tree, dir); err != nil {
		// Another process may have finished the same fetch first.
		if k, oerr := open(real, rec["Version"], dir); oerr == nil {
			return k, nil
		}
		return nil, fmt.Errorf("debkernel: %w", err)
	}
	return open(real, rec["Version"], dir)
}

// open returns the kernel unpacked in dir, or an error when the entry is incomplete.
func open(pkg, version, dir string) (*Kernel, error) {
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		return nil, fmt.Errorf("debkernel: cache entry %s incomplete: %w", dir, err)
	}
	images, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return nil, fmt.Errorf("debkernel: %s: found %d kernel images", dir, len(images))
	}
	release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	mods := filepath.Join(dir, "lib", "modules", release)
	if _, err := os.Stat(mods); err != nil {
		return nil, fmt.Errorf("debkernel: %s: no modules for %s: %w", dir, release, err)
	}
	return &Kernel{Package: pkg, Version: version, Release: release, Vmlinuz: images[0], Modules: mods}, nil
}

func command(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("debkernel: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func checkSHA256(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("debkernel: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("debkernel: hashing %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("debkernel: %s: SHA-256 %s, apt expects %s", filepath.Base(path), got, want)
	}
	return nil
}

// kernelDependency finds the concrete kernel package in `apt-cache depends` output.
func kernelDependency(out []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		v = strings.Trim(strings.TrimSpace(v), "<>")
		if ok && strings.TrimPrefix(k, "|") == "Depends" && strings.HasPrefix(v, "linux-image-") && v != Metapackage {
			return v, true
		}
	}
	return "", false
}

// parseRecord parses the first stanza of a Debian control record ("Key: value" lines;
// continuation lines start with a space and are ignored here).
func parseRecord(out []byte) (map[string]string, error) {
	rec := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(rec) > 0 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		rec[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rec) == 0 {
		return nil, errors.New("empty record")
	}
	return rec, nil
}

// safeName keeps a cache directory name to characters that need no quoting.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '+':
			return r
		}
		return '_'
	}, s)
}
