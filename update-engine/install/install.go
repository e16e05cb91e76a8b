// Package install is the engine's Installer: it streams a payload from the Omaha URLs (or
// from local media, when the job carries an Open function),
// verifies it with signing/payload and writes it onto the target partition, never outside it.
//
// # One install
//
//  1. No payload key installed is a refusal (code 18), never a silent skip.
//  2. The header, manifest and signature section are read from byte 0 and the manifest
//     signature is checked against the accepted keys (payload.ReadManifest). Nothing has been
//     written yet. The manifest must name the offered version and the host's board, and, when
//     TUF pins them, the partition size and SHA-256 (code 13 otherwise); the partition must
//     be the target partition's size (the applier refuses any other, code 13).
//  3. A delta payload (SOURCE_COPY operations) reads the active partition, opened
//     read-only: every source extent of the operations still to apply is hashed and
//     compared with the signed manifest before the target is opened; a mismatch means the
//     active partition is not the delta's source (code 1001, sourceMismatch), and the
//     engine falls back to the full payload. The applier hashes each extent again as it
//     copies it.
//  4. The data section streams through payload's applier: each operation's data is hashed
//     against the signed manifest before it is decompressed (in parallel) and written in order
//     through the disk Window, which refuses any byte outside the target partition.
//  5. After written operations the target is synced and a checkpoint is persisted (at most
//     every CheckpointBytes of payload or CheckpointEvery, each costing two fsyncs): the
//     next operation, its payload offset, and the SHA-256 state of every payload byte before that offset. A later attempt
//     for the same payload (the engine matches it by Omaha's hash) re-reads only the header
//     and manifest, then continues with an HTTP Range request at the next operation's data,
//     restoring the hash state.
//  6. The applier syncs the partition, re-reads it and compares its SHA-256 with the
//     manifest's. Then the whole payload's SHA-256 (over every byte, across resumes) must
//     equal TUF's, and no byte may follow the last operation.
//
// # Error codes (Omaha, as Flatcar numbers them)
//
//	no key / wrong key                        18 DownloadPayloadPubKeyVerificationError
//	unsigned manifest                         22 DownloadSignatureMissingInManifest
//	signature does not verify                 33 DownloadInvalidMetadataSignature
//	bad magic or format                       21 DownloadInvalidMetadataMagicString
//	manifest or signature section malformed   23 DownloadManifestParseError
//	manifest/header sizes out of bounds       32 DownloadInvalidMetadataSize
//	manifest does not match offer/TUF/disk    13 DownloadNewPartitionInfoError
//	operation data hash mismatch              29 DownloadOperationHashMismatch
//	delta source is not the active partition  1001 DeltaSourceMismatch (Switchyard's)
//	decompression / operation failure         28 DownloadOperationExecutionError
//	write, sync or re-read of the target      14 DownloadWriteError
//	partition hash after writing              15 NewRootfsVerificationError
//	payload SHA-256 is not TUF's              10 PayloadHashMismatchError
//	truncated or trailing data                11 PayloadSizeMismatchError
//	transfer failed after retries              9 DownloadTransferError (resumable)
//
// The applier's errors say which side failed: a *payload.TargetError is the partition's (14),
// a *payload.ReadError the download's (its fetch.TransferError, 9), a sentinel the payload's.
package install

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	"github.com/switchyard-os/switchyard/update-engine/disk"
	"github.com/switchyard-os/switchyard/update-engine/engine"
	"github.com/switchyard-os/switchyard/update-engine/fetch"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

// Target is the partition writer (disk.Window).
type Target interface {
	io.WriterAt
	io.ReaderAt
	Size() int64
	Sync() error
	Close() error
}

// Partitions opens the target partition, and the active one read-only (the source of a
// delta payload).
type Partitions interface {
	OpenTarget(ctx context.Context, n int) (*disk.Window, error)
	OpenSource(ctx context.Context, n int) (*disk.Window, error)
}

