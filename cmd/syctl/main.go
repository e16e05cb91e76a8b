// Command syctl is the release and operator tool: keys and TUF roles, payloads, and
// everything an operator does over omaha-server's admin API.
//
// main only wires: each command group lives in its own file as a function of the form
// run<Group>(ctx, args, stdout, stderr) error, so tests can run them in-process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// errUsage marks an error that is the caller's wording; main prints usage with it.
var errUsage = errors.New("usage")

const usage = `usage: syctl COMMAND [ARGS]

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
  host      enroll, show, list and remove host keys
  token     create, list and revoke admin API tokens
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "syctl:", err)
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
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}
