// Package bootselect is the boot selector of the test images: the /init of their initramfs. It
// does what GRUB's gptprio.next does on a Flatcar host, with the same code the update engine
// uses on the GPT (partitions/gpt, partitions/slots, partitions/blockdev), then hands over to
// the chosen USR partition.
//
// Boot sequence (Boot):
//
//  1. mount devtmpfs on /dev, proc on /proc, sysfs on /sys;
//  2. load the kernel modules named, in order, by ModuleList (one path per line, dependencies
//     first, decompressed .ko files) with finit_module(2);
//  3. wait for the disk, read and validate both GPT copies, choose the slot (Choose: the highest
//     priority with tries > 0 or successful; a try is consumed and the GPT rewritten crash-safely
//     before anything else happens), print the choice;
//  4. mount ROOT (ext4, read-write) on NewRoot and the chosen USR partition read-only on
//     NewRoot/usr, read NewRoot/usr/VersionFile;
//  5. print the stable line "switchyard-boot: partition=N label=L version=V", move /dev, /proc
//     and /sys under NewRoot, make NewRoot the root (MS_MOVE + chroot, as switch_root does;
//     pivot_root does not work from an initramfs) and exec NewRoot/usr/Init.
//
// When no partition is bootable it prints "switchyard-boot: NO BOOTABLE USR PARTITION" with the
// slot states and powers off; any other failure prints "switchyard-boot: FATAL: ..." and powers
// off, so a VM never hangs silently. The pure part (Choose, PartitionDevice) runs on image files
// anywhere; Boot needs Linux and PID 1.
package bootselect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

// LabelRoot is the GPT label of the partition holding /var/lib/switchyard and /etc.
const LabelRoot = "ROOT"

// Choice is the outcome of a gptprio.next run.
type Choice struct {
	Slot   slots.Slot // the chosen slot as it was before the try was consumed
	Tries  int        // tries left after this boot
	Root   gpt.Entry  // the ROOT partition
	States []slots.Slot
}

// Line is the stable console line announcing a boot.
func (c Choice) Line(version string) string {
	return fmt.Sprintf("switchyard-boot: partition=%d label=%s version=%s", c.Slot.Number, c.Slot.Label, version)
}

// Describe lists every slot's state, for the console.
func Describe(states []slots.Slot) string {
	var parts []string
	for _, s := range states {
		succ := 0
		if s.Successful {
			succ = 1
		}
		parts = append(parts, fmt.Sprintf("%d/%s priority=%d tries=%d successful=%d", s.Number, s.Label, s.Priority, s.Tries, succ))
	}
	return strings.Join(parts, "; ")
}

// Choose runs gptprio.next on the disk: it reads both GPT copies (repairing a damaged one, as
// GRUB does), chooses the slot, consumes a try when the slot has one, and writes the table
// back crash-safely (slots.Apply) before returning. slots.ErrNoBootable means nothing can
// boot; the returned Choice still carries the states for the message.
func Choose(ctx context.Context, dev slots.Device) (Choice, error) {
	var c Choice
	_, err := slots.Apply(ctx, dev, func(t *gpt.Table) error {
		c.States = slots.List(t)
		for _, e := range t.Entries() {
			if e.Name == LabelRoot {
				c.Root = e
			}
		}
		if c.Root.Number == 0 {
			return fmt.Errorf("bootselect: no partition labelled %s", LabelRoot)
		}
		s, err := slots.Next(t)
		if err != nil {
			return err
		}
		c.Slot = s
		c.Tries = max(s.Tries-1, 0)
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("bootselect: gptprio.next: %w", err)
	}
	return c, nil
}

// PartitionDevice names partition n of disk the way the kernel does: /dev/vda3, but
// /dev/nvme0n1p3 when the disk name ends in a digit.
func PartitionDevice(disk string, n int) string {
	if disk != "" && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}

// IsNoBootable reports whether err means that no slot can boot.
func IsNoBootable(err error) bool { return errors.Is(err, slots.ErrNoBootable) }
