// Package usage holds the command-line conventions the four binaries (omaha-server, syctl,
// update-engine, updatectl) share, on top of github.com/spf13/cobra: each binary builds a
// tree of cobra.Commands (one per subcommand, flags declared on the command with pflag) and
// runs it through Execute, which gives every binary the same behaviour:
//
//   - -h or --help on any command prints one usage block (the synopsis, the description,
//     the subcommands, then the flags) on stdout, and the command exits 0.
//   - A usage error (an unknown flag or command, a missing or extra argument) is one line on
//     stderr naming the problem, then a hint "run 'PROG CMD --help'", and exit status 2;
//     never the whole usage. Cobra prints nothing itself (SilenceErrors, SilenceUsage): the
//     error comes back from Execute and main reports it with Report.
//   - Any other error is one line "PROG: error" and exit status 1.
//   - --version prints "PROG VERSION (commit REV)" (package buildinfo).
//   - Single-dash long flags (-config FILE, -listen=ADDR) keep working, as they did with
//     the standard flag package that Flatcar's tools and our scripts were written against:
//     Normalize rewrites them to --config before pflag sees them (normalize.go).
//   - PROG completion bash|zsh|fish prints a completion script (cobra's generator), and the
//     hidden PROG man DIR writes the man pages of the whole tree (docs.go), which is how
//     `make packages` builds them; Markdown renders the same tree for docs/commands.md.
//
// Errors that are the caller's wording wrap ErrUsage; Execute records which command they
// came from (InCommand) so the hint names it. Only the packages under cmd import this
// package.
package usage

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUsage marks an error in how a command was called.
var ErrUsage = errors.New("usage")

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

// Report prints err the way the binaries do and returns the exit status: 0 for nil, 2 for
// an error wrapping ErrUsage (the problem in one line and the hint "run 'PROG CMD --help'",
// CMD as recorded by InCommand), 1 for anything else.
func Report(stderr io.Writer, prog string, err error) int {
	if err == nil {
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
