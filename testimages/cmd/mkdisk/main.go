// Command mkdisk writes a Flatcar-layout disk image file (partitions 1 EFI-SYSTEM,
// 2 BIOS-BOOT, 3 USR-A, 4 USR-B, 6 OEM, 7 OEM-CONFIG, 9 ROOT; USR-A 1/0/1, USR-B 0/0/0) with
// partitions/layout, without root and without loop devices. Sizes default to a few MiB for
// tests; --production uses Flatcar's (1 GiB USR partitions, a sparse file). With
// --usr-a-image it copies a filesystem image into USR-A.
//
//	mkdisk -o disk.img [--sector-size 512|4096] [--usr-size 2MiB] [--usr-a-image usr.img]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/switchyard-os/switchyard/partitions/layout"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdisk:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// config is what the flags say.
type config struct {
	output    string
	usrAImage string
	opts      layout.Options
}

// size is a flag.Value for byte sizes with an optional KiB/MiB/GiB suffix.
type size struct{ v *int64 }

func (s size) String() string {
	if s.v == nil {
		return "0"
	}
	return strconv.FormatInt(*s.v, 10)
}

func (s size) Set(text string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(text, u.suffix); ok {
			text, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return fmt.Errorf("%q is not a size (bytes, or a number with KiB, MiB or GiB)", text)
	}
	*s.v = n * mult
	return nil
}

func parse(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("mkdisk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sz := layout.Small()
	production := fs.Bool("production", false, "Flatcar's production sizes (1 GiB USR partitions)")
	fs.StringVar(&cfg.output, "o", "", "output image file (required)")
	fs.StringVar(&cfg.usrAImage, "usr-a-image", "", "filesystem image to copy into USR-A")
	fs.IntVar(&cfg.opts.SectorSize, "sector-size", 512, "logical sector size: 512 or 4096")
	fs.Var(size{&sz.EFI}, "esp-size", "EFI-SYSTEM size")
	fs.Var(size{&sz.BIOS}, "bios-size", "BIOS-BOOT size")
	fs.Var(size{&sz.USR}, "usr-size", "size of USR-A and of USR-B")
	fs.Var(size{&sz.OEM}, "oem-size", "OEM size")
	fs.Var(size{&sz.OEMConfig}, "oem-config-size", "OEM-CONFIG size")
	fs.Var(size{&sz.Root}, "root-size", "ROOT size")
	fs.Var(size{&cfg.opts.DiskSize}, "disk-size", "whole image size (default: just large enough)")
	fs.Var(size{&cfg.opts.Align}, "align", "partition alignment (default 1MiB)")
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 || cfg.output == "" {
		return cfg, fmt.Errorf("%w: mkdisk -o FILE [flags] (no other arguments)", errUsage)
	}
	if *production {
		// Production sizes, except where a size flag was given.
		prod := layout.Production()
		fields := map[string][2]*int64{"esp-size": {&prod.EFI, &sz.EFI}, "bios-size": {&prod.BIOS, &sz.BIOS},
			"usr-size": {&prod.USR, &sz.USR}, "oem-size": {&prod.OEM, &sz.OEM},
			"oem-config-size": {&prod.OEMConfig, &sz.OEMConfig}, "root-size": {&prod.Root, &sz.Root}}
		fs.Visit(func(f *flag.Flag) {
			if p, ok := fields[f.Name]; ok {
				*p[0] = *p[1]
			}
		})
		sz = prod
	}
	cfg.opts.Sizes = sz
	return cfg, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parse(args, stderr)
	if err != nil {
		return err
	}
	var usr io.Reader
	if cfg.usrAImage != "" {
		f, err := os.Open(cfg.usrAImage)
		if err != nil {
			return err
		}
		defer f.Close()
		usr = f
	}
	if err := layout.WriteFile(ctx, cfg.output, cfg.opts, usr); err != nil {
		return err
	}
	fi, err := os.Stat(cfg.output)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes, %d-byte sectors, Flatcar layout (USR-A %d bytes)\n",
		cfg.output, fi.Size(), cfg.opts.SectorSize, cfg.opts.Sizes.USR)
	return nil
}
