// Package gpt reads, validates, repairs, edits and creates GUID Partition Tables over
// io.ReaderAt and io.WriterAt. It is pure: no ioctls, no paths, no global state; the logical
// sector size (512 or 4096) is a parameter.
//
// # On-disk format (UEFI 2.x, section 5.3)
//
// LBA 0 holds a protective MBR (one record of type 0xEE). LBA 1 holds the primary header, which
// points at the primary entry array (normally LBA 2) and at the backup header (AlternateLBA,
// normally the last sector, but not always: a disk that grew keeps its backup where it was).
// The backup header points back at LBA 1 and at its own entry array, which lies between the
// last usable LBA and the backup header. Each header carries a CRC32 (IEEE) of its first
// HeaderSize bytes with the CRC field zeroed, and a CRC32 of its NumEntries×EntrySize-byte
// entry array. EntrySize is 128·2^k. An entry is: type GUID, unique GUID, first LBA, last LBA,
// 64 attribute bits, and a 36-unit UTF-16LE name. GUIDs are stored mixed-endian (the first
// three fields little-endian), as everywhere in UEFI.
//
// # Both copies are witnesses
//
// Read validates each copy on its own (signature, revision 1.0, header size, header CRC,
// MyLBA/AlternateLBA, usable range, entry size and count, entry array placement and CRC,
// every used entry inside the usable range and no two overlapping) and then checks that the
// two agree. When only one copy is valid, or both are valid but differ, the table is readable
// but not clean: the primary is authoritative when valid (GRUB and the kernel read it first),
// the backup otherwise. Repair rewrites the other copy from the authoritative one.
//
// # Writing
//
// The only edit offered is an entry's attribute bits (SetAttributes): every other byte of
// the header sectors and entry arrays is kept exactly as read, names, reserved fields and
// unknown bits included, so a write changes the attribute bytes and the CRCs and nothing else.
// Write repairs an unclean table first, then writes in the order
//
//	backup entries, sync, backup header, sync, primary entries, sync, primary header, sync
//
// and reads both copies back. A crash between any two steps leaves one of: both old; backup
// entries new but backup header old (backup invalid, primary old and valid: old state); both
// valid and different (primary, the old state, wins); primary entries new but header old
// (primary invalid, backup new: new state); both new. So a reader always finds a valid GPT in
// either the old or the new state. Sector 0 is never written by Write or Repair.
//
// Create writes a brand-new table (protective MBR, both copies) for image builders.
//
// Who may import it: anything; it imports only the standard library.
package gpt
