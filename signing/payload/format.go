package payload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
)

// Format constants.
const (
	Magic         = "SWYDPAYL"
	FormatVersion = 1
	// FormatVersionDelta is the format of a delta payload: a version 1 manifest that also
	// names its source partition, and the SOURCE_ZSTD operation (see the package doc).
	FormatVersionDelta = 2
	HeaderSize         = 32

	// MaxManifestSize bounds the manifest length a header may announce.
	MaxManifestSize = 8 << 20
	// MaxSignatures bounds the number of signatures on a manifest.
	MaxSignatures = 4
	// MaxSignatureSize bounds one signature (RSA-4096 is 512 bytes).
	MaxSignatureSize = 1024
	// MaxSignatureSection bounds the signature section length.
	MaxSignatureSection = MaxSignatures * (32 + 2 + MaxSignatureSize)
	// MaxPartitionSize bounds the partition a manifest may describe.
	MaxPartitionSize = 1 << 40
	// MaxOperations bounds the operation count.
	MaxOperations = 1 << 16
	// MaxExtentsPerOp bounds the extents of one operation.
	MaxExtentsPerOp = 1024
	// MaxOperationSize bounds the bytes one operation writes (and so the applier's buffers).
	MaxOperationSize = 64 << 20
	// MaxXZDictSize bounds the LZMA2 dictionary of a REPLACE_XZ chunk.
	MaxXZDictSize = 64 << 20
	// MaxLabel bounds the version and board strings.
	MaxLabel = 64
	// MaxSourceRead bounds the source bytes one operation of a delta (format 2) reads: the
	// applier reads them into memory, checks their hash, and only then uses them.
	MaxSourceRead = 8 << 20
	// MaxPatchSize bounds the bytes one SOURCE_ZSTD operation writes.
	MaxPatchSize = 8 << 20
	// maxPatchWindow is the zstd window a SOURCE_ZSTD frame may announce: its dictionary
	// and its output.
	maxPatchWindow = MaxSourceRead + MaxPatchSize

	// DefaultBlockSize is the block size the builder uses.
	DefaultBlockSize = 4096
	// DefaultChunkSize is the builder's chunk: 16 MiB keeps independently compressed xz
	// chunks within a few per cent of one xz stream (DESIGN.md section 6).
	DefaultChunkSize = 16 << 20

	signatureContext = "switchyard payload v1\x00"
	signedHeaderLen  = 24
)

// Type is an operation type.
type Type uint8

// Operation types.
const (
	Replace     Type = 1
	ReplaceXZ   Type = 2
	ReplaceZstd Type = 3
	Zero        Type = 4
	SourceCopy  Type = 5
	// SourceZstd is a binary difference: a zstd frame decoded with the operation's source
	// extents as a raw dictionary (format 2 only).
	SourceZstd Type = 6
)

