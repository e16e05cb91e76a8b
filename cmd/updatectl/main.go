// Command updatectl is the host-side tool: it talks to the local update-engine and holds the
// host tools `updatectl gpt …` (the cgpt jobs) and `updatectl lock …` (the locksmithctl jobs).
//
// main only wires: each subcommand lives in its own file as a function of the form
// run<Name>(ctx, args, stdout, stderr) error, so tests can run them in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/switchyard-os/switchyard/cmd/internal/buildinfo"
	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// errUsage marks an error that is the caller's wording: main prints it in one line with a
// hint to run the command's --help, and exits 2.
var errUsage = usage.ErrUsage

const updatectlUsage = `updatectl COMMAND [ARGS]   (updatectl COMMAND --help for a command's usage; updatectl --version)

commands:
  status     the daemon's state (LAST_CHECKED_TIME, PROGRESS, CURRENT_OP, NEW_VERSION, NEW_SIZE)
  check      ask the daemon to check for an update now
  watch      show progress until the daemon's state settles
  mark-good  mark the running USR partition good
  rollback   make the other, known-good USR partition boot next
  install    install a release from local media: install [--socket S] DIR|FILE.tar
  reset-status  back to IDLE after a failure, or abandon an update waiting for its reboot
  gpt     show and change the A/B partition table (show, set, prioritize, next, mark-good, repair)
  lock    the reboot lock (status, lock, unlock, set-max, reclaim)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx; once it has, the default action is back, so a second
	// signal ends the process even if a system call does not return for the first.
	restored := make(chan struct{})
	go func() {
		<-ctx.Done()
		stop()
		close(restored)
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	<-restored
	os.Exit(usage.Report(os.Stderr, "updatectl", err))
}

// run runs one updatectl command. --help prints that command's usage and returns nil; a
// usage error comes back wrapping errUsage and naming its command (usage.InCommand).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && usage.IsVersion(args[0]) {
		fmt.Fprintln(stdout, buildinfo.String("updatectl"))
		return nil
	}
	// The hint of a usage error names the command, and the gpt command, when known.
	cmd := ""
	if len(args) > 0 && slices.Contains([]string{"status", "check", "watch", "mark-good", "rollback", "install", "reset-status", "gpt", "lock"}, args[0]) {
		cmd = args[0]
		if cmd == "gpt" && len(args) > 1 && slices.Contains([]string{"show", "set", "prioritize", "next", "mark-good", "prepare", "flip", "rollback", "repair"}, args[1]) {
			cmd += " " + args[1]
		}
	}
	err := usage.InCommand(cmd, dispatch(ctx, args, stdout, stderr))
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "status", "check", "watch", "mark-good", "rollback":
		return runDaemon(ctx, args, stdout, stderr)
	case "install":
		return runInstall(ctx, args[1:], stdout, stderr)
	case "reset-status":
		return runResetStatus(ctx, args[1:], stdout, stderr)
	case "gpt":
		return runGPT(ctx, args[1:], stdout, stderr)
	case "lock":
		return runLock(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage.Print(stdout, updatectlUsage, nil)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}
