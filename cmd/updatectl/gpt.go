package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

// gptLong is the description of `updatectl gpt`.
const gptLong = `Show and change the A/B partition table.

DISK is a whole disk (/dev/sda) or a disk image file; a partition's device (/dev/sda4) means
its disk and, for commands that take -i, that partition. Every change is absolute, written
crash-safely (backup copy first, then primary, each synced) and read back; a change that
would leave no bootable USR partition is refused, and a damaged GPT copy is repaired from
the good one before any change.`

// gptConfig is what the flags of one gpt subcommand say.
type gptConfig struct {
	command    string
	disk       string
	sectorSize int
	json       bool
	number     int
	priority   int
	tries      int
	successful int
	max        int
}

// gptCommands are the gpt subcommands: synopsis after the name, description, and whether
// the command takes -i N. They share gptRun.
var gptCommands = []struct {
	name, args, short string
	number            bool
}{
	{"show", "DISK [--json]", "partitions, A/B bits and the partition that boots next", false},
	{"set", "DISK -i N [--priority P] [--tries T] [--successful 0|1]", "set the A/B bits of USR partition N (unset ones are kept)", true},
	{"prioritize", "DISK -i N [--max P]", "cgpt's prioritize: N above every other USR partition", true},
	{"next", "DISK", "print the partition GRUB's gptprio.next boots, using a try", false},
	{"mark-good", "DISK -i N", "successful 1, tries 0, prioritized", true},
	{"prepare", "DISK -i N", "make N unbootable (0/0/0) before writing to it", true},
	{"flip", "DISK -i N", "boot N next, once (tries 1, successful 0, on top)", true},
	{"rollback", "DISK -i N", "make the known-good USR partition other than N boot next", true},
	{"repair", "DISK", "rewrite a damaged GPT copy from the good one", false},
}

// newGPTCmd returns `updatectl gpt` and its subcommands.
func newGPTCmd() *cobra.Command {
	var subs []*cobra.Command
	for _, gc := range gptCommands {
		cfg := &gptConfig{command: gc.name, priority: -1, tries: -1, successful: -1}
		c := &cobra.Command{Use: gc.name + " " + gc.args, Short: gc.short}
		fs := c.Flags()
		fs.IntVar(&cfg.sectorSize, "sector-size", 0, "logical sector size of an image file (default: detected; block devices report their own)")
		if gc.number {
			// -i is the flag's name, as in cgpt; --i works too.
			fs.IntVarP(&cfg.number, "i", "i", 0, "partition number")
		}
		switch gc.name {
		case "show":
			fs.BoolVar(&cfg.json, "json", false, "print JSON")
		case "set":
			fs.IntVar(&cfg.priority, "priority", -1, "priority 0–15")
			fs.IntVar(&cfg.tries, "tries", -1, "tries 0–15")
			fs.IntVar(&cfg.successful, "successful", -1, "successful 0 or 1")
		case "prioritize":
			fs.IntVar(&cfg.max, "max", 0, "highest priority to assign (default: the number of priority groups)")
		}
		c.RunE = usage.Run(func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return runGPT(ctx, *cfg, gc.number, args, stdout)
		})
		subs = append(subs, c)
	}
	return usage.Group(&cobra.Command{Use: "gpt COMMAND DISK", Short: "show and change the A/B partition table", Long: gptLong}, subs...)
}

// runGPT checks the arguments of a gpt subcommand and runs it.
func runGPT(ctx context.Context, cfg gptConfig, takesNumber bool, pos []string, stdout io.Writer) error {
	if len(pos) != 1 {
		return gptUsageError("gpt %s: want exactly one DISK, got %d arguments", cfg.command, len(pos))
	}
	cfg.disk = pos[0]
	// Like cgpt, a partition's device (/dev/sda4) names its disk and its number.
	disk, part, err := blockdev.Finder{}.WholeDisk(cfg.disk)
	if err != nil {
		return err
	}
	if part != 0 {
		if takesNumber && cfg.number != 0 && cfg.number != part {
			return gptUsageError("gpt %s: %s is partition %d, but -i says %d", cfg.command, cfg.disk, part, cfg.number)
		}
		if takesNumber {
			cfg.number = part
		}
		cfg.disk = disk
	}
	if takesNumber && cfg.number < 1 {
		return gptUsageError("gpt %s: -i N (the partition number) is required", cfg.command)
	}
	if cfg.command == "set" {
		if cfg.priority < 0 && cfg.tries < 0 && cfg.successful < 0 {
			return gptUsageError("gpt set: nothing to set (--priority, --tries, --successful)")
		}
		if cfg.priority > slots.MaxPriority || cfg.tries > slots.MaxTries || cfg.successful > 1 ||
			cfg.priority < -1 || cfg.tries < -1 || cfg.successful < -1 {
			return gptUsageError("gpt set: priority and tries are 0–15, successful is 0 or 1")
		}
	}
	return gptRun(ctx, cfg, stdout)
}

