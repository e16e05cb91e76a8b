package gpt

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"sort"
	"unicode/utf16"
)

const (
	// Signature is the 8-byte magic at the start of every GPT header.
	Signature = "EFI PART"
	// Revision is the only header revision accepted (1.0).
	Revision = 0x00010000
	// MinHeaderSize is the size of the defined header fields.
	MinHeaderSize = 92
	// MinEntrySize is the smallest entry size; entry sizes are MinEntrySize·2^k.
	MinEntrySize = 128
	// MaxEntrySize bounds the entry size read from a header.
	MaxEntrySize = 4096
	// MaxEntryArrayBytes bounds NumEntries×EntrySize read from a header (UEFI's minimum is
	// 16 KiB; real tables never come close to this).
	MaxEntryArrayBytes = 1 << 20
)

// Header is the parsed form of a GPT header. The raw sector it came from is kept by the
// Table, so fields not listed here (the reserved ones, bytes past HeaderSize) survive writes.
type Header struct {
	Revision       uint32
	HeaderSize     uint32
	HeaderCRC      uint32
	MyLBA          uint64
	AlternateLBA   uint64
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	DiskGUID       GUID
	EntriesLBA     uint64
	NumEntries     uint32
	EntrySize      uint32
	EntriesCRC     uint32
}

// Header field offsets.
const (
	offRevision   = 8
	offHeaderSize = 12
	offHeaderCRC  = 16
	offMyLBA      = 24
	offAltLBA     = 32
	offFirstUse   = 40
	offLastUse    = 48
	offDiskGUID   = 56
	offEntriesLBA = 72
	offNumEntries = 80
	offEntrySize  = 84
	offEntriesCRC = 88
)

// Entry field offsets.
const (
	offEntryType  = 0
	offEntryID    = 16
	offEntryFirst = 32
	offEntryLast  = 40
	offEntryAttr  = 48
	offEntryName  = 56
	entryNameLen  = 72 // bytes: 36 UTF-16 code units
)

func decodeHeader(b []byte) Header {
	le := binary.LittleEndian
	var h Header
	h.Revision = le.Uint32(b[offRevision:])
	h.HeaderSize = le.Uint32(b[offHeaderSize:])
	h.HeaderCRC = le.Uint32(b[offHeaderCRC:])
	h.MyLBA = le.Uint64(b[offMyLBA:])
	h.AlternateLBA = le.Uint64(b[offAltLBA:])
	h.FirstUsableLBA = le.Uint64(b[offFirstUse:])
	h.LastUsableLBA = le.Uint64(b[offLastUse:])
	copy(h.DiskGUID[:], b[offDiskGUID:offDiskGUID+16])
	h.EntriesLBA = le.Uint64(b[offEntriesLBA:])
	h.NumEntries = le.Uint32(b[offNumEntries:])
	h.EntrySize = le.Uint32(b[offEntrySize:])
	h.EntriesCRC = le.Uint32(b[offEntriesCRC:])
	return h
}

// headerCRC computes the CRC32 of the first size bytes of the header with the CRC zeroed.
func headerCRC(b []byte, size uint32) uint32 {
	tmp := make([]byte, size)
	copy(tmp, b[:size])
	binary.LittleEndian.PutUint32(tmp[offHeaderCRC:], 0)
	return crc32.ChecksumIEEE(tmp)
}

// arraySectors is how many sectors an entry array of the header's shape occupies.
func (h Header) arraySectors(sectorSize int) uint64 {
	n := uint64(h.NumEntries) * uint64(h.EntrySize)
	return (n + uint64(sectorSize) - 1) / uint64(sectorSize)
}

func (h Header) arrayBytes() int { return int(h.NumEntries) * int(h.EntrySize) }

// checkHeader validates one header sector on its own. sectors is the disk size in sectors;
// myLBA is where the header was read from.
func checkHeader(b []byte, sectorSize int, sectors, myLBA uint64) (Header, error) {
	if !bytes.Equal(b[:8], []byte(Signature)) {
		return Header{}, fieldError(ErrNoGPT, "signature %q is not %q", b[:8], Signature)
	}
	h := decodeHeader(b)
	switch {
	case h.Revision != Revision:
		return h, fieldError(ErrBadHeader, "revision %#08x is not 1.0", h.Revision)
	case h.HeaderSize < MinHeaderSize || int(h.HeaderSize) > sectorSize:
		return h, fieldError(ErrBadHeader, "header size %d outside [%d, %d]", h.HeaderSize, MinHeaderSize, sectorSize)
	}
	if got := headerCRC(b, h.HeaderSize); got != h.HeaderCRC {
		return h, fieldError(ErrBadHeader, "header CRC %#08x, computed %#08x", h.HeaderCRC, got)
	}
	if h.MyLBA != myLBA {
		return h, fieldError(ErrBadHeader, "MyLBA %d, read from LBA %d", h.MyLBA, myLBA)
	}
	if h.EntrySize < MinEntrySize || h.EntrySize > MaxEntrySize || bits.OnesCount32(h.EntrySize) != 1 {
		return h, fieldError(ErrBadHeader, "entry size %d is not 128·2^k (at most %d)", h.EntrySize, MaxEntrySize)
	}
	if h.NumEntries == 0 || uint64(h.NumEntries)*uint64(h.EntrySize) > MaxEntryArrayBytes {
		return h, fieldError(ErrBadHeader, "%d entries of %d bytes (at most %d bytes)", h.NumEntries, h.EntrySize, MaxEntryArrayBytes)
	}
	// Every LBA is inside the disk, so the sums below cannot wrap around.
	if h.LastUsableLBA >= sectors || h.EntriesLBA >= sectors || h.AlternateLBA >= sectors {
		return h, fieldError(ErrTruncated, "last usable LBA %d, entry array LBA %d or alternate LBA %d beyond the last sector %d",
			h.LastUsableLBA, h.EntriesLBA, h.AlternateLBA, sectors-1)
	}
	if h.FirstUsableLBA > h.LastUsableLBA {
		return h, fieldError(ErrBadHeader, "first usable LBA %d after last usable LBA %d", h.FirstUsableLBA, h.LastUsableLBA)
	}
	arr := h.arraySectors(sectorSize)
	if myLBA == 1 {
		// Primary: entries after the header, before the usable range; backup after it.
		if h.AlternateLBA <= h.LastUsableLBA {
			return h, fieldError(ErrBadHeader, "alternate LBA %d not after last usable LBA %d", h.AlternateLBA, h.LastUsableLBA)
		}
		if h.EntriesLBA < 2 || h.EntriesLBA+arr > h.FirstUsableLBA {
			return h, fieldError(ErrBadHeader, "entry array at LBA %d (+%d) not between the header and first usable LBA %d", h.EntriesLBA, arr, h.FirstUsableLBA)
		}
	} else {
		// Backup: points back at LBA 1; entries after the usable range, before the header.
		if h.AlternateLBA != 1 {
			return h, fieldError(ErrBadHeader, "backup's alternate LBA %d is not 1", h.AlternateLBA)
		}
		if myLBA <= h.LastUsableLBA {
			return h, fieldError(ErrBadHeader, "backup header at LBA %d inside the usable range", myLBA)
		}
		if h.EntriesLBA <= h.LastUsableLBA || h.EntriesLBA+arr > myLBA {
			return h, fieldError(ErrBadHeader, "backup entry array at LBA %d (+%d) not between last usable LBA %d and the header", h.EntriesLBA, arr, h.LastUsableLBA)
		}
	}
	if h.FirstUsableLBA < 2 {
		return h, fieldError(ErrBadHeader, "first usable LBA %d overlaps the header", h.FirstUsableLBA)
	}
	return h, nil
}