func (t Type) String() string {
	switch t {
	case Replace:
		return "REPLACE"
	case ReplaceXZ:
		return "REPLACE_XZ"
	case ReplaceZstd:
		return "REPLACE_ZSTD"
	case Zero:
		return "ZERO"
	case SourceCopy:
		return "SOURCE_COPY"
	case SourceZstd:
		return "SOURCE_ZSTD"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Errors. Each refusal has its own sentinel, so callers (the host daemon) can map it to a
// protocol error code.
var (
	ErrBadMagic          = errors.New("payload: not a Switchyard payload (bad magic)")
	ErrUnsupportedFormat = errors.New("payload: unsupported format version or flags")
	ErrManifestTooLarge  = errors.New("payload: manifest length out of bounds")
	ErrSignatureTooLarge = errors.New("payload: signature section out of bounds")
	ErrMalformedHeader   = errors.New("payload: malformed header")
	ErrMalformedManifest = errors.New("payload: malformed manifest")
	ErrMalformedSig      = errors.New("payload: malformed signature section")
	ErrExtentOutside     = errors.New("payload: extent outside the partition")
	ErrExtentsOverlap    = errors.New("payload: destination extents overlap")
	ErrExtentsGap        = errors.New("payload: destination extents do not cover the partition")
	ErrDataLayout        = errors.New("payload: operation data offsets or lengths are not contiguous and bounded")
	ErrOperationTooLarge = errors.New("payload: operation too large")
	ErrUnsigned          = errors.New("payload: manifest is not signed")
	ErrWrongKey          = errors.New("payload: manifest is not signed by an accepted key")
	ErrBadSignature      = errors.New("payload: manifest signature does not verify")
	ErrNoKeys            = errors.New("payload: no accepted payload keys")
	ErrTruncated         = errors.New("payload: truncated")
	ErrTrailingData      = errors.New("payload: trailing data after the last operation")
	ErrDataHash          = errors.New("payload: operation data hash mismatch")
	// ErrSourceMismatch: the source partition is not the one the delta was built from (its
	// size, its SHA-256 or the bytes an operation reads differ). Nothing of the operation
	// that found it has been written; a host falls back to the full payload. ErrSourceHash
	// and ErrNoSource match it too (errors.Is).
	ErrSourceMismatch = errors.New("payload: the source partition is not the delta's source")
	ErrSourceHash     = fmt.Errorf("%w: source data hash mismatch", ErrSourceMismatch)
	ErrNoSource       = fmt.Errorf("%w: a delta payload needs a source partition", ErrSourceMismatch)
	ErrXZDictionary   = errors.New("payload: xz dictionary too large or stream layout refused")
	ErrDecompress     = errors.New("payload: chunk does not decompress to its extents")
	ErrPartitionHash  = errors.New("payload: partition hash mismatch")
	ErrTargetSize     = errors.New("payload: target size is not the partition size")
)

// TargetError is a failure of the target itself (a write, the sync, the re-read that hashes
// it: a full disk, an I/O error), as opposed to a payload that is refused (the sentinels
// above) or a reader that fails (ReadError). Callers find it with errors.As.
type TargetError struct {
	Op  string // what the applier was doing: "writing operation 3", "syncing target"
	Err error  // the target's own error
}

func (e *TargetError) Error() string { return "payload: " + e.Op + ": " + e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// ReadError is a failure of the payload's reader other than its end (a payload that ends
// early is ErrTruncated): a dropped transfer, a read timeout. Callers find it with errors.As.
type ReadError struct {
	What string // what was being read: "header", "operation 3 data"
	Err  error  // the reader's own error
}

func (e *ReadError) Error() string { return "payload: reading " + e.What + ": " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Extent is a run of blocks.
type Extent struct {
	Start, Count uint64
}

// Operation writes its destination extents.
type Operation struct {
	Type       Type
	Dst        []Extent
	Src        []Extent // SOURCE_COPY and SOURCE_ZSTD only
	DataOffset uint64
	DataLength uint64
	SHA256     [32]byte
	// SourceSHA256 is the SHA-256 of the source bytes a SOURCE_ZSTD operation reads (its
	// SHA256 is its data's). SOURCE_COPY keeps the source hash in SHA256, as in format 1.
	SourceSHA256 [32]byte
}

// Source names the partition a delta payload applies to.
type Source struct {
	Size    uint64   // bytes, a multiple of the block size
	SHA256  [32]byte // of the whole source partition
	Version string   // its version (same rule as Manifest.Version)
}

// Manifest describes a payload's result and how to produce it.
type Manifest struct {
	BlockSize       uint32
	PartitionSize   uint64
	PartitionSHA256 [32]byte
	Version         string
	Board           string
	// Source is set on a delta payload (format 2), nil on a full one (format 1).
	Source     *Source
	Operations []Operation
}

// FormatVersion returns the payload format the manifest is written in: FormatVersionDelta
// when it names a source, else FormatVersion.
func (m *Manifest) FormatVersion() uint32 {
	if m.Source != nil {
		return FormatVersionDelta
	}
	return FormatVersion
}

// Header is the fixed payload header.
type Header struct {
	Version          uint32
	Flags            uint32
	ManifestLength   uint64
	SignatureSection uint32
}

// MarshalBinary encodes the header.
func (h Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	binary.BigEndian.PutUint32(b[8:], h.Version)
	binary.BigEndian.PutUint32(b[12:], h.Flags)
	binary.BigEndian.PutUint64(b[16:], h.ManifestLength)
	binary.BigEndian.PutUint32(b[24:], h.SignatureSection)
	return b, nil
}

// ParseHeader decodes and bounds-checks a header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) != HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes", ErrMalformedHeader, len(b))
	}
	if string(b[:8]) != Magic {
		return Header{}, ErrBadMagic
	}
	h := Header{
		Version:          binary.BigEndian.Uint32(b[8:]),
		Flags:            binary.BigEndian.Uint32(b[12:]),
		ManifestLength:   binary.BigEndian.Uint64(b[16:]),
		SignatureSection: binary.BigEndian.Uint32(b[24:]),
	}
	if (h.Version != FormatVersion && h.Version != FormatVersionDelta) || h.Flags != 0 {
		return Header{}, fmt.Errorf("%w: version %d flags %#x", ErrUnsupportedFormat, h.Version, h.Flags)
	}
	if binary.BigEndian.Uint32(b[28:]) != 0 {
		return Header{}, fmt.Errorf("%w: reserved field not zero", ErrMalformedHeader)
	}
	if h.ManifestLength == 0 || h.ManifestLength > MaxManifestSize {
		return Header{}, fmt.Errorf("%w: %d bytes (max %d)", ErrManifestTooLarge, h.ManifestLength, MaxManifestSize)
	}
	if h.SignatureSection > MaxSignatureSection {
		return Header{}, fmt.Errorf("%w: %d bytes (max %d)", ErrSignatureTooLarge, h.SignatureSection, MaxSignatureSection)
	}
	return h, nil
}

// opBytes returns the bytes an operation writes.
func (m *Manifest) opBytes(op *Operation) uint64 {
	var n uint64
	for _, e := range op.Dst {
		n += e.Count
	}
	return n * uint64(m.BlockSize)
}

// OpSize returns the number of bytes operation i writes.
func (m *Manifest) OpSize(i int) int64 { return int64(m.opBytes(&m.Operations[i])) }

// DataSize returns the length of the data section.
func (m *Manifest) DataSize() uint64 {
	if len(m.Operations) == 0 {
		return 0
	}
	last := m.Operations[len(m.Operations)-1]
	return last.DataOffset + last.DataLength
}

// MarshalBinary encodes the manifest. It validates first.
func (m *Manifest) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m.encode()
}

// encode encodes without validating (tests use it to make hostile manifests).
func (m *Manifest) encode() ([]byte, error) {
	var b bytes.Buffer
	var tmp [8]byte
	u8 := func(v uint8) { b.WriteByte(v) }
	u16 := func(v uint16) { binary.BigEndian.PutUint16(tmp[:2], v); b.Write(tmp[:2]) }
	u32 := func(v uint32) { binary.BigEndian.PutUint32(tmp[:4], v); b.Write(tmp[:4]) }
	u64 := func(v uint64) { binary.BigEndian.PutUint64(tmp[:8], v); b.Write(tmp[:8]) }
	u32(m.BlockSize)
	u64(m.PartitionSize)
	b.Write(m.PartitionSHA256[:])
	u8(uint8(len(m.Version)))
	b.WriteString(m.Version)
	u8(uint8(len(m.Board)))
	b.WriteString(m.Board)
	if m.Source != nil {
		u64(m.Source.Size)
		b.Write(m.Source.SHA256[:])
		u8(uint8(len(m.Source.Version)))
		b.WriteString(m.Source.Version)
	}
	u32(uint32(len(m.Operations)))
	for _, op := range m.Operations {
		u8(uint8(op.Type))
		u16(uint16(len(op.Dst)))
		for _, e := range op.Dst {
			u64(e.Start)
			u64(e.Count)
		}
		u16(uint16(len(op.Src)))
		for _, e := range op.Src {
			u64(e.Start)
			u64(e.Count)
		}
		u64(op.DataOffset)
		u64(op.DataLength)
		b.Write(op.SHA256[:])
		if op.Type == SourceZstd {
			b.Write(op.SourceSHA256[:])
		}
	}
	if b.Len() > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrManifestTooLarge, b.Len())
	}
	return b.Bytes(), nil
}

