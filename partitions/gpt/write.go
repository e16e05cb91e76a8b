package gpt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// step is one positioned write or a sync, in the order the crash analysis of the package doc
// depends on.
type step struct {
	what string
	off  int64
	data []byte // nil for a sync
}

func (t *Table) run(ctx context.Context, dev Device, steps []step) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.data == nil {
			if err := dev.Sync(); err != nil {
				return fmt.Errorf("gpt: sync after %s: %w", s.what, err)
			}
			continue
		}
		if _, err := dev.WriteAt(s.data, s.off); err != nil {
			return fmt.Errorf("gpt: writing %s: %w", s.what, err)
		}
	}
	return nil
}

// sealHeader returns a copy of sector with the given locations and entries CRC, and a fresh
// header CRC. Every other byte is kept.
func sealHeader(sector []byte, myLBA, altLBA, entriesLBA uint64, entriesCRC uint32) []byte {
	out := bytes.Clone(sector)
	le := binary.LittleEndian
	le.PutUint64(out[offMyLBA:], myLBA)
	le.PutUint64(out[offAltLBA:], altLBA)
	le.PutUint64(out[offEntriesLBA:], entriesLBA)
	le.PutUint32(out[offEntriesCRC:], entriesCRC)
	size := le.Uint32(out[offHeaderSize:])
	le.PutUint32(out[offHeaderCRC:], headerCRC(out, size))
	return out
}

// Repair rewrites the damaged or disagreeing copy from the authoritative one (entries, sync,
// header, sync) and reads the table back. A clean table is left alone. Pending attribute
// edits are kept pending.
func (t *Table) Repair(ctx context.Context, dev Device) error {
	if t.Clean() {
		return nil
	}
	a := t.authCopy()
	h := a.hdr
	arrSectors := h.arraySectors(t.sectorSize)
	var name string
	var hdrLBA, altLBA, entriesLBA uint64
	if !t.useBackup {
		// Rebuild the backup where the primary says it is; keep a valid backup's array
		// location, else put the array right before the header.
		name, hdrLBA, altLBA = "backup", h.AlternateLBA, 1
		entriesLBA = hdrLBA - arrSectors
		if t.backup.err == nil && t.backup.lba == hdrLBA {
			entriesLBA = t.backup.hdr.EntriesLBA
		}
	} else {
		name, hdrLBA, altLBA, entriesLBA = "primary", 1, a.lba, 2
	}
	sector := sealHeader(a.sector, hdrLBA, altLBA, entriesLBA, crc32.ChecksumIEEE(a.arr))
	// The rebuilt copy must pass the same checks as one read from disk.
	if _, err := checkHeader(sector, t.sectorSize, t.sectors, hdrLBA); err != nil {
		return fmt.Errorf("gpt: cannot rebuild the %s from the %s: %w", name, otherName(name), err)
	}
	steps := []step{
		{name + " entries", int64(entriesLBA) * int64(t.sectorSize), a.arr},
		{name + " entries", 0, nil},
		{name + " header", int64(hdrLBA) * int64(t.sectorSize), sector},
		{name + " header", 0, nil},
	}
	if err := t.run(ctx, dev, steps); err != nil {
		return err
	}
	pending := t.entries
	fresh, err := Read(ctx, dev, int64(t.sectors)*int64(t.sectorSize), t.sectorSize)
	if err != nil {
		return fmt.Errorf("%w: after repairing the %s: %v", ErrReadBack, name, err)
	}
	if !fresh.Clean() || !bytes.Equal(fresh.authCopy().arr, a.arr) {
		return fmt.Errorf("%w: the %s is still not a copy of the %s", ErrReadBack, name, otherName(name))
	}
	*t = *fresh
	t.entries = pending
	return nil
}

func otherName(name string) string {
	if name == "primary" {
		return "backup"
	}
	return "primary"
}

// Write makes the pending attribute edits durable. It repairs an unclean table first, then
// writes backup entries, sync, backup header, sync, primary entries, sync, primary header,
// sync, and reads both copies back. With no pending edits on a clean table it writes nothing.
func (t *Table) Write(ctx context.Context, dev Device) error {
	if err := t.Repair(ctx, dev); err != nil {
		return err
	}
	if !t.Dirty() {
		return nil
	}
	sum := crc32.ChecksumIEEE(t.entries)
	h := t.authCopy().hdr
	h.EntriesCRC = sum
	if err := checkEntries(h, t.entries); err != nil {
		return err
	}
	p, b := t.primary, t.backup
	ss := int64(t.sectorSize)
	bsec := sealHeader(b.sector, b.lba, 1, b.hdr.EntriesLBA, sum)
	psec := sealHeader(p.sector, 1, p.hdr.AlternateLBA, p.hdr.EntriesLBA, sum)
	steps := []step{
		{"backup entries", int64(b.hdr.EntriesLBA) * ss, t.entries},
		{"backup entries", 0, nil},
		{"backup header", int64(b.lba) * ss, bsec},
		{"backup header", 0, nil},
		{"primary entries", int64(p.hdr.EntriesLBA) * ss, t.entries},
		{"primary entries", 0, nil},
		{"primary header", int64(p.lba) * ss, psec},
		{"primary header", 0, nil},
	}
	if err := t.run(ctx, dev, steps); err != nil {
		return err
	}
	fresh, err := Read(ctx, dev, int64(t.sectors)*ss, t.sectorSize)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrReadBack, err)
	}
	if !fresh.Clean() || !bytes.Equal(fresh.primary.arr, t.entries) ||
		!bytes.Equal(fresh.primary.sector, psec) || !bytes.Equal(fresh.backup.sector, bsec) {
		return fmt.Errorf("%w: the table read back is not the table written", ErrReadBack)
	}
	*t = *fresh
	return nil
}
