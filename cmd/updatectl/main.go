// Command updatectl is the host-side tool: it talks to the local update-engine and holds the
// host tools `updatectl gpt …` (the cgpt jobs) and `updatectl lock …` (the locksmithctl jobs).
//
// main only wires: each subcommand's cobra.Command is defined in its own file (newXCmd),
// and run(ctx, args, stdout, stderr) runs the tree, so tests can run commands in-process.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// errUsage marks an error that is the caller's wording: main prints it in one line with a
// hint to run the command's --help, and exits 2.
var errUsage = usage.ErrUsage

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

// newRoot returns updatectl's command tree; each command is defined in its own file.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "updatectl COMMAND",
		Short: "the host-side tool: talk to update-engine, the A/B partition table and the reboot lock",
	}
	return usage.Group(root,
		newDaemonCmd("status", "the daemon's state (LAST_CHECKED_TIME, PROGRESS, CURRENT_OP, NEW_VERSION, NEW_SIZE)"),
		newDaemonCmd("check", "ask the daemon to check for an update now"),
		newDaemonCmd("watch", "show progress until the daemon's state settles"),
		newDaemonCmd("mark-good", "mark the running USR partition good"),
		newDaemonCmd("rollback", "make the other, known-good USR partition boot next"),
		newInstallCmd(),
		newResetStatusCmd(),
		newGPTCmd(),
		newLockCmd(os.Getenv, lockMain),
	)
}

// run runs one updatectl command. --help prints that command's usage and returns nil; a
// usage error comes back wrapping errUsage and naming its command (usage.InCommand).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usage.Execute(ctx, newRoot(), args, stdout, stderr)
}
