// Package kmod finds Linux kernel modules in an unpacked module tree (lib/modules/VERSION from
// a Debian kernel package) and orders them for loading, without depmod.
//
// Debian's kernel packages ship no modules.dep (depmod runs at install time), so dependencies
// come from each module's own ".modinfo" ELF section: a sequence of NUL-terminated "key=value"
// strings, of which "depends=a,b" names the modules that must be loaded first and
// "softdep=pre: x y" names optional ones. Names are normalised as the kernel does ('-' becomes
// '_'). Modules listed in modules.builtin are part of the kernel image and are skipped.
//
// Modules may be stored compressed (.ko.xz, .ko.zst, .ko.gz); Load returns them decompressed,
// ready for finit_module(2) without MODULE_INIT_COMPRESSED_FILE. Every module read is bounded by
// MaxModuleSize.
package kmod

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// MaxModuleSize bounds the decompressed size of one module (the largest in a Debian kernel,
// amdgpu, is about 20 MiB).
const MaxModuleSize = 64 << 20

// ErrNotFound reports a module name the tree does not hold and the kernel does not build in.
var ErrNotFound = errors.New("kmod: module not found")

// Tree is an unpacked lib/modules/VERSION directory.
type Tree struct {
	root    string
	files   map[string]string // module name -> path relative to root
	builtin map[string]bool
}

// Module is one module ready to load.
type Module struct {
	Name string // normalised name, e.g. "virtio_blk"
	Path string // path relative to the tree root, as stored (possibly compressed)
	Data []byte // the uncompressed ELF object
}

// Name returns the module name for a file name such as "crc32c-intel.ko.xz".
func Name(file string) string {
	base := filepath.Base(file)
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	return strings.ReplaceAll(base, "-", "_")
}

// Open indexes the module tree rooted at root (the directory holding kernel/ and
// modules.builtin).
func Open(root string) (*Tree, error) {
	t := &Tree{root: root, files: make(map[string]string), builtin: make(map[string]bool)}
	err := filepath.WalkDir(filepath.Join(root, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.Contains(d.Name(), ".ko") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		t.files[Name(rel)] = rel
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kmod: indexing %s: %w", root, err)
	}
	if len(t.files) == 0 {
		return nil, fmt.Errorf("kmod: no modules under %s", root)
	}
	f, err := os.Open(filepath.Join(root, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("kmod: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			t.builtin[Name(line)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kmod: reading modules.builtin: %w", err)
	}
	return t, nil
}

// Builtin reports whether the kernel image holds the named module.
func (t *Tree) Builtin(name string) bool { return t.builtin[Name(name)] }

// Resolve returns the named modules and everything they depend on, each once, in an order in
// which every module comes after its dependencies. Built-in modules are left out. Soft
// pre-dependencies are included when the tree has a module of that exact name.
func (t *Tree) Resolve(names ...string) ([]Module, error) {
	var out []Module
	state := make(map[string]int) // 1 visiting, 2 done
	var visit func(name string, chain []string, optional bool) error
	visit = func(name string, chain []string, optional bool) error {
		name = Name(name)
		if t.builtin[name] || state[name] == 2 {
			return nil
		}
		if state[name] == 1 {
			return fmt.Errorf("kmod: dependency cycle: %s -> %s", strings.Join(chain, " -> "), name)
		}
		rel, ok := t.files[name]
		if !ok {
			if optional {
				return nil
			}
			return fmt.Errorf("%w: %s (needed by %s)", ErrNotFound, name, strings.Join(append(chain, "request"), " <- "))
		}
		state[name] = 1
		data, err := t.read(rel)
		if err != nil {
			return err
		}
		info, err := ParseModinfo(data)
		if err != nil {
			return fmt.Errorf("kmod: %s: %w", rel, err)
		}
		for _, pre := range info.SoftPre() {
			if err := visit(pre, append(chain, name), true); err != nil {
				return err
			}
		}
		for _, dep := range info.Depends() {
			if err := visit(dep, append(chain, name), false); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, Module{Name: name, Path: rel, Data: data})
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// read returns the decompressed module at rel.
func (t *Tree) read(rel string) ([]byte, error) {
	f, err := os.Open(filepath.Join(t.root, rel))
	if err != nil {
		return nil, fmt.Errorf("kmod: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(rel, ".xz"):
		xr, err := xz.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("kmod: %s: %w", rel, err)
		}
		r = xr
	case strings.HasSuffix(rel, ".zst"):
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("kmod: %s: %w", rel, err)
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(rel, ".gz"):
		gr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("kmod: %s: %w", rel, err)
		}
		r = gr
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("kmod: reading %s: %w", rel, err)
	}
	if len(data) > MaxModuleSize {
		return nil, fmt.Errorf("kmod: %s is larger than %d bytes", rel, MaxModuleSize)
	}
	return data, nil
}

// Modinfo is the parsed ".modinfo" section of a module: every key with its values in order.
type Modinfo map[string][]string

// ParseModinfo reads the ".modinfo" section of an ELF kernel module.
func ParseModinfo(obj []byte) (Modinfo, error) {
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		return nil, fmt.Errorf("kmod: not an ELF object: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("kmod: no .modinfo section")
	}
	if sec.Type == elf.SHT_NOBITS || sec.Size > uint64(len(obj)) {
		return nil, fmt.Errorf("kmod: .modinfo section of %d bytes does not fit the object", sec.Size)
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("kmod: reading .modinfo: %w", err)
	}
	info := make(Modinfo)
	for _, field := range bytes.Split(raw, []byte{0}) {
		k, v, ok := strings.Cut(string(field), "=")
		if !ok || k == "" {
			continue // alignment padding between entries
		}
		info[k] = append(info[k], v)
	}
	return info, nil
}

// Depends returns the hard dependencies, normalised and sorted.
func (m Modinfo) Depends() []string {
	var out []string
	for _, v := range m["depends"] {
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				out = append(out, Name(d))
			}
		}
	}
	sort.Strings(out)
	return out
}

// SoftPre returns the names in "softdep=pre: ..." entries (up to a "post:" marker).
func (m Modinfo) SoftPre() []string {
	var out []string
	for _, v := range m["softdep"] {
		pre := false
		for _, w := range strings.Fields(v) {
			switch w {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				if pre {
					out = append(out, Name(w))
				}
			}
		}
	}
	return out
}