// decoder reads big-endian fields and fails with ErrMalformedManifest on a short read.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = fmt.Errorf("%w: truncated", ErrMalformedManifest)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) extents(n uint16) []Extent {
	if d.err != nil {
		return nil
	}
	if int(n)*16 > len(d.b) {
		d.err = fmt.Errorf("%w: truncated extents", ErrMalformedManifest)
		return nil
	}
	es := make([]Extent, n)
	for i := range es {
		es[i] = Extent{Start: d.u64(), Count: d.u64()}
	}
	return es
}

// ParseManifest decodes a format 1 manifest and validates it (see the package doc for the
// rules).
func ParseManifest(b []byte) (*Manifest, error) { return ParseManifestVersion(FormatVersion, b) }

// ParseManifestVersion decodes a manifest of the given format version (the header's) and
// validates it.
func ParseManifestVersion(version uint32, b []byte) (*Manifest, error) {
	if version != FormatVersion && version != FormatVersionDelta {
		return nil, fmt.Errorf("%w: version %d", ErrUnsupportedFormat, version)
	}
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrManifestTooLarge, len(b))
	}
	d := &decoder{b: b}
	m := &Manifest{}
	m.BlockSize = d.u32()
	m.PartitionSize = d.u64()
	copy(m.PartitionSHA256[:], d.take(32))
	m.Version = string(d.take(int(d.u8())))
	m.Board = string(d.take(int(d.u8())))
	if version == FormatVersionDelta {
		m.Source = &Source{Size: d.u64()}
		copy(m.Source.SHA256[:], d.take(32))
		m.Source.Version = string(d.take(int(d.u8())))
	}
	n := d.u32()
	if d.err != nil {
		return nil, d.err
	}
	if n == 0 || n > MaxOperations {
		return nil, fmt.Errorf("%w: %d operations (max %d)", ErrMalformedManifest, n, MaxOperations)
	}
	// Each operation takes at least 1+2+16+2+8+8+32 bytes: refuse counts the bytes cannot hold
	// before allocating.
	const minOp = 1 + 2 + 16 + 2 + 8 + 8 + 32
	if uint64(n)*minOp > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: %d operations in %d bytes", ErrMalformedManifest, n, len(d.b))
	}
	m.Operations = make([]Operation, n)
	for i := range m.Operations {
		op := &m.Operations[i]
		op.Type = Type(d.u8())
		nd := d.u16()
		if d.err == nil && (nd == 0 || nd > MaxExtentsPerOp) {
			return nil, fmt.Errorf("%w: operation %d has %d destination extents", ErrMalformedManifest, i, nd)
		}
		op.Dst = d.extents(nd)
		ns := d.u16()
		if d.err == nil && ns > MaxExtentsPerOp {
			return nil, fmt.Errorf("%w: operation %d has %d source extents", ErrMalformedManifest, i, ns)
		}
		if ns > 0 {
			op.Src = d.extents(ns)
		}
		op.DataOffset = d.u64()
		op.DataLength = d.u64()
		copy(op.SHA256[:], d.take(32))
		if op.Type == SourceZstd {
			copy(op.SourceSHA256[:], d.take(32))
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last operation", ErrMalformedManifest, len(d.b))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if m.FormatVersion() != version {
		return nil, fmt.Errorf("%w: version %d manifest", ErrMalformedManifest, version)
	}
	return m, nil
}

