// Command syctl is the release and operator tool: keys and TUF roles, payloads, and
// everything an operator does over omaha-server's admin API.
//
// main only wires: each command group lives in its own file as a function of the form
// run<Group>(ctx, args, stdout, stderr) error, so tests can run them in-process.
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
	"time"

	"github.com/switchyard-os/switchyard/cmd/internal/buildinfo"
	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// errUsage marks an error that is the caller's wording: main prints it in one line with a
// hint to run the command's --help, and exits 2.
var errUsage = usage.ErrUsage

const syctlUsage = `syctl COMMAND [ARGS]   (syctl COMMAND --help for a command's usage; syctl --version)

release engineering (offline):
  keys      generate the TUF role keys and the payload key
  tuf       add payload targets and sign targets metadata; rotate the root
  payload   build, sign, verify and apply update payloads

operating a server (--server, --token or SYCTL_SERVER, SYCTL_TOKEN):
  app       create and list applications
  release   publish releases
  channel   create, set and list channels
  group     create, update and list groups
  instance  list and show hosts
  rollout   status, pause and resume of a group's rollout
  host      enroll, show, list and remove host keys
  token     create, list and revoke admin API tokens
  activity  the activity log: who changed what, and every automatic halt
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(usage.Report(os.Stderr, "syctl", err))
}

// groupUsage is each command group's usage, printed by `syctl GROUP --help`.
var groupUsage = map[string]string{
	"keys": keysUsage, "tuf": tufUsage, "payload": payloadUsage,
	"app": adminUsage, "release": adminUsage, "channel": adminUsage, "group": adminUsage + "\n" + rolloutUsage,
	"instance": adminUsage, "rollout": rolloutUsage, "host": hostUsage,
}

// run runs one syctl command. --help anywhere prints that command's usage and returns nil;
// a usage error comes back wrapping errUsage and naming its command (usage.InCommand).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && usage.IsVersion(args[0]) {
		fmt.Fprintln(stdout, buildinfo.String("syctl"))
		return nil
	}
	if len(args) >= 1 && len(args) <= 2 && usage.IsHelp(args[len(args)-1]) {
		if u, ok := groupUsage[args[0]]; ok {
			usage.Print(stdout, u, nil)
			return nil
		}
	}
	err := usage.InCommand(commandPath(args), dispatch(ctx, args, stdout, stderr))
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// subcommands lists each group's subcommands, for the hint of a usage error.
var subcommands = map[string][]string{
	"keys":     {"init"},
	"tuf":      {"init", "add-target", "remove-target", "sign-targets", "rotate-root", "sign-root", "status", "publish-root", "server-status"},
	"payload":  {"build", "sign", "verify", "apply"},
	"app":      {"create", "list"},
	"release":  {"publish", "list"},
	"channel":  {"create", "set", "list", "promote"},
	"group":    {"create", "update", "list", "policy"},
	"instance": {"list", "show"},
	"rollout":  {"status", "pause", "resume"},
	"host":     {"enroll", "show", "list", "remove"},
}

// commandPath returns the command words of args a usage error's hint names: the group and,
// when it is one of the group's, the subcommand ("release publish", "group policy set").
func commandPath(args []string) string {
	if len(args) == 0 {
		return ""
	}
	subs, ok := subcommands[args[0]]
	if !ok {
		return ""
	}
	if len(args) < 2 || !slices.Contains(subs, args[1]) {
		return args[0]
	}
	if args[0] == "group" && args[1] == "policy" && len(args) > 2 && (args[2] == "set" || args[2] == "show") {
		return "group policy " + args[2]
	}
	return args[0] + " " + args[1]
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "keys":
		return runKeys(ctx, args[1:], stdout, stderr)
	case "tuf":
		return runTUF(ctx, args[1:], stdout, stderr)
	case "payload":
		return runPayload(ctx, args[1:], stdout, stderr)
	case "app", "release", "channel", "group", "instance":
		return runAdmin(ctx, args, stdout, stderr)
	case "rollout":
		return runRollout(ctx, args, stdout, stderr)
	case "host":
		return runHost(ctx, args, stdout, stderr)
	case "token":
		return runToken(ctx, args, stdout, stderr, time.Now)
	case "activity":
		return runActivity(ctx, args[1:], stdout, stderr, time.Now)
	case "help", "-h", "--help":
		usage.Print(stdout, syctlUsage, nil)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}
