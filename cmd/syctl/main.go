// Command syctl is the release and operator tool: keys and TUF roles, payloads, and
// everything an operator does over omaha-server's admin API.
//
// main only wires: each command is a cobra.Command defined in its own file (newXCmd), the
// command groups hold them (newRoot), and run(ctx, args, stdout, stderr) runs the tree
// through cmd/internal/usage, so tests can run commands in-process. No flag takes its
// default from the environment: SYCTL_SERVER, SYCTL_TOKEN, SYCTL_CACERT and
// SYCTL_PASSPHRASE are read after parsing, for what the flags did not give, so help, the
// man pages and docs/commands.md name the variables and never show a value (a secret).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// errUsage marks an error that is the caller's wording: main prints it in one line with a
// hint to run the command's --help, and exits 2.
var errUsage = usage.ErrUsage

const syctlLong = `The release and operator tool.

Release engineering (offline): keys, tuf and payload.
Operating a server (--server, --token or SYCTL_SERVER, SYCTL_TOKEN): app, release, channel,
group, instance, rollout, host, token and activity.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(usage.Report(os.Stderr, "syctl", err))
}

// newRoot returns syctl's command tree; now is the clock a relative token --expires counts
// from.
func newRoot(now func() time.Time) *cobra.Command {
	root := &cobra.Command{
		Use:   "syctl COMMAND",
		Short: "the release and operator tool: keys, TUF, payloads and omaha-server's admin API",
		Long:  syctlLong,
	}
	return group(root, "",
		newKeysCmd(),
		newTUFCmd(),
		newPayloadCmd(),
		group(&cobra.Command{Use: "app COMMAND", Short: "create and list applications"}, "",
			newAppCreateCmd(), newAppListCmd()),
		group(&cobra.Command{Use: "release COMMAND", Short: "publish and list releases"}, "",
			newReleasePublishCmd(), newReleaseListCmd()),
		group(&cobra.Command{Use: "channel COMMAND", Short: "create, set, list and promote channels"}, "",
			newChannelCreateCmd(), newChannelSetCmd(), newChannelListCmd(), newPromoteCmd()),
		group(&cobra.Command{Use: "group COMMAND", Short: "create, update and list groups; their rollout policy"}, "",
			newGroupCreateCmd(), newGroupUpdateCmd(), newGroupListCmd(), newPolicyCmd()),
		group(&cobra.Command{Use: "instance COMMAND", Short: "list and show hosts"}, "",
			newInstanceListCmd(), newInstanceShowCmd()),
		newRolloutCmd(),
		newHostCmd(),
		newTokenCmd(now),
		newActivityCmd(now),
	)
}

// group makes cmd a command that only holds subs (usage.Group). Flags it does not know are
// ignored, so that a mistyped command followed by flags (`rollout frob --name prod`) is
// reported as the unknown command it is rather than as the first unknown flag. missing,
// when not empty, is the error for no command at all ("rollout needs status, pause or
// resume").
func group(cmd *cobra.Command, missing string, subs ...*cobra.Command) *cobra.Command {
	usage.Group(cmd, subs...)
	cmd.FParseErrWhitelist.UnknownFlags = true
	if missing != "" {
		groupRun := cmd.RunE
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%w: %s", errUsage, missing)
			}
			return groupRun(c, args)
		}
	}
	return cmd
}

// run runs one syctl command. --help prints that command's usage and returns nil; a
// usage error comes back wrapping errUsage and naming its command (usage.InCommand).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usage.Execute(ctx, newRoot(time.Now), args, stdout, stderr)
}
