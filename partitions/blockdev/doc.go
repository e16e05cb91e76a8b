// Package blockdev opens whole disks and disk image files for the GPT code and finds the
// partition that backs a mount point. It is the only package in the module that issues
// ioctls.
//
// A Disk is a block device or a regular file: its size comes from BLKGETSIZE64 or stat, its
// logical sector size from BLKSSZGET (files: 512 unless the caller says otherwise), and Sync
// is fsync(2), which on a Linux block device flushes the page cache and sends a cache flush
// to the drive. A Disk opened for writing holds an exclusive flock(2) on the device node or
// file itself — the convention systemd and udev follow for whole-disk devices — so a second
// writer, from this process or another, gets ErrHeld instead of racing. Readers take no lock.
//
// Finding the partition behind a mount point (for /usr) reads /proc/self/mountinfo for the
// device number (major:minor), then /sys/dev/block/MAJ:MIN: a device-mapper device (dm-verity
// /usr) is followed through its single "slaves" entry, the "partition" file gives the number,
// and the parent directory is the whole disk whose DEVNAME names its node under /dev. The
// three roots are fields of Finder so tests can point them at a prepared tree.
package blockdev
