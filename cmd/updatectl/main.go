// Command updatectl is the host-side tool: it talks to the local update-engine and holds the
// host tools `updatectl gpt …` (the cgpt jobs) and `updatectl lock …` (the locksmithctl jobs).
//
// main only wires: each subcommand lives in its own file as a function of the form
// run<Name>(ctx, args, stdout, stderr) error, so tests can run them in-process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks an error that is the caller's wording; main prints usage with it.
var errUsage = errors.New("usage")

const usage = `usage: updatectl COMMAND [ARGS]

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
	if err != nil {
		fmt.Fprintln(os.Stderr, "updatectl:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}
