// Package usage holds the command-line conventions the four binaries (omaha-server, syctl,
// update-engine, updatectl) share, on top of the standard flag package:
//
//   - -h, -help or --help on any command prints one usage block (the synopsis, then the
//     flags) on stdout, and the command exits 0 (Parse returns flag.ErrHelp).
//   - A usage error (an unknown flag, a missing argument) is one line on stderr naming the
//     problem, then a hint "run 'PROG CMD --help'", and exit status 2; never the whole usage.
//   - Any other error is one line "PROG: error" and exit status 1.
//
// Errors that are the caller's wording wrap ErrUsage. A flag whose usage text starts with
// Hidden (an old name kept for compatibility) is accepted but not listed in help. The flag
// package itself prints nothing: Parse silences it and reports through the returned error.
// Only the packages under cmd import this package.
package usage

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrUsage marks an error in how a command was called.
var ErrUsage = errors.New("usage")

// Hidden starts the usage text of a flag kept only as an old name: it works, help omits it.
const Hidden = "hidden: "

// Parse parses args into fs. On -h or --help it prints the usage block for synopsis and fs
// on stdout and returns flag.ErrHelp; on a bad flag it returns an error wrapping ErrUsage.
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer, synopsis string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		Print(stdout, synopsis, fs)
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return nil
}

// Print writes the usage block: "usage: SYNOPSIS", then fs's flags (if fs is not nil and
// has any that are not hidden), each with its default.
func Print(w io.Writer, synopsis string, fs *flag.FlagSet) {
	synopsis = strings.TrimPrefix(strings.TrimRight(synopsis, "\n"), "usage: ")
	fmt.Fprintf(w, "usage: %s\n", synopsis)
	if fs == nil {
		return
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, Hidden) {
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

// IsHelp reports whether arg asks for help.
func IsHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// IsVersion reports whether arg asks for the version.
func IsVersion(arg string) bool {
	return arg == "--version" || arg == "-version"
}

// commandError names the command an error came from, for the hint.
type commandError struct {
	cmd string
	err error
}

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// InCommand records that err came from the command cmd ("release publish"), so Report's
// hint names it. The innermost command recorded wins. It returns nil for nil.
func InCommand(cmd string, err error) error {
	var ce *commandError
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return &commandError{cmd: cmd, err: err}
}

// Report prints err the way the binaries do and returns the exit status: 0 for nil or
// flag.ErrHelp (the help is already printed), 2 for an error wrapping ErrUsage (the problem
// in one line and the hint "run 'PROG CMD --help'", CMD as recorded by InCommand), 1 for
// anything else.
func Report(stderr io.Writer, prog string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, ErrUsage) {
		msg := strings.TrimPrefix(err.Error(), ErrUsage.Error()+": ")
		msg, _, _ = strings.Cut(msg, "\n")
		cmd := ""
		var ce *commandError
		if errors.As(err, &ce) {
			cmd = ce.cmd
		}
		fmt.Fprintf(stderr, "%s: %s\n", prog, msg)
		full := prog
		if cmd != "" {
			full += " " + cmd
		}
		fmt.Fprintf(stderr, "run '%s --help' for usage\n", full)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return 1
}
