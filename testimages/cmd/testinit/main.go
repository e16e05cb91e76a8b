// Command testinit is /usr/bin/init of the test OS (see package testimages/testos). The boot
// selector execs it as PID 1 after switching the root; it never exits normally: it powers off
// or reboots the machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/switchyard-os/switchyard/testimages/testos"
	"golang.org/x/sys/unix"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	fmt.Fprintf(os.Stderr, "switchyard-testos: FATAL: %v\n", err)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	os.Exit(1)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("testinit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("fetch-timeout", 5*time.Second, "timeout of each switchyard.fetch request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return testos.Init(ctx, testos.InitConfig{
		Console:   stdout,
		Client:    &http.Client{Timeout: *timeout},
		Network:   testos.Network,
		Partition: os.Getenv("SWITCHYARD_BOOT_PARTITION"),
	})
}