// checkEntries validates the entry array against its header: CRC, then every used entry.
func checkEntries(h Header, arr []byte) error {
	if got := crc32.ChecksumIEEE(arr); got != h.EntriesCRC {
		return fieldError(ErrEntriesCRC, "recorded %#08x, computed %#08x", h.EntriesCRC, got)
	}
	type span struct {
		n           int
		first, last uint64
	}
	var used []span
	for i := 0; i < int(h.NumEntries); i++ {
		e := arr[i*int(h.EntrySize) : (i+1)*int(h.EntrySize)]
		if isUnused(e) {
			continue
		}
		first := binary.LittleEndian.Uint64(e[offEntryFirst:])
		last := binary.LittleEndian.Uint64(e[offEntryLast:])
		if first > last || first < h.FirstUsableLBA || last > h.LastUsableLBA {
			return fieldError(ErrBadEntry, "partition %d spans LBA %d–%d, outside the usable range %d–%d", i+1, first, last, h.FirstUsableLBA, h.LastUsableLBA)
		}
		used = append(used, span{i + 1, first, last})
	}
	sort.Slice(used, func(i, j int) bool { return used[i].first < used[j].first })
	for i := 1; i < len(used); i++ {
		if used[i].first <= used[i-1].last {
			return fieldError(ErrBadEntry, "partitions %d and %d overlap", used[i-1].n, used[i].n)
		}
	}
	return nil
}

func isUnused(e []byte) bool {
	var zero GUID
	return bytes.Equal(e[offEntryType:offEntryType+16], zero[:])
}

// sameTable reports why two valid copies do not describe the same table, or nil.
func sameTable(p, b Header, parr, barr []byte) error {
	switch {
	case p.AlternateLBA != b.MyLBA:
		return fieldError(ErrCopiesDiffer, "primary's alternate LBA %d, backup at %d", p.AlternateLBA, b.MyLBA)
	case p.FirstUsableLBA != b.FirstUsableLBA || p.LastUsableLBA != b.LastUsableLBA:
		return fieldError(ErrCopiesDiffer, "usable ranges %d–%d and %d–%d", p.FirstUsableLBA, p.LastUsableLBA, b.FirstUsableLBA, b.LastUsableLBA)
	case p.DiskGUID != b.DiskGUID:
		return fieldError(ErrCopiesDiffer, "disk GUIDs %s and %s", p.DiskGUID, b.DiskGUID)
	case p.NumEntries != b.NumEntries || p.EntrySize != b.EntrySize:
		return fieldError(ErrCopiesDiffer, "entry arrays %d×%d and %d×%d", p.NumEntries, p.EntrySize, b.NumEntries, b.EntrySize)
	case !bytes.Equal(parr, barr):
		return fieldError(ErrCopiesDiffer, "entry arrays differ")
	}
	return nil
}

// Entry is one used partition entry, decoded. Number is its 1-based index in the array.
type Entry struct {
	Number     int
	Type       GUID
	ID         GUID
	FirstLBA   uint64
	LastLBA    uint64
	Attributes uint64
	Name       string
}

func decodeEntry(n int, e []byte) Entry {
	le := binary.LittleEndian
	var out Entry
	out.Number = n
	copy(out.Type[:], e[offEntryType:])
	copy(out.ID[:], e[offEntryID:])
	out.FirstLBA = le.Uint64(e[offEntryFirst:])
	out.LastLBA = le.Uint64(e[offEntryLast:])
	out.Attributes = le.Uint64(e[offEntryAttr:])
	units := make([]uint16, 0, entryNameLen/2)
	for i := offEntryName; i+1 < offEntryName+entryNameLen; i += 2 {
		u := le.Uint16(e[i:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	out.Name = string(utf16.Decode(units))
	return out
}
