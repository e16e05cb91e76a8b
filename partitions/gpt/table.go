package gpt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SectorSizes are the logical sector sizes DetectSectorSize tries, in order.
var sectorSizes = [...]int{512, 4096}

// Device is what writing a table needs: positioned reads and writes and a durable flush.
// *os.File and blockdev.Disk satisfy it.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// WriteSyncer is what creating a table needs.
type WriteSyncer interface {
	io.WriterAt
	Sync() error
}

// copyState is one copy of the table as read: its header sector, entry array and verdict.
type copyState struct {
	lba    uint64
	sector []byte // the whole header sector, as read
	hdr    Header
	arr    []byte // NumEntries×EntrySize bytes, as read
	err    error  // nil when this copy is valid on its own
}

// Table is a GPT as read from a disk. It is not safe for concurrent use.
type Table struct {
	sectorSize int
	sectors    uint64
	primary    copyState
	backup     copyState
	useBackup  bool   // the backup is authoritative (the primary is invalid)
	entries    []byte // the authoritative array with pending attribute edits
	disagree   error  // why two valid copies differ, or nil
}

// SectorSize is the logical sector size the table was read with.
func (t *Table) SectorSize() int { return t.sectorSize }

// Sectors is the disk size in logical sectors.
func (t *Table) Sectors() uint64 { return t.sectors }

// Header returns the authoritative header.
func (t *Table) Header() Header { return t.authCopy().hdr }

// PrimaryErr is why the primary copy is unusable, or nil.
func (t *Table) PrimaryErr() error { return t.primary.err }

// BackupErr is why the backup copy is unusable or disagrees with the primary, or nil.
func (t *Table) BackupErr() error {
	if t.backup.err != nil {
		return t.backup.err
	}
	return t.disagree
}

// Clean reports whether both copies are valid and agree.
func (t *Table) Clean() bool {
	return t.primary.err == nil && t.backup.err == nil && t.disagree == nil
}

// Dirty reports whether attribute edits are pending.
func (t *Table) Dirty() bool { return !bytes.Equal(t.entries, t.authCopy().arr) }

// Entries returns the used entries, in table order, with pending edits applied.
func (t *Table) Entries() []Entry {
	var out []Entry
	h := t.authCopy().hdr
	for i := 0; i < int(h.NumEntries); i++ {
		e := t.entries[i*int(h.EntrySize) : (i+1)*int(h.EntrySize)]
		if !isUnused(e) {
			out = append(out, decodeEntry(i+1, e))
		}
	}
	return out
}

// Entry returns the used entry with number n (1-based).
func (t *Table) Entry(n int) (Entry, error) {
	h := t.authCopy().hdr
	if n < 1 || n > int(h.NumEntries) {
		return Entry{}, fmt.Errorf("%w: %d (the table has %d entries)", ErrNoPartition, n, h.NumEntries)
	}
	e := t.entries[(n-1)*int(h.EntrySize) : n*int(h.EntrySize)]
	if isUnused(e) {
		return Entry{}, fmt.Errorf("%w: entry %d is unused", ErrNoPartition, n)
	}
	return decodeEntry(n, e), nil
}

// SetAttributes sets the 64 attribute bits of partition n. Nothing else of the entry can
// change. The edit is pending until Write.
func (t *Table) SetAttributes(n int, attrs uint64) error {
	if _, err := t.Entry(n); err != nil {
		return err
	}
	off := (n-1)*int(t.authCopy().hdr.EntrySize) + offEntryAttr
	binary.LittleEndian.PutUint64(t.entries[off:], attrs)
	return nil
}

// DetectSectorSize finds the logical sector size of an image by looking for the primary
// header's signature at LBA 1 for each supported size. It returns ErrNoGPT when none has it.
func DetectSectorSize(r io.ReaderAt) (int, error) {
	for _, ss := range sectorSizes {
		sig := make([]byte, len(Signature))
		if _, err := r.ReadAt(sig, int64(ss)); err == nil && string(sig) == Signature {
			return ss, nil
		}
	}
	return 0, fmt.Errorf("%w: no %q at LBA 1 for sector sizes 512 or 4096", ErrNoGPT, Signature)
}

