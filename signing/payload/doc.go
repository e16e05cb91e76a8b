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
// # File format (versions 1 and 2)
//
// Version 1 is a full payload; version 2 a delta payload (see "Delta payloads" below for
// what it adds). Both are read; the builder writes version 2 only for a delta, so hosts
// that know only version 1 keep reading full payloads. All integers are big-endian. A
// payload is
//
//	header (32 bytes) | manifest | signature section | data section
//
// The header:
//
//	offset size field
//	0      8    magic "SWYDPAYL"
//	8      4    format version, 1 (full) or 2 (delta)
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
// A version 2 manifest has, between the board and the operation count, its source:
//
//	u64  source partition size in bytes (a multiple of the block size, 1..MaxPartitionSize)
//	[32] SHA-256 of the whole source partition
//	u8 n, n bytes: source version (same rule as version)
//
// and each SOURCE_ZSTD operation has, after its data SHA-256, a second [32]: the SHA-256 of
// the source bytes it reads (its source extents, concatenated). A version 1 manifest has
// neither, and no SOURCE_ZSTD.
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
//   - version 2: every source extent lies inside the source partition, an operation reads
//     at most MaxSourceRead source bytes and a SOURCE_ZSTD writes at most MaxPatchSize
//     bytes, carries 1..its destination size bytes, and only it has a source hash.
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
// only when they match (ErrSourceHash); see "Delta payloads" for version 2. REPLACE_XZ is decoded in-process by
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
// # Delta payloads
//
// A delta turns the active partition (the source: the host's running version) into the new
// one, and carries only what the source lacks. The builder (Build with BuildConfig.Source)
// works block by block, in the manner of RAUC's adaptive updates and update_engine's
// SOURCE_COPY:
//
//  1. it indexes every 4 KiB block of the source by content (a hash, confirmed byte for
//     byte), so a target block found anywhere in the source is copied, not sent: ext4
//     keeps file data block-aligned, so an unchanged file is found wherever it moved;
//     consecutive blocks become one SOURCE_COPY of up to MaxSourceRead bytes with merged
//     extents;
//  2. every other non-zero run of the target (a changed file, changed metadata) is cut
//     into 2 MiB SOURCE_ZSTD operations: the run is zstd-compressed (level best,
//     github.com/klauspost/compress) with source bytes as a raw dictionary, as
//     zstd --patch-from does, so what the old version already has costs a few bytes of
//     match. The dictionary (up to 6 MiB, a list of source extents) is chosen by content:
//     the builder indexes content-defined anchors (a gear hash over 64 bytes, one anchor
//     per 256 bytes on average) of the source blocks that no target block copies, which
//     is where the old versions of the changed files are, and each anchor of the run votes
//     for the source block it is found in; the most voted source blocks, with two blocks
//     around each, make the dictionary. A run with no anchor found is encoded against the
//     source blocks at its own offset; one whose patch would not be smaller than its bytes
//     is sent as REPLACE.
//
// The applier keeps the guarantees of a full payload. The manifest (and with it the
// source's size, SHA-256 and version) is verified first. A source whose size is known
// (ApplyConfig.SourceSize, a Size method, a file's length or a device's end) and is not
// the delta's is refused before anything is written. An operation that reads the source
// reads its extents into memory (at most MaxSourceRead bytes per worker), checks their
// SHA-256 against the manifest, and only then copies them or decodes its patch with them;
// the patch decoder's window is bounded by its dictionary and its output. Every byte
// written is covered, as in version 1, by the data hashes and the partition hash; the
// source is only ever read. Data offsets stay contiguous, so a delta resumes like a full
// payload (StartOp and Verified.PayloadOffset).
//
// For the host (update-engine) and the server, the API is:
//   - Manifest.Source is nil for a full payload and names the delta's source otherwise;
//     the server offers a delta only to a host whose version is Source.Version;
//   - Verified.CheckSource(ctx, active, 0) hashes the whole active partition against the
//     delta's source before anything is downloaded or written (optional: Apply checks
//     every byte it reads);
//   - Verified.Apply with ApplyConfig.Source set to the active partition (opened
//     read-only) applies it;
//   - a source that is not the delta's is ErrSourceMismatch (errors.Is), whichever check
//     finds it: its size, CheckSource, an operation's source hash (ErrSourceHash) or no
//     source at all (ErrNoSource). The operation that found it has written nothing; the
//     host reports it and falls back to the full payload in the same cycle.
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
