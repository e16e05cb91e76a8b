// Package initramfs builds the gzip-compressed newc cpio archive the test images boot with:
// the boot selector as /init, the kernel modules it loads, and the directories it mounts on.
//
// Archive layout:
//
//	init                          the boot selector, a static binary
//	dev/, dev/console (c 5:1)     so /init has a console before devtmpfs is mounted
//	proc/ sys/ newroot/
//	lib/modules/RELEASE/NAME.ko   every module, decompressed
//	lib/modules/load.list         their absolute paths, one per line, in load order
//
// The output is a pure function of the Spec (no timestamps), so callers can cache it under the
// hash of its inputs.
package initramfs

import (
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/switchyard-os/switchyard/testimages/cpio"
	"github.com/switchyard-os/switchyard/testimages/kmod"
)

// ModuleList is where the archive lists the modules to load, as the boot selector expects.
const ModuleList = "/lib/modules/load.list"

// Spec is what goes into the archive.
type Spec struct {
	Init    []byte        // the /init executable
	Release string        // kernel release, names the module directory
	Modules []kmod.Module // in load order
}

// Write writes the gzip-compressed archive for s to w.
func Write(w io.Writer, s Spec) error {
	if len(s.Init) == 0 {
		return fmt.Errorf("initramfs: no /init")
	}
	if s.Release == "" || strings.ContainsAny(s.Release, "/ ") {
		return fmt.Errorf("initramfs: bad kernel release %q", s.Release)
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	a := cpio.NewWriter(zw)
	modDir := path.Join("lib/modules", s.Release)
	var list strings.Builder
	steps := []func() error{
		func() error { return a.File("init", 0o755, s.Init) },
		func() error { return a.Dir("dev", 0o755) },
		func() error { return a.CharDev("dev/console", 0o600, 5, 1) },
		func() error { return a.Dir("proc", 0o555) },
		func() error { return a.Dir("sys", 0o555) },
		func() error { return a.Dir("newroot", 0o755) },
		func() error { return a.Dir("lib", 0o755) },
		func() error { return a.Dir("lib/modules", 0o755) },
		func() error { return a.Dir(modDir, 0o755) },
	}
	for _, m := range s.Modules {
		if m.Name == "" || strings.ContainsAny(m.Name, "/ ") {
			return fmt.Errorf("initramfs: bad module name %q", m.Name)
		}
		p := path.Join(modDir, m.Name+".ko")
		list.WriteString("/" + p + "\n")
		steps = append(steps, func() error { return a.File(p, 0o644, m.Data) })
	}
	steps = append(steps,
		func() error { return a.File(strings.TrimPrefix(ModuleList, "/"), 0o644, []byte(list.String())) },
		a.Close,
		zw.Close,
	)
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
	}
	return nil
}