// Installer implements engine.Installer.
type Installer struct {
	Disk     Partitions
	HTTP     fetch.HTTPDoer
	CheckURL func(string) error
	Keys     *keys.Verifier // nil: every install is refused
	Log      *slog.Logger
	Workers  int // decompression workers; 0: GOMAXPROCS
	// XZCommand is xz-utils' xz for REPLACE_XZ chunks (each hash-checked first); empty
	// decodes in-process with github.com/xi2/xz.
	XZCommand string
	// Fetch tunes the download (retries, backoff).
	Fetch fetch.Options
	// CheckpointBytes and CheckpointEvery space the persisted checkpoints: one is written
	// when either much payload or that much time has passed since the last (0: 4 MiB, 1 s).
	// Each is an fsync; one per operation would stall the partition's writeback.
	CheckpointBytes int64
	CheckpointEvery time.Duration
	// Now is the clock for CheckpointEvery; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	received int64
}

// Received returns the payload bytes received from servers by all installs so far.
func (in *Installer) Received() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.received
}

// coded is an error with its Omaha code.
type coded struct {
	code omaha.ErrorCode
	err  error
}

func (e *coded) Error() string              { return "install: " + e.err.Error() }
func (e *coded) Unwrap() error              { return e.err }
func (e *coded) ErrorCode() omaha.ErrorCode { return e.code }

func withCode(code omaha.ErrorCode, err error) error { return &coded{code: code, err: err} }

// classify maps an error from reading or applying a payload to its Omaha code.
func classify(err error) error {
	var c interface{ ErrorCode() omaha.ErrorCode }
	if errors.As(err, &c) {
		return err // fetch.TransferError or already coded
	}
	table := []struct {
		is   error
		code omaha.ErrorCode
	}{
		{payload.ErrNoKeys, omaha.ErrorCodeDownloadPayloadPubKeyVerificationError},
		{payload.ErrWrongKey, omaha.ErrorCodeDownloadPayloadPubKeyVerificationError},
		{payload.ErrUnsigned, omaha.ErrorCodeDownloadSignatureMissingInManifest},
		{payload.ErrBadSignature, omaha.ErrorCodeDownloadInvalidMetadataSignature},
		{payload.ErrBadMagic, omaha.ErrorCodeDownloadInvalidMetadataMagicString},
		{payload.ErrUnsupportedFormat, omaha.ErrorCodeDownloadInvalidMetadataMagicString},
		{payload.ErrManifestTooLarge, omaha.ErrorCodeDownloadInvalidMetadataSize},
		{payload.ErrSignatureTooLarge, omaha.ErrorCodeDownloadInvalidMetadataSize},
		{payload.ErrMalformedHeader, omaha.ErrorCodeDownloadManifestParseError},
		{payload.ErrMalformedManifest, omaha.ErrorCodeDownloadManifestParseError},
		{payload.ErrMalformedSig, omaha.ErrorCodeDownloadManifestParseError},
		{payload.ErrExtentOutside, omaha.ErrorCodeDownloadManifestParseError},
		{payload.ErrExtentsOverlap, omaha.ErrorCodeDownloadManifestParseError},
		{payload.ErrExtentsGap, omaha.ErrorCodeDownloadManifestParseError},
		{payload.ErrDataLayout, omaha.ErrorCodeDownloadManifestParseError},
		{payload.ErrOperationTooLarge, omaha.ErrorCodeDownloadManifestParseError},
		{payload.ErrTargetSize, omaha.ErrorCodeDownloadNewPartitionInfoError},
		{payload.ErrDataHash, omaha.ErrorCodeDownloadOperationHashMismatch},
		{payload.ErrNoSource, omaha.ErrorCodeDownloadOperationExecutionError},
		{payload.ErrXZDictionary, omaha.ErrorCodeDownloadOperationExecutionError},
		{payload.ErrDecompress, omaha.ErrorCodeDownloadOperationExecutionError},
		{payload.ErrPartitionHash, omaha.ErrorCodeNewRootfsVerificationError},
		{payload.ErrTruncated, omaha.ErrorCodePayloadSizeMismatchError},
		{payload.ErrTrailingData, omaha.ErrorCodePayloadSizeMismatchError},
	}
	if sourceMismatch(err) {
		return withCode(omaha.ErrorCodeDeltaSourceMismatch, err)
	}
	if errors.As(err, new(*payload.TargetError)) {
		return withCode(omaha.ErrorCodeDownloadWriteError, err)
	}
	if errors.As(err, new(*payload.ReadError)) {
		return withCode(omaha.ErrorCodeDownloadTransferError, err)
	}
	for _, t := range table {
		if errors.Is(err, t.is) {
			return withCode(t.code, err)
		}
	}
	return withCode(omaha.ErrorCodeDownloadOperationExecutionError, err)
}