// gptUsageError is a usage error (main adds the hint to the command's --help).
func gptUsageError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

func gptRun(ctx context.Context, cfg gptConfig, stdout io.Writer) error {
	write := cfg.command != "show"
	d, err := openDisk(ctx, cfg.disk, cfg.sectorSize, write)
	if err != nil {
		return err
	}
	defer d.Close()
	if cfg.command == "show" {
		t, err := gpt.Read(ctx, d, d.Size(), d.SectorSize())
		if err != nil {
			return err
		}
		if cfg.json {
			return showJSON(stdout, d, t)
		}
		return showText(stdout, d, t)
	}
	var chosen slots.Slot
	var target int
	op := func(t *gpt.Table) error {
		switch cfg.command {
		case "set":
			cur, err := slots.Get(t, cfg.number)
			if err != nil {
				return err
			}
			s := cur.State
			if cfg.priority >= 0 {
				s.Priority = cfg.priority
			}
			if cfg.tries >= 0 {
				s.Tries = cfg.tries
			}
			if cfg.successful >= 0 {
				s.Successful = cfg.successful == 1
			}
			return slots.Set(t, cfg.number, s)
		case "prioritize":
			return slots.Prioritize(t, cfg.number, cfg.max)
		case "next":
			chosen, err = slots.Next(t)
			return err
		case "mark-good":
			return slots.MarkGood(t, cfg.number)
		case "prepare":
			return slots.Prepare(t, cfg.number)
		case "flip":
			return slots.Flip(t, cfg.number)
		case "rollback":
			target, err = slots.Rollback(t, cfg.number)
			return err
		case "repair":
			return nil // Write repairs
		}
		return fmt.Errorf("gpt: unhandled command %q", cfg.command)
	}
	var before *gpt.Table
	if cfg.command == "repair" {
		if before, err = gpt.Read(ctx, d, d.Size(), d.SectorSize()); err != nil {
			return err
		}
	}
	t, err := slots.Apply(ctx, d, op)
	if err != nil {
		return err
	}
	switch cfg.command {
	case "next":
		fmt.Fprintf(stdout, "%d %s %s\n", chosen.Number, chosen.Label, chosen.ID)
	case "rollback":
		s, _ := slots.Get(t, target)
		fmt.Fprintf(stdout, "partition %d (%s) boots next: %s\n", s.Number, s.Label, s.State)
	case "repair":
		switch {
		case before.PrimaryErr() != nil:
			fmt.Fprintf(stdout, "repaired the primary copy from the backup (%v)\n", before.PrimaryErr())
		case before.BackupErr() != nil:
			fmt.Fprintf(stdout, "repaired the backup copy from the primary (%v)\n", before.BackupErr())
		default:
			fmt.Fprintln(stdout, "both copies are valid and agree; nothing to repair")
		}
	default:
		s, _ := slots.Get(t, cfg.number)
		fmt.Fprintf(stdout, "partition %d (%s): %s\n", s.Number, s.Label, s.State)
	}
	return nil
}

// lockWait rides out udev's short shared lock while it probes a block device.
const lockWait = time.Second

// openDisk opens a disk; for an image file without --sector-size the sector size is found
// by looking for the GPT signature at 512 and 4096 bytes.
func openDisk(ctx context.Context, path string, sectorSize int, write bool) (*blockdev.Disk, error) {
	d, err := blockdev.Open(ctx, path, blockdev.Options{Write: write, SectorSize: sectorSize, LockWait: lockWait})
	if err != nil {
		return nil, err
	}
	if sectorSize != 0 || d.IsBlockDevice() {
		return d, nil
	}
	ss, err := gpt.DetectSectorSize(d)
	if err != nil || ss == d.SectorSize() {
		return d, nil // Read reports a missing GPT with its own error
	}
	d.Close()
	return blockdev.Open(ctx, path, blockdev.Options{Write: write, SectorSize: ss, LockWait: lockWait})
}

