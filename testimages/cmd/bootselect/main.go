// Command bootselect is the /init of the test images' initramfs: it runs gptprio.next on the
// virtio disk and hands over to the chosen USR partition (see package testimages/bootselect).
// It is built static (CGO_ENABLED=0) and runs as PID 1; it never exits: on any failure it says
// so on the console and powers the machine off.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/switchyard-os/switchyard/testimages/bootselect"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	fmt.Fprintf(os.Stderr, "switchyard-boot: FATAL: %v\n", err)
	if perr := bootselect.PowerOff(); perr != nil {
		fmt.Fprintln(os.Stderr, perr)
	}
	os.Exit(1)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bootselect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bootselect.Config
	fs.StringVar(&cfg.Disk, "disk", "/dev/vda", "whole disk holding the GPT")
	fs.StringVar(&cfg.ModuleList, "modules", "/lib/modules/load.list", "file listing the kernel modules to load, in order")
	fs.StringVar(&cfg.NewRoot, "newroot", "/newroot", "where ROOT is mounted before it becomes /")
	fs.StringVar(&cfg.Init, "init", "bin/init", "the test OS init, relative to the USR partition")
	fs.StringVar(&cfg.VersionFile, "version-file", "share/switchyard/version", "the version file, relative to the USR partition")
	fs.DurationVar(&cfg.DiskWait, "disk-wait", 30*time.Second, "how long to wait for the disk")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Console = stdout
	return bootselect.Boot(ctx, cfg)
}