// sourceMismatch is the one place that decides that a failure means the active partition
// is not the delta payload's source (code 1001, after which the engine falls back to the
// full payload): the active partition's size is not the delta's source size, or a source
// extent's hash did not match the signed manifest (payload.ErrSourceMismatch covers both,
// and ErrSourceHash and ErrNoSource).
func sourceMismatch(err error) bool {
	return errors.Is(err, payload.ErrSourceMismatch)
}

// checkSource reads every source extent the operations from start on read from src and
// compares it with the signed manifest, before anything is written: a delta whose source
// is not the active partition is refused whole (payload.ErrSourceHash), not after it has
// half-written the target. The applier hashes each extent again when it copies it.
func checkSource(ctx context.Context, m *payload.Manifest, start int, src io.ReaderAt, size int64) error {
	if s := m.Source; s != nil && size > 0 && uint64(size) != s.Size {
		return fmt.Errorf("%w: the active partition has %d bytes, the delta's source (%s) %d", payload.ErrSourceMismatch, size, s.Version, s.Size)
	}
	buf := make([]byte, 1<<20)
	bs := int64(m.BlockSize)
	for i := start; i < len(m.Operations); i++ {
		op := &m.Operations[i]
		want := op.SHA256
		switch op.Type {
		case payload.SourceCopy:
		case payload.SourceZstd:
			want = op.SourceSHA256
		default:
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		h := sha256.New()
		for _, e := range op.Src {
			off, n := int64(e.Start)*bs, int64(e.Count)*bs
			if off < 0 || n < 0 || off+n > size {
				return fmt.Errorf("%w: operation %d reads %d+%d beyond the active partition's %d bytes", payload.ErrSourceHash, i, off, n, size)
			}
			if _, err := io.CopyBuffer(h, io.NewSectionReader(src, off, n), buf); err != nil {
				return withCode(omaha.ErrorCodeInstallDeviceOpenError, fmt.Errorf("reading the active partition: %w", err))
			}
		}
		if !bytes.Equal(h.Sum(nil), want[:]) {
			return fmt.Errorf("%w: operation %d: the active partition is not the delta's source", payload.ErrSourceHash, i)
		}
	}
	return nil
}

// source is where the payload comes from: the Omaha URLs (fetch.Source) or local media.
type source interface {
	Open(ctx context.Context, off int64) (io.ReadCloser, error)
	Received() int64 // payload bytes received from servers
}

// localSource is a payload on local media (engine.Job.Open); nothing comes from a server.
type localSource func(ctx context.Context, off int64) (io.ReadCloser, error)

func (l localSource) Open(ctx context.Context, off int64) (io.ReadCloser, error) { return l(ctx, off) }
func (l localSource) Received() int64                                            { return 0 }

// checkpoint is the Applier part of state.Resume.
type checkpoint struct {
	Hash []byte `json:"sha256_state"` // SHA-256 state of payload bytes [0, Offset)
}

// Install implements engine.Installer.
func (in *Installer) Install(ctx context.Context, job *engine.Job) error {
	return in.install(ctx, job, func(ctx context.Context, n int) (Target, error) {
		w, err := in.Disk.OpenTarget(ctx, n)
		if err != nil {
			return nil, err
		}
		return w, nil
	})
}

// install is Install with the target opened by open (tests wrap the disk's window in one
// that fails).
func (in *Installer) install(ctx context.Context, job *engine.Job, open func(ctx context.Context, n int) (Target, error)) error {
	log := in.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if in.Keys == nil || len(in.Keys.KeyIDs()) == 0 {
		return withCode(omaha.ErrorCodeDownloadPayloadPubKeyVerificationError,
			errors.New("no payload key installed: refusing every update"))
	}
	var src source = &fetch.Source{URLs: job.Offer.PayloadURLs(), Length: job.Target.Length, HTTP: in.HTTP,
		CheckURL: in.CheckURL, Log: log, Options: in.Fetch}
	if job.Open != nil {
		src = localSource(job.Open)
	}
	defer func() {
		in.mu.Lock()
		in.received += src.Received()
		in.mu.Unlock()
	}()

	// Step 2: header, manifest and signature, from byte 0.
	head, err := src.Open(ctx, 0)
	if err != nil {
		return err
	}
	h := sha256.New()
	hr := &hashReader{r: bufio.NewReaderSize(head, 256<<10), h: h}
	vm, err := payload.ReadManifest(ctx, hr, in.Keys)
	if err != nil {
		head.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classify(err)
	}
	m := vm.Manifest
	if err := in.checkManifest(job, m); err != nil {
		head.Close()
		return err
	}
	log.Info("payload manifest verified", "key", vm.KeyID, "operations", len(m.Operations), "partition_size", m.PartitionSize)

	// Resume: continue at the checkpointed operation when its hash state is usable.
	start := 0
	if r := job.Resume; r != nil && r.NextOperation > 0 && r.NextOperation <= len(m.Operations) && r.Offset == offsetOf(vm, r.NextOperation) {
		var cp checkpoint
		resumed := sha256.New()
		if json.Unmarshal(r.Applier, &cp) == nil && restore(resumed, cp.Hash) == nil {
			start, h = r.NextOperation, resumed
		} else {
			log.Warn("unusable download checkpoint: starting over", "operation", r.NextOperation)
		}
	}
	var data io.Reader = hr
	if start > 0 {
		head.Close()
		off := offsetOf(vm, start)
		log.Info("resuming the payload", "operation", start, "of", len(m.Operations), "offset", off)
		body, err := src.Open(ctx, off)
		if err != nil {
			return err
		}
		head = body
		hr = &hashReader{r: bufio.NewReaderSize(body, 256<<10), h: h, pos: off}
		data = hr
	}
	defer head.Close()
	// Snapshots of the hash at every operation boundary ahead of the writer, so each
	// checkpoint can store the state at exactly its offset.
	hr.marks = make(map[int64][]byte)
	hr.bounds = make([]int64, 0, len(m.Operations)+1)
	for i := start + 1; i <= len(m.Operations); i++ {
		hr.bounds = append(hr.bounds, offsetOf(vm, i))
	}

	// A delta reads the active partition: opened read-only, and every source extent checked
	// against the signed manifest before the target is even opened.
	var srcWin *disk.Window
	for _, op := range m.Operations[start:] {
		if op.Type == payload.SourceCopy {
			w, err := in.Disk.OpenSource(ctx, job.Source)
			if err != nil {
				return withCode(omaha.ErrorCodeInstallDeviceOpenError, fmt.Errorf("opening the active partition: %w", err))
			}
			defer w.Close()
			srcWin = w
			if err := checkSource(ctx, m, start, w, w.Size()); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return classify(err)
			}
			log.Info("delta source verified", "partition", job.Source)
			break
		}
	}

	tgt, err := open(ctx, job.Partition)
	if err != nil {
		return withCode(omaha.ErrorCodeInstallDeviceOpenError, err)
	}
	// Apply has returned, and with it every goroutine that reads or writes the target, before
	// this closes it.
	defer tgt.Close()

	total := job.Target.Length
	job.Progress(offsetOf(vm, start), total)
	now := in.Now
	if now == nil {
		now = time.Now
	}
	cpBytes, cpEvery := in.CheckpointBytes, in.CheckpointEvery
	if cpBytes <= 0 {
		cpBytes = 4 << 20
	}
	if cpEvery <= 0 {
		cpEvery = time.Second
	}
	lastOff, lastTime := offsetOf(vm, start), now()
	verifying := false
	var cpErr error
	cfg := payload.ApplyConfig{
		Target:     tgt,
		TargetSize: tgt.Size(),
		Sync:       tgt.Sync,
		StartOp:    start,
		Workers:    in.Workers,
		XZCommand:  in.XZCommand,
		Progress: func(p payload.Progress) {
			next := p.Op + 1
			off := offsetOf(vm, next)
			job.Progress(off, total)
			if next == p.Ops {
				if !verifying && job.Verifying != nil {
					verifying = true
					job.Verifying()
				}
				return
			}
			st, ok := hr.mark(off)
			if !ok || (off-lastOff < cpBytes && now().Sub(lastTime) < cpEvery) {
				return
			}
			lastOff, lastTime = off, now()
			// The checkpoint promises that every operation before next is on the disk: sync
			// the partition first, or a power cut keeps the checkpoint and loses the data.
			if err := tgt.Sync(); err != nil {
				if cpErr == nil {
					cpErr = err
					log.Warn("syncing the target before a checkpoint", "err", err)
				}
				return
			}
			b, _ := json.Marshal(checkpoint{Hash: st})
			if err := job.Checkpoint(state.Resume{NextOperation: next, Offset: off, Applier: b}); err != nil && cpErr == nil {
				cpErr = err
				log.Warn("saving the download checkpoint", "err", err)
			}
		},
	}
	if srcWin != nil {
		cfg.Source, cfg.SourceSize = srcWin, srcWin.Size()
	}
	err = vm.Apply(ctx, data, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classify(err)
	}
	// Step 6: the whole payload is exactly TUF's file.
	var one [1]byte
	if n, _ := io.ReadFull(hr, one[:]); n != 0 {
		return withCode(omaha.ErrorCodePayloadSizeMismatchError, payload.ErrTrailingData)
	}
	if hr.pos != total {
		return withCode(omaha.ErrorCodePayloadSizeMismatchError, fmt.Errorf("payload ended at %d bytes, TUF says %d", hr.pos, total))
	}
	if sum := h.Sum(nil); !bytes.Equal(sum, job.Target.SHA256) {
		return withCode(omaha.ErrorCodePayloadHashMismatchError, fmt.Errorf("payload SHA-256 %x, TUF pins %x", sum, job.Target.SHA256))
	}
	log.Info("payload written and verified", "bytes", total, "received", src.Received())
	return nil
}