// gptPartition is one row of `show --json`.
type gptPartition struct {
	Number     int    `json:"number"`
	Label      string `json:"label"`
	Type       string `json:"type"`
	GUID       string `json:"guid"`
	FirstLBA   uint64 `json:"first_lba"`
	LastLBA    uint64 `json:"last_lba"`
	Attributes string `json:"attributes"`
	USR        bool   `json:"usr"`
	Priority   *int   `json:"priority,omitempty"`
	Tries      *int   `json:"tries,omitempty"`
	Successful *bool  `json:"successful,omitempty"`
}

type gptShow struct {
	Disk        string         `json:"disk"`
	Size        int64          `json:"size_bytes"`
	SectorSize  int            `json:"sector_size"`
	DiskGUID    string         `json:"disk_guid"`
	PrimaryErr  string         `json:"primary_error,omitempty"`
	BackupErr   string         `json:"backup_error,omitempty"`
	Partitions  []gptPartition `json:"partitions"`
	NextBoot    *int           `json:"next_boot"`
	NextBootErr string         `json:"next_boot_error,omitempty"`
}

func describe(d *blockdev.Disk, t *gpt.Table) gptShow {
	out := gptShow{Disk: d.Path(), Size: d.Size(), SectorSize: d.SectorSize(), DiskGUID: t.Header().DiskGUID.String(),
		Partitions: []gptPartition{}}
	if err := t.PrimaryErr(); err != nil {
		out.PrimaryErr = err.Error()
	}
	if err := t.BackupErr(); err != nil {
		out.BackupErr = err.Error()
	}
	for _, e := range t.Entries() {
		p := gptPartition{Number: e.Number, Label: e.Name, Type: e.Type.String(), GUID: e.ID.String(),
			FirstLBA: e.FirstLBA, LastLBA: e.LastLBA, Attributes: fmt.Sprintf("%#016x", e.Attributes), USR: e.Type == slots.USRType()}
		if p.USR {
			s := slots.Decode(e.Attributes)
			p.Priority, p.Tries, p.Successful = &s.Priority, &s.Tries, &s.Successful
		}
		out.Partitions = append(out.Partitions, p)
	}
	if s, err := slots.Peek(t); err == nil {
		out.NextBoot = &s.Number
	} else {
		out.NextBootErr = err.Error()
	}
	return out
}

func showJSON(w io.Writer, d *blockdev.Disk, t *gpt.Table) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(describe(d, t))
}

func showText(w io.Writer, d *blockdev.Disk, t *gpt.Table) error {
	s := describe(d, t)
	fmt.Fprintf(w, "disk %s: %d bytes, %d-byte sectors, disk GUID %s\n", s.Disk, s.Size, s.SectorSize, s.DiskGUID)
	if s.PrimaryErr != "" || s.BackupErr != "" {
		for _, e := range []string{s.PrimaryErr, s.BackupErr} {
			if e != "" {
				fmt.Fprintf(w, "WARNING: %s\n", e)
			}
		}
		fmt.Fprintf(w, "WARNING: run `updatectl gpt repair %s` (any change repairs it first)\n", s.Disk)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tLABEL\tTYPE\tPARTITION GUID\tPRIORITY\tTRIES\tSUCCESSFUL")
	for _, p := range s.Partitions {
		typ := typeName(p.Type)
		if p.USR {
			succ := 0
			if *p.Successful {
				succ = 1
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\n", p.Number, p.Label, typ, p.GUID, *p.Priority, *p.Tries, succ)
		} else {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t-\t-\t-\n", p.Number, p.Label, typ, p.GUID)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if s.NextBoot != nil {
		e, _ := t.Entry(*s.NextBoot)
		fmt.Fprintf(w, "next boot: partition %d (%s)\n", *s.NextBoot, e.Name)
	} else {
		fmt.Fprintf(w, "next boot: NONE (%s)\n", strings.TrimPrefix(s.NextBootErr, "slots: "))
	}
	return nil
}

// typeName names the type GUIDs of Flatcar's layout.
func typeName(guid string) string {
	names := map[gpt.GUID]string{
		layout.TypeEFI(): "efi", layout.TypeBIOS(): "bios", layout.TypeUSR(): "usr",
		layout.TypeData(): "data", layout.TypeReserved(): "reserved", layout.TypeResize(): "resize",
	}
	g, err := gpt.ParseGUID(guid)
	if err != nil {
		return guid
	}
	if n, ok := names[g]; ok {
		return n
	}
	return guid
}
