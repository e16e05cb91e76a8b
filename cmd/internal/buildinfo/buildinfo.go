// Package buildinfo formats the version line the four binaries print for --version.
//
// The version and commit come from the Go toolchain's build information
// (runtime/debug.ReadBuildInfo): the main module's version (a pseudo-version or tag when
// built from a module, "(devel)" in a work tree) and the vcs.revision and vcs.modified
// settings `go build` stamps from git. Nothing is set by -ldflags, so there are no
// package-level version variables to forget. Only the packages under cmd import it.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// String returns "PROG VERSION (commit REV[, modified])" for the running binary.
func String(prog string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return prog + " (no build information)"
	}
	return Format(prog, bi)
}

// Format returns the version line for prog from bi.
func Format(prog string, bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var detail []string
	if rev != "" {
		detail = append(detail, "commit "+rev)
	} else {
		detail = append(detail, "commit unknown")
	}
	if modified {
		detail = append(detail, "modified")
	}
	return fmt.Sprintf("%s %s (%s)", prog, version, strings.Join(detail, ", "))
}