func (in *Installer) checkManifest(job *engine.Job, m *payload.Manifest) error {
	bad := func(format string, args ...any) error {
		return withCode(omaha.ErrorCodeDownloadNewPartitionInfoError, fmt.Errorf(format, args...))
	}
	if m.Version != job.Offer.Version {
		return bad("the signed manifest is for version %q, the offer for %q", m.Version, job.Offer.Version)
	}
	if job.Target.Board != "" && m.Board != job.Target.Board {
		return bad("the signed manifest is for board %q, TUF's target for %q", m.Board, job.Target.Board)
	}
	if job.Target.PartitionSize > 0 && uint64(job.Target.PartitionSize) != m.PartitionSize {
		return bad("the manifest's partition size %d is not TUF's %d", m.PartitionSize, job.Target.PartitionSize)
	}
	if len(job.Target.PartitionSHA256) > 0 && !bytes.Equal(job.Target.PartitionSHA256, m.PartitionSHA256[:]) {
		return bad("the manifest's partition hash is not TUF's")
	}
	return nil
}

// offsetOf is the payload offset of operation k's data, or the payload's end for k = len.
func offsetOf(vm *payload.Verified, k int) int64 {
	if k < len(vm.Manifest.Operations) {
		return vm.PayloadOffset(k)
	}
	return vm.DataStart + int64(vm.Manifest.DataSize())
}

