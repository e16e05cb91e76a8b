package main

// The standard-flag-package parsing syctl still uses: syctl is the one binary not yet moved
// onto cobra (cmd/internal/usage), so its help block and usage errors follow the same
// rules through these helpers, kept here so the shared package holds one way. They go
// once syctl's commands are cobra.Commands.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// hiddenFlag starts the usage text of a flag kept only as an old name: it works, help omits it.
const hiddenFlag = "hidden: "

// usageParse parses args into fs. On -h or --help it prints the usage block for synopsis and fs
// on stdout and returns flag.ErrHelp; on a bad flag it returns an error wrapping usage.ErrUsage.
func usageParse(fs *flag.FlagSet, args []string, stdout io.Writer, synopsis string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		usagePrint(stdout, synopsis, fs)
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%w: %v", usage.ErrUsage, err)
	}
	return nil
}

// usagePrint writes the usage block: "usage: SYNOPSIS", then fs's flags (if fs is not nil and
// has any that are not hidden), each with its default.
func usagePrint(w io.Writer, synopsis string, fs *flag.FlagSet) {
	synopsis = strings.TrimPrefix(strings.TrimRight(synopsis, "\n"), "usage: ")
	fmt.Fprintf(w, "usage: %s\n", synopsis)
	if fs == nil {
		return
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, hiddenFlag) {
			return
		}
		if first {
			fmt.Fprint(w, "\nflags:\n")
			first = false
		}
		name, text := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(text, "\n", "\n    \t")
		if !isZero(f) {
			if _, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || f.DefValue != "false" {
				line += fmt.Sprintf(" (default %q)", f.DefValue)
			}
		}
		fmt.Fprintln(w, line)
	})
}

func isZero(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// isHelpArg reports whether arg asks for help.
func isHelpArg(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// isVersionArg reports whether arg asks for the version.
func isVersionArg(arg string) bool {
	return arg == "--version" || arg == "-version"
}