func validLabel(s string) bool {
	if len(s) == 0 || len(s) > MaxLabel {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Validate checks every rule of the package doc.
func (m *Manifest) Validate() error {
	if m.BlockSize < 512 || m.BlockSize > 65536 || bits.OnesCount32(m.BlockSize) != 1 {
		return fmt.Errorf("%w: block size %d", ErrMalformedManifest, m.BlockSize)
	}
	if m.PartitionSize == 0 || m.PartitionSize > MaxPartitionSize || m.PartitionSize%uint64(m.BlockSize) != 0 {
		return fmt.Errorf("%w: partition size %d", ErrMalformedManifest, m.PartitionSize)
	}
	if !validLabel(m.Version) || !validLabel(m.Board) {
		return fmt.Errorf("%w: version %q or board %q", ErrMalformedManifest, m.Version, m.Board)
	}
	if len(m.Operations) == 0 || len(m.Operations) > MaxOperations {
		return fmt.Errorf("%w: %d operations", ErrMalformedManifest, len(m.Operations))
	}
	delta := m.Source != nil
	var srcBlocksMax uint64
	if delta {
		s := m.Source
		if s.Size == 0 || s.Size > MaxPartitionSize || s.Size%uint64(m.BlockSize) != 0 || !validLabel(s.Version) {
			return fmt.Errorf("%w: source size %d version %q", ErrMalformedManifest, s.Size, s.Version)
		}
		srcBlocksMax = s.Size / uint64(m.BlockSize)
	}
	blocks := m.PartitionSize / uint64(m.BlockSize)
	inside := func(e Extent) bool {
		return e.Count > 0 && e.Start < blocks && e.Count <= blocks-e.Start
	}
	type span struct {
		Extent
		op int
	}
	var all []span
	var offset uint64
	for i := range m.Operations {
		op := &m.Operations[i]
		if len(op.Dst) == 0 || len(op.Dst) > MaxExtentsPerOp || len(op.Src) > MaxExtentsPerOp {
			return fmt.Errorf("%w: operation %d extent count", ErrMalformedManifest, i)
		}
		var dstBlocks uint64
		for _, e := range op.Dst {
			if !inside(e) {
				return fmt.Errorf("%w: operation %d destination %d+%d, partition has %d blocks", ErrExtentOutside, i, e.Start, e.Count, blocks)
			}
			dstBlocks += e.Count
			all = append(all, span{e, i})
		}
		if dstBlocks > MaxOperationSize/uint64(m.BlockSize) {
			return fmt.Errorf("%w: operation %d writes %d blocks (max %d bytes)", ErrOperationTooLarge, i, dstBlocks, MaxOperationSize)
		}
		size := dstBlocks * uint64(m.BlockSize)
		if op.DataOffset != offset {
			return fmt.Errorf("%w: operation %d data offset %d, want %d", ErrDataLayout, i, op.DataOffset, offset)
		}
		switch op.Type {
		case Replace:
			if op.DataLength != size {
				return fmt.Errorf("%w: operation %d REPLACE carries %d bytes for %d", ErrDataLayout, i, op.DataLength, size)
			}
		case SourceZstd:
			if !delta {
				return fmt.Errorf("%w: operation %d SOURCE_ZSTD in a format 1 manifest", ErrMalformedManifest, i)
			}
			if size > MaxPatchSize {
				return fmt.Errorf("%w: operation %d SOURCE_ZSTD writes %d bytes (max %d)", ErrOperationTooLarge, i, size, MaxPatchSize)
			}
			if op.DataLength == 0 || op.DataLength > size {
				return fmt.Errorf("%w: operation %d %s carries %d bytes for %d", ErrDataLayout, i, op.Type, op.DataLength, size)
			}
		case ReplaceXZ, ReplaceZstd:
			if op.DataLength == 0 || op.DataLength > size {
				return fmt.Errorf("%w: operation %d %s carries %d bytes for %d", ErrDataLayout, i, op.Type, op.DataLength, size)
			}
		case Zero, SourceCopy:
			if op.DataLength != 0 {
				return fmt.Errorf("%w: operation %d %s carries data", ErrDataLayout, i, op.Type)
			}
		default:
			return fmt.Errorf("%w: operation %d has unknown type %d", ErrMalformedManifest, i, op.Type)
		}
		if op.Type == SourceCopy || op.Type == SourceZstd {
			if len(op.Src) == 0 {
				return fmt.Errorf("%w: operation %d %s without source extents", ErrMalformedManifest, i, op.Type)
			}
			var srcBlocks uint64
			for _, e := range op.Src {
				// Format 1 knows no source size: its source extents are bounded by the same
				// limits and the applier checks them against the real source. Format 2
				// checks them against the source the manifest names.
				if e.Count == 0 || e.Start > MaxPartitionSize/uint64(m.BlockSize) || e.Count > MaxOperationSize/uint64(m.BlockSize) ||
					(delta && (e.Start >= srcBlocksMax || e.Count > srcBlocksMax-e.Start)) {
					return fmt.Errorf("%w: operation %d source %d+%d", ErrExtentOutside, i, e.Start, e.Count)
				}
				srcBlocks += e.Count
			}
			if delta && srcBlocks*uint64(m.BlockSize) > MaxSourceRead {
				return fmt.Errorf("%w: operation %d reads %d source blocks (max %d bytes)", ErrOperationTooLarge, i, srcBlocks, MaxSourceRead)
			}
			if op.Type == SourceCopy && srcBlocks != dstBlocks {
				return fmt.Errorf("%w: operation %d copies %d source blocks to %d", ErrMalformedManifest, i, srcBlocks, dstBlocks)
			}
		} else if len(op.Src) != 0 {
			return fmt.Errorf("%w: operation %d %s has source extents", ErrMalformedManifest, i, op.Type)
		}
		if op.Type != SourceZstd && op.SourceSHA256 != ([32]byte{}) {
			return fmt.Errorf("%w: operation %d %s has a source hash", ErrMalformedManifest, i, op.Type)
		}
		if op.Type == Zero && op.SHA256 != ([32]byte{}) {
			return fmt.Errorf("%w: operation %d ZERO has a hash", ErrMalformedManifest, i)
		}
		offset += op.DataLength
	}
	if offset > m.PartitionSize {
		return fmt.Errorf("%w: data section %d bytes for a %d-byte partition", ErrDataLayout, offset, m.PartitionSize)
	}
	sort.Slice(all, func(a, b int) bool { return all[a].Start < all[b].Start })
	var next uint64
	for _, s := range all {
		if s.Start < next {
			return fmt.Errorf("%w: block %d written by operation %d and an earlier extent", ErrExtentsOverlap, s.Start, s.op)
		}
		if s.Start > next {
			return fmt.Errorf("%w: blocks %d..%d are written by no operation", ErrExtentsGap, next, s.Start-1)
		}
		next = s.Start + s.Count
	}
	if next != blocks {
		return fmt.Errorf("%w: blocks %d..%d are written by no operation", ErrExtentsGap, next, blocks-1)
	}
	return nil
}

// signedMessage returns what a signature by keyID covers.
func signedMessage(hdr []byte, keyID [32]byte, manifest []byte) []byte {
	msg := make([]byte, 0, len(signatureContext)+signedHeaderLen+32+len(manifest))
	msg = append(msg, signatureContext...)
	msg = append(msg, hdr[:signedHeaderLen]...)
	msg = append(msg, keyID[:]...)
	return append(msg, manifest...)
}

// Signature is one entry of the signature section.
type Signature struct {
	KeyID     [32]byte
	Signature []byte
}

func marshalSignatures(sigs []Signature) ([]byte, error) {
	if len(sigs) > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signatures (max %d)", ErrSignatureTooLarge, len(sigs), MaxSignatures)
	}
	var b bytes.Buffer
	for _, s := range sigs {
		if len(s.Signature) == 0 || len(s.Signature) > MaxSignatureSize {
			return nil, fmt.Errorf("%w: signature of %d bytes", ErrSignatureTooLarge, len(s.Signature))
		}
		b.Write(s.KeyID[:])
		b.Write([]byte{byte(len(s.Signature) >> 8), byte(len(s.Signature))})
		b.Write(s.Signature)
	}
	return b.Bytes(), nil
}

// ParseSignatures decodes a signature section.
func ParseSignatures(b []byte) ([]Signature, error) {
	if len(b) > MaxSignatureSection {
		return nil, fmt.Errorf("%w: %d bytes", ErrSignatureTooLarge, len(b))
	}
	var sigs []Signature
	for len(b) > 0 {
		if len(sigs) == MaxSignatures {
			return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformedSig, MaxSignatures)
		}
		if len(b) < 34 {
			return nil, fmt.Errorf("%w: truncated entry", ErrMalformedSig)
		}
		var s Signature
		copy(s.KeyID[:], b[:32])
		n := int(binary.BigEndian.Uint16(b[32:34]))
		b = b[34:]
		if n == 0 || n > MaxSignatureSize || n > len(b) {
			return nil, fmt.Errorf("%w: signature length %d", ErrMalformedSig, n)
		}
		s.Signature = append([]byte(nil), b[:n]...)
		b = b[n:]
		for _, o := range sigs {
			if o.KeyID == s.KeyID {
				return nil, fmt.Errorf("%w: two signatures by one key", ErrMalformedSig)
			}
		}
		sigs = append(sigs, s)
	}
	return sigs, nil
}

// readFull reads exactly len(b) bytes, mapping a short read to ErrTruncated and any other
// failure of the reader to a ReadError.
func readFull(r io.Reader, b []byte, what string) error {
	if _, err := io.ReadFull(r, b); err != nil {
		// Compared, not matched with errors.Is: io.ReadFull returns these values themselves
		// when the reader ends (a reader returns io.EOF unwrapped), while a reader's own error
		// that wraps one (an HTTP body cut short inside a transfer error) is the transfer's.
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: reading %s", ErrTruncated, what)
		}
		return &ReadError{What: what, Err: err}
	}
	return nil
}