func restore(h hash.Hash, st []byte) error {
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok || len(st) == 0 {
		return errors.New("install: hash state not restorable")
	}
	return u.UnmarshalBinary(st)
}

// hashReader hashes what it reads and snapshots the hash state at the given offsets.
type hashReader struct {
	r      io.Reader
	h      hash.Hash
	pos    int64
	bounds []int64 // ascending offsets still to snapshot
	mu     sync.Mutex
	marks  map[int64][]byte
}

func (hr *hashReader) Read(p []byte) (int, error) {
	hr.mu.Lock()
	if len(hr.bounds) > 0 && hr.bounds[0] > hr.pos && int64(len(p)) > hr.bounds[0]-hr.pos {
		p = p[:hr.bounds[0]-hr.pos] // stop exactly at the next boundary
	}
	hr.mu.Unlock()
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.mu.Lock()
	hr.pos += int64(n)
	for len(hr.bounds) > 0 && hr.bounds[0] <= hr.pos {
		if hr.bounds[0] == hr.pos && hr.marks != nil {
			if m, ok := hr.h.(encoding.BinaryMarshaler); ok {
				if st, err := m.MarshalBinary(); err == nil {
					hr.marks[hr.pos] = st
				}
			}
		}
		hr.bounds = hr.bounds[1:]
	}
	hr.mu.Unlock()
	return n, err
}

// mark returns (and forgets, with every earlier one) the hash state at off.
func (hr *hashReader) mark(off int64) ([]byte, bool) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	st, ok := hr.marks[off]
	for k := range hr.marks {
		if k <= off {
			delete(hr.marks, k)
		}
	}
	return st, ok
}