// Read reads and validates both copies of the GPT on a disk of size bytes with the given
// logical sector size. It fails when the protective MBR is missing or when neither copy is
// valid; a table with one bad copy, or two that differ, is returned with Clean() false.
func Read(ctx context.Context, r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	if sectorSize != 512 && sectorSize != 4096 {
		return nil, fmt.Errorf("gpt: unsupported sector size %d (want 512 or 4096)", sectorSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sectors := uint64(size) / uint64(sectorSize)
	if size < 0 || sectors < 3 {
		return nil, fmt.Errorf("%w: %d bytes hold fewer than 3 sectors of %d bytes", ErrTruncated, size, sectorSize)
	}
	t := &Table{sectorSize: sectorSize, sectors: sectors}
	t.primary = readCopy(r, "primary", 1, sectorSize, sectors)

	// Where is the backup? A valid primary says so. Otherwise try the last sector, then the
	// location a damaged primary still names.
	var candidates []uint64
	if t.primary.err == nil {
		candidates = append(candidates, t.primary.hdr.AlternateLBA)
	} else {
		candidates = append(candidates, sectors-1)
		if t.primary.sector != nil && string(t.primary.sector[:8]) == Signature {
			if alt := decodeHeader(t.primary.sector).AlternateLBA; alt > 1 && alt < sectors-1 {
				candidates = append(candidates, alt)
			}
		}
	}
	for i, lba := range candidates {
		t.backup = readCopy(r, "backup", lba, sectorSize, sectors)
		if t.backup.err == nil || i == len(candidates)-1 {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	switch {
	case t.primary.err == nil:
		if t.backup.err == nil {
			t.disagree = sameTable(t.primary.hdr, t.backup.hdr, t.primary.arr, t.backup.arr)
		}
	case t.backup.err == nil:
		t.useBackup = true
	default:
		return nil, &InvalidError{Primary: t.primary.err, Backup: t.backup.err}
	}
	if err := checkMBR(r); err != nil {
		return nil, err
	}
	t.entries = bytes.Clone(t.authCopy().arr)
	return t, nil
}

// readCopy reads and validates the header at lba and its entry array.
func readCopy(r io.ReaderAt, name string, lba uint64, sectorSize int, sectors uint64) copyState {
	c := copyState{lba: lba}
	fail := func(err error) copyState {
		c.err = &CopyError{Copy: name, LBA: lba, Err: err}
		return c
	}
	if lba >= sectors {
		return fail(fieldError(ErrTruncated, "LBA %d beyond the last sector %d", lba, sectors-1))
	}
	c.sector = make([]byte, sectorSize)
	if err := readFull(r, c.sector, int64(lba)*int64(sectorSize)); err != nil {
		return fail(err)
	}
	h, err := checkHeader(c.sector, sectorSize, sectors, lba)
	c.hdr = h
	if err != nil {
		return fail(err)
	}
	end := h.EntriesLBA + h.arraySectors(sectorSize)
	if end > sectors {
		return fail(fieldError(ErrTruncated, "entry array ends at LBA %d beyond the last sector %d", end-1, sectors-1))
	}
	c.arr = make([]byte, h.arrayBytes())
	if err := readFull(r, c.arr, int64(h.EntriesLBA)*int64(sectorSize)); err != nil {
		return fail(err)
	}
	if err := checkEntries(h, c.arr); err != nil {
		return fail(err)
	}
	return c
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fieldError(ErrTruncated, "short read of %d bytes at offset %d (got %d)", len(b), off, n)
	}
	return fmt.Errorf("gpt: reading %d bytes at offset %d: %w", len(b), off, err)
}

// checkMBR requires a protective MBR: the 0x55AA signature and a record of type 0xEE.
// Sector 0 is only ever read here.
func checkMBR(r io.ReaderAt) error {
	mbr := make([]byte, 512)
	if err := readFull(r, mbr, 0); err != nil {
		return err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return fmt.Errorf("%w: sector 0 has no 0x55AA signature", ErrNoProtectiveMBR)
	}
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			return nil
		}
	}
	return fmt.Errorf("%w: no partition record of type 0xEE in sector 0", ErrNoProtectiveMBR)
}

// authCopy is the authoritative copy: the primary when valid, else the backup.
func (t *Table) authCopy() *copyState {
	if t.useBackup {
		return &t.backup
	}
	return &t.primary
}
