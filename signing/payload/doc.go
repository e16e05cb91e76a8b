// Package payload builds, signs, verifies and applies Switchyard update payloads: a signed,
// streamable description of how to write one partition image (the USR partition), made for
// applying while the download is still running, decompressing on all cores, and resuming
// after an interruption.
//
// # Parties
//
// The release side builds a payload from a partition image (Build), then signs its manifest
// with the payload key (Sign, through a keys.Signer that may be a KMS). The host daemon reads
// the payload from an HTTP body, verifies the manifest signature against the payload keys it
// holds (ReadManifest), then applies the operations to the inactive partition (Apply /
// Verified.Apply). It imports signing/keys and nothing else of Switchyard.
//
// # File format (version 1)
//
// All integers are big-endian. A payload is
//
//	header (32 bytes) | manifest | signature section | data section
//
// The header:
//
//	offset size field
//	0      8    magic "SWYDPAYL"
//	8      4    format version, 1
//	12     4    flags, 0 (any other value is refused)
//	16     8    manifest length, 1..MaxManifestSize
//	24     4    signature section length, 0..MaxSignatureSection
//	28     4    reserved, 0
//
// The manifest:
//
//	u32  block size (a power of two, 512..65536)
//	u64  partition size in bytes (a multiple of the block size, 1..MaxPartitionSize)
//	[32] SHA-256 of the whole resulting partition
//	u8 n, n bytes: version (1..64 printable ASCII bytes, no spaces)
//	u8 n, n bytes: board (same rule)
//	u32  operation count (1..MaxOperations)
//	operations, each:
//	  u8   type: 1 REPLACE, 2 REPLACE_XZ, 3 REPLACE_ZSTD, 4 ZERO, 5 SOURCE_COPY
//	  u16  destination extent count (1..MaxExtentsPerOp), then that many extents
//	  u16  source extent count (SOURCE_COPY: 1..MaxExtentsPerOp; otherwise 0), then extents
//	  u64  data offset, relative to the start of the data section
//	  u64  data length
//	  [32] SHA-256: of the data bytes (REPLACE*), of the source bytes read (SOURCE_COPY),
//	       all zero (ZERO)
//	an extent is u64 start block, u64 block count (count >= 1)
//
// Nothing may follow the last operation. Validation (Manifest.Validate) is strict, so that a
// manifest that parses is safe to apply:
//   - every extent lies inside the partition; destination extents never overlap and together
//     cover the partition exactly, so every byte of the result is written by an operation
//     whose input is covered by a hash in the signed manifest;
//   - data offsets are contiguous and in manifest order (op i+1 starts where op i ends), so
//     the data section is read strictly sequentially and a download can resume at any
//     operation's data offset; ZERO and SOURCE_COPY carry no data (length 0);
//   - REPLACE data is exactly the destination size; compressed data is 1..destination size
//     bytes (the builder stores a chunk raw when compression does not shrink it), so the
//     data section is never larger than the partition;
//   - one operation writes at most MaxOperationSize bytes, which bounds the applier's memory;
//   - SOURCE_COPY reads exactly as many bytes as it writes.
//
// The signature section is a list of up to MaxSignatures entries, each
//
//	[32] key ID (the raw SHA-256 of the signing key's PKIX encoding; see signing/keys)
//	u16  signature length (1..MaxSignatureSize), then the signature bytes
//
// Each signature is over the message
//
//	"switchyard payload v1\x00" | header bytes 0..24 (magic, version, flags, manifest
//	length) | key ID (32 bytes) | manifest
//
// so it covers every header field that matters (the signature section length is not signed:
// it only frames the signatures) and binds the key ID, which stops a signature from being
// presented under another accepted key. More than one signature lets a payload be signed with
// an old and a new key during a rotation. A payload verifies when at least one signature names
// an accepted key; a signature that names an accepted key and does not verify fails the
// payload (ErrBadSignature) whatever the others say. No signature is ErrUnsigned; signatures
// only from keys not accepted is ErrWrongKey; no accepted keys at all is ErrNoKeys.
//
// The data section is the concatenation of the operations' data in manifest order, and the
// payload ends exactly where the last operation's data ends (more bytes: ErrTrailingData).
//
// REPLACE_XZ data is one complete .xz stream with exactly one block whose only filter is
// LZMA2, with a dictionary no larger than the larger of 8 MiB (xz -6) and the smallest LZMA2
// dictionary covering the operation, and never above MaxXZDictSize. This is checked from the
// stream's block header and index before decoding starts (ErrXZDictionary), so a decoder is
// never asked for a dictionary beyond that. The builder writes the streams without an
// integrity check (--check=none): the chunk's SHA-256 in the signed manifest is checked
// before decoding and the partition's after; streams with a CRC or SHA-256 check decode too. REPLACE_ZSTD data is zstd
// decoded with its window and memory capped at MaxOperationSize. A compressed chunk must
// decode to exactly its destination size (ErrDecompress).
//
// # Applying
//
// The target must be the partition's size, neither larger (its tail would keep stale bytes
// that the partition hash does not cover) nor smaller; any other is refused before a byte is
// written (ErrTargetSize). The size is ApplyConfig.TargetSize, else the target's Size method,
// else a file's length (a regular file) or end (a block device); an empty regular file is a
// new image and is sized to the partition first.
//
// The applier reads the data section strictly sequentially from any io.Reader. A reader
// stage reads one operation's data into a recycled buffer, checks its SHA-256 against the
// manifest (ErrDataHash) and only then hands it to one of N workers (N = GOMAXPROCS by
// default). A worker decompresses in 1 MiB pieces and writes them straight to the target
// io.WriterAt at the operation's extents (positional writes, so workers never wait for each
// other); a completion stage reports progress in operation order. At most N+1 operations are
// in flight, so memory is bounded by about (N+1) compressed chunks plus N decoder
// dictionaries, whatever the payload's size. ZERO operations are written from a shared zero
// buffer, never decompressed. SOURCE_COPY hashes its source extents first and copies them
// only when they match (ErrSourceHash). REPLACE_XZ is decoded in-process by
// github.com/xi2/xz (a port of xz-embedded), one reader per worker that keeps its dictionary
// from chunk to chunk, or, when ApplyConfig.XZCommand names xz-utils, by one xz process per
// chunk.
//
// The partition hash is computed while the payload is applied: operations complete in
// order, and once operation i has, no later operation writes below the lowest offset that
// operations i+1… write, so a hasher re-reads the target (from the page cache) up to there.
// After the last operation the applier checks for trailing bytes, calls the sync hook while
// the hasher reads the rest, and compares the SHA-256 with the manifest's (ErrPartitionHash).
// Nothing is written before the manifest signature verifies, and the partition must not be
// made bootable unless Apply returns nil: an error part-way leaves a partially written target.
// Every goroutine Apply starts (reader stage, workers, hasher, sync) has ended when it
// returns, on every path: on an error it cancels them and waits, a target read or write
// under way included, so the caller may close the target at once.
//
// Resume: ReadManifest returns a Verified manifest; Verified.PayloadOffset(k) is the byte
// offset in the payload of operation k's data, so the caller can fetch the rest with an HTTP
// Range request and call Verified.Apply with StartOp k. The final hash re-reads the whole
// partition, so operations written before the interruption are checked too.
//
// Errors come in three kinds, so the daemon can map each to an Omaha error code: a refused
// payload is a sentinel (errors.Is); a failure of the target (write, sync, re-read) is a
// *TargetError and a failure of the payload's reader (not its early end, ErrTruncated) a
// *ReadError (errors.As), each wrapping the underlying error.
package payload
