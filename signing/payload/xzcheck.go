package payload

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// xzPresetDict is the dictionary of xz -6, the builder's setting; a chunk may always use it.
const xzPresetDict = 8 << 20

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// lzma2DictSize decodes an LZMA2 dictionary-size property byte.
func lzma2DictSize(p byte) (uint64, bool) {
	if p > 40 {
		return 0, false
	}
	if p == 40 {
		return 0xffffffff, true
	}
	return uint64(2|(p&1)) << (p/2 + 11), true
}

// xzDictLimit is the largest dictionary accepted for a chunk that decodes to size bytes:
// the larger of xz -6's dictionary and the smallest LZMA2 dictionary that covers the chunk,
// and never more than MaxXZDictSize.
func xzDictLimit(size uint64) uint64 {
	limit := uint64(xzPresetDict)
	for p := byte(0); p < 40; p++ {
		d, _ := lzma2DictSize(p)
		if d >= size {
			limit = max(limit, d)
			break
		}
	}
	return min(limit, MaxXZDictSize)
}

func readVarint(b []byte) (uint64, int, bool) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0, false // not minimal
			}
			return v, i + 1, true
		}
	}
	return 0, 0, false
}

// checkXZ checks, before any decoding, that data is one .xz stream with one block whose only
// filter is LZMA2 with a dictionary within xzDictLimit(size). a decoder allocates the
// dictionary a block header asks for (up to 4 GiB), so this runs first.
func checkXZ(data []byte, size uint64) error {
	if len(data) < 12+12+8 || !bytes.Equal(data[:6], xzMagic) {
		return fmt.Errorf("%w: not an xz stream", ErrXZDictionary)
	}
	footer := data[len(data)-12:]
	if footer[10] != 'Y' || footer[11] != 'Z' {
		return fmt.Errorf("%w: not a single xz stream ending the chunk", ErrXZDictionary)
	}
	if crc32.ChecksumIEEE(footer[4:10]) != binary.LittleEndian.Uint32(footer[:4]) {
		return fmt.Errorf("%w: stream footer checksum", ErrXZDictionary)
	}
	backward := (uint64(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
	if backward > uint64(len(data)-24) {
		return fmt.Errorf("%w: index size", ErrXZDictionary)
	}
	index := data[uint64(len(data)-12)-backward : len(data)-12]
	if index[0] != 0 {
		return fmt.Errorf("%w: index indicator", ErrXZDictionary)
	}
	if n, _, ok := readVarint(index[1:]); !ok || n != 1 {
		return fmt.Errorf("%w: %d blocks (want 1)", ErrXZDictionary, n)
	}
	bh := data[12:]
	hsize := (int(bh[0]) + 1) * 4
	if bh[0] == 0 || hsize > len(bh) {
		return fmt.Errorf("%w: block header size", ErrXZDictionary)
	}
	bh = bh[:hsize]
	if crc32.ChecksumIEEE(bh[:hsize-4]) != binary.LittleEndian.Uint32(bh[hsize-4:]) {
		return fmt.Errorf("%w: block header checksum", ErrXZDictionary)
	}
	flags := bh[1]
	if flags&0x03 != 0 || flags&0x3c != 0 {
		return fmt.Errorf("%w: only a single LZMA2 filter is accepted", ErrXZDictionary)
	}
	p := bh[2 : hsize-4]
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			_, n, ok := readVarint(p)
			if !ok {
				return fmt.Errorf("%w: block header sizes", ErrXZDictionary)
			}
			p = p[n:]
		}
	}
	id, n, ok := readVarint(p)
	if !ok || id != 0x21 {
		return fmt.Errorf("%w: filter %#x is not LZMA2", ErrXZDictionary, id)
	}
	p = p[n:]
	psize, n, ok := readVarint(p)
	if !ok || psize != 1 || len(p) < n+1 {
		return fmt.Errorf("%w: LZMA2 properties", ErrXZDictionary)
	}
	dict, ok := lzma2DictSize(p[n])
	if !ok {
		return fmt.Errorf("%w: dictionary code %d", ErrXZDictionary, p[n])
	}
	if limit := xzDictLimit(size); dict > limit {
		return fmt.Errorf("%w: dictionary %d bytes, limit %d", ErrXZDictionary, dict, limit)
	}
	return nil
}
