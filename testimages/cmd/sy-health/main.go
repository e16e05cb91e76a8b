// Command sy-health is the test OS's health check: it runs testos.Health and exits non-zero
// when a check fails. The test OS lists it in /usr/share/switchyard/services.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/switchyard-os/switchyard/testimages/testos"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sy-health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	network := fs.String("address", testos.Network.Address.String(), "the address eth0 must have")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return testos.Health(ctx, stdout, *network)
}
