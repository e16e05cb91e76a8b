package gpt

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"unicode/utf16"
)

// DefaultNumEntries is the entry count of a created table (UEFI's minimum array is 16 KiB).
const DefaultNumEntries = 128

// NewPartition describes one partition of a table to create.
type NewPartition struct {
	Number     int // 1-based entry index
	Type       GUID
	ID         GUID
	FirstLBA   uint64
	LastLBA    uint64
	Attributes uint64
	Name       string // at most 36 UTF-16 code units
}

// Layout describes a whole table to create.
type Layout struct {
	SectorSize int    // 512 or 4096
	Sectors    uint64 // disk size in sectors; the backup header goes in the last one
	DiskGUID   GUID
	NumEntries int // 0 means DefaultNumEntries
	Partitions []NewPartition
}

func (l Layout) numEntries() int {
	if l.NumEntries == 0 {
		return DefaultNumEntries
	}
	return l.NumEntries
}

// UsableRange returns the first and last usable LBA Create will record for this layout.
func (l Layout) UsableRange() (first, last uint64) {
	arr := (uint64(l.numEntries())*MinEntrySize + uint64(l.SectorSize) - 1) / uint64(l.SectorSize)
	return 2 + arr, l.Sectors - 2 - arr
}

// Create writes a brand-new GPT: a protective MBR in sector 0, then the backup entries and
// header, then the primary entries and header, then a sync. It is for image builders; it
// overwrites whatever table the device had.
func Create(ctx context.Context, w WriteSyncer, l Layout) error {
	if l.SectorSize != 512 && l.SectorSize != 4096 {
		return fmt.Errorf("%w: sector size %d (want 512 or 4096)", ErrInvalidLayout, l.SectorSize)
	}
	n := l.numEntries()
	if n < 1 || n*MinEntrySize > MaxEntryArrayBytes {
		return fmt.Errorf("%w: %d entries", ErrInvalidLayout, n)
	}
	first, last := l.UsableRange()
	if l.Sectors < 2*first || first > last {
		return fmt.Errorf("%w: %d sectors is too small for a table", ErrInvalidLayout, l.Sectors)
	}
	arr := make([]byte, n*MinEntrySize)
	parts := append([]NewPartition(nil), l.Partitions...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].FirstLBA < parts[j].FirstLBA })
	seen := map[int]bool{}
	for i, p := range parts {
		switch {
		case p.Number < 1 || p.Number > n || seen[p.Number]:
			return fmt.Errorf("%w: partition number %d (unique, 1–%d)", ErrInvalidLayout, p.Number, n)
		case p.Type.IsZero():
			return fmt.Errorf("%w: partition %d has the zero type GUID", ErrInvalidLayout, p.Number)
		case p.FirstLBA < first || p.LastLBA > last || p.FirstLBA > p.LastLBA:
			return fmt.Errorf("%w: partition %d spans LBA %d–%d outside the usable range %d–%d", ErrInvalidLayout, p.Number, p.FirstLBA, p.LastLBA, first, last)
		case i > 0 && p.FirstLBA <= parts[i-1].LastLBA:
			return fmt.Errorf("%w: partitions %d and %d overlap", ErrInvalidLayout, parts[i-1].Number, p.Number)
		}
		seen[p.Number] = true
		name := utf16.Encode([]rune(p.Name))
		if len(name) > entryNameLen/2 {
			return fmt.Errorf("%w: partition %d name %q longer than 36 UTF-16 units", ErrInvalidLayout, p.Number, p.Name)
		}
		e := arr[(p.Number-1)*MinEntrySize : p.Number*MinEntrySize]
		copy(e[offEntryType:], p.Type[:])
		copy(e[offEntryID:], p.ID[:])
		le := binary.LittleEndian
		le.PutUint64(e[offEntryFirst:], p.FirstLBA)
		le.PutUint64(e[offEntryLast:], p.LastLBA)
		le.PutUint64(e[offEntryAttr:], p.Attributes)
		for j, u := range name {
			le.PutUint16(e[offEntryName+2*j:], u)
		}
	}
	sum := crc32.ChecksumIEEE(arr)
	ss := int64(l.SectorSize)
	arrSectors := first - 2
	backupLBA := l.Sectors - 1

	sector := make([]byte, l.SectorSize)
	copy(sector, Signature)
	le := binary.LittleEndian
	le.PutUint32(sector[offRevision:], Revision)
	le.PutUint32(sector[offHeaderSize:], MinHeaderSize)
	le.PutUint64(sector[offFirstUse:], first)
	le.PutUint64(sector[offLastUse:], last)
	copy(sector[offDiskGUID:], l.DiskGUID[:])
	le.PutUint32(sector[offNumEntries:], uint32(n))
	le.PutUint32(sector[offEntrySize:], MinEntrySize)
	primary := sealHeader(sector, 1, backupLBA, 2, sum)
	backup := sealHeader(sector, backupLBA, 1, backupLBA-arrSectors, sum)

	writes := []struct {
		off  int64
		data []byte
	}{
		{0, protectiveMBR(l.SectorSize, l.Sectors)},
		{int64(backupLBA-arrSectors) * ss, arr},
		{int64(backupLBA) * ss, backup},
		{2 * ss, arr},
		{ss, primary},
	}
	for _, wr := range writes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := w.WriteAt(wr.data, wr.off); err != nil {
			return fmt.Errorf("gpt: creating table: %w", err)
		}
	}
	if err := w.Sync(); err != nil {
		return fmt.Errorf("gpt: creating table: sync: %w", err)
	}
	return nil
}

// protectiveMBR builds sector 0: one record of type 0xEE from LBA 1 to the end of the disk
// (capped at 2^32-1 sectors), CHS fields as UEFI prescribes, and the 0x55AA signature.
func protectiveMBR(sectorSize int, sectors uint64) []byte {
	b := make([]byte, sectorSize)
	r := b[446:462]
	r[0] = 0x00                         // not bootable
	r[1], r[2], r[3] = 0x00, 0x02, 0x00 // CHS of LBA 1
	r[4] = 0xEE
	r[5], r[6], r[7] = 0xFF, 0xFF, 0xFF
	binary.LittleEndian.PutUint32(r[8:], 1)
	size := sectors - 1
	if size > 0xFFFFFFFF {
		size = 0xFFFFFFFF
	}
	binary.LittleEndian.PutUint32(r[12:], uint32(size))
	b[510], b[511] = 0x55, 0xAA
	return b
}
