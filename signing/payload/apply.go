package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/xi2/xz"

	"github.com/switchyard-os/switchyard/signing/keys"
)

// Progress is reported after each operation is written.
type Progress struct {
	// Op is the index of the operation just written; operations up to and including Op
	// are written (and, since StartOp, verified).
	Op int
	// Ops is the manifest's operation count.
	Ops int
	// BytesWritten counts the partition bytes written in this run.
	BytesWritten int64
	// BytesRead counts the data-section bytes read from the reader in this run.
	BytesRead int64
}

// ApplyConfig says where and how to apply.
type ApplyConfig struct {
	// Target receives the partition and must be safe for concurrent use. If it is also an
	// io.ReaderAt (an *os.File is), the partition hash is computed by re-reading it, each
	// region as soon as no remaining operation writes it; a *HashingSink is hashed as
	// written. Any other target is refused before a byte is written.
	Target io.WriterAt
	// TargetSize, when > 0, is the target's size. Without it the size comes from the
	// target's Size method (update-engine's disk window) or, for a file, its length (a
	// regular file) or its end (a block device); a target of unknown size is refused. The
	// size must be the manifest's partition size: a larger target would keep stale bytes
	// after the partition, a smaller one would be grown. An empty regular file is a new
	// image and is first sized to the partition (when applying from operation 0).
	TargetSize int64
	// Source is the active partition, read by SOURCE_COPY operations.
	Source io.ReaderAt
	// SourceSize, when > 0, bounds SOURCE_COPY reads.
	SourceSize int64
	// Sync runs after the last write (e.g. (*os.File).Sync); Apply succeeds only when
	// it and the partition hash both do.
	Sync func() error
	// StartOp is the first operation to apply; the reader must be positioned at its data
	// (Verified.PayloadOffset(StartOp)).
	StartOp int
	// Workers is the number of decompression workers (0: GOMAXPROCS).
	Workers int
	// Progress, if set, is called in operation order after each operation is written.
	Progress func(Progress)
	// XZCommand, when set, is the path of xz-utils' xz, used to decode REPLACE_XZ chunks
	// (liblzma decodes about 1.4 times as fast as github.com/xi2/xz). The chunk has passed
	// its hash and dictionary checks first, and the output is bounded the same way. Empty
	// means github.com/xi2/xz in-process.
	XZCommand string
}

// Apply reads a whole payload from r, verifies its manifest against the accepted keys,
// and applies it (see Verified.Apply).
func Apply(ctx context.Context, r io.Reader, v *keys.Verifier, cfg ApplyConfig) (*Verified, error) {
	vm, err := ReadManifest(ctx, r, v)
	if err != nil {
		return nil, err
	}
	if cfg.StartOp != 0 {
		return nil, errors.New("payload: Apply reads from the start; use Verified.Apply to resume")
	}
	return vm, vm.Apply(ctx, r, cfg)
}

type job struct {
	idx  int
	op   *Operation
	data []byte // verified data (REPLACE*), nil otherwise; returned to the pool by the worker
	err  error
	read int64
	done chan struct{}
}

// pieceSize is the unit workers decode and write in.
const pieceSize = 1 << 20

// Apply applies operations StartOp.. from r, which is positioned at operation StartOp's
// data, to cfg.Target, then checks the whole partition's SHA-256.
func (v *Verified) Apply(ctx context.Context, r io.Reader, cfg ApplyConfig) error {
	m := v.Manifest
	if cfg.Target == nil {
		return errors.New("payload: no target")
	}
	if cfg.StartOp < 0 || cfg.StartOp > len(m.Operations) {
		return fmt.Errorf("payload: start operation %d of %d", cfg.StartOp, len(m.Operations))
	}
	for i := cfg.StartOp; i < len(m.Operations); i++ {
		if len(m.Operations[i].Src) > 0 && cfg.Source == nil {
			return fmt.Errorf("%w (operation %d)", ErrNoSource, i)
		}
	}
	if m.Source != nil {
		if cfg.Source == nil {
			return ErrNoSource
		}
		if err := checkSourceSize(cfg, m.Source.Size); err != nil {
			return err
		}
	}
	sink, isSink := cfg.Target.(*HashingSink)
	reread, canReread := cfg.Target.(io.ReaderAt)
	if !isSink && !canReread {
		return errors.New("payload: target can be neither re-read nor hashed")
	}
	if !isSink {
		if err := checkTargetSize(cfg, m.PartitionSize); err != nil {
			return err
		}
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	dec, err := newDecoders(workers)
	if err != nil {
		return err
	}
	defer dec.close()
	var hasher *prefixHasher
	if !isSink {
		hasher = newPrefixHasher(ctx, m, reread, cfg.StartOp)
		// Every path out waits for the hasher's reads: the caller closes the target next.
		defer hasher.stop()
	}

	// Pipeline: the reader stage reads and hash-checks each operation's data in order and
	// queues it both for a worker and for the in-order completion stage. Workers decode in
	// pieces and write straight to the target with positional writes; the completion stage
	// reports progress in operation order. At most workers+1 jobs exist at a time (the
	// tokens), and their data buffers are recycled, so memory does not grow with the payload.
	tokens := make(chan struct{}, workers+1)
	pool := make(chan []byte, workers+1)
	work := make(chan *job, workers+1)
	ordered := make(chan *job, workers+1)
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(work)
		defer close(ordered)
		readErr = v.readStage(ctx, r, cfg.StartOp, tokens, pool, work, ordered)
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, pieceSize)
			for j := range work {
				if ctx.Err() == nil {
					j.err = v.process(ctx, j, dec.get(w), buf, cfg)
				}
				if j.data != nil {
					select {
					case pool <- j.data[:0]:
					default:
					}
					j.data = nil
				}
				close(j.done)
			}
		}(w)
	}
	werr := v.completeStage(ctx, ordered, tokens, hasher, cfg)
	if werr != nil {
		cancel()
		for range ordered { //nolint:revive // drain so the reader stage can exit
		}
	}
	wg.Wait()
	if werr != nil {
		return werr
	}
	if readErr != nil {
		return readErr
	}
	// Every write has returned. The sync flushes the partition while the hasher reads
	// the rest of it from the page cache; both must succeed.
	syncErr := make(chan error, 1)
	go func() {
		if cfg.Sync == nil {
			syncErr <- nil
			return
		}
		if err := cfg.Sync(); err != nil {
			syncErr <- &TargetError{Op: "syncing target", Err: err}
			return
		}
		syncErr <- nil
	}()
	var got [32]byte
	var hashErr error
	if isSink {
		var n int64
		got, n = sink.Sum()
		if uint64(n) != m.PartitionSize || sink.waiting() != 0 {
			hashErr = fmt.Errorf("%w: %d bytes written sequentially, want %d", ErrPartitionHash, n, m.PartitionSize)
		}
	} else {
		got, hashErr = hasher.finish()
	}
	if err := <-syncErr; err != nil {
		return err
	}
	if hashErr != nil {
		return hashErr
	}
	if got != m.PartitionSHA256 {
		return fmt.Errorf("%w: got %x, manifest %x", ErrPartitionHash, got[:8], m.PartitionSHA256[:8])
	}
	return nil
}

func (v *Verified) readStage(ctx context.Context, r io.Reader, start int, tokens chan struct{}, pool chan []byte, work, ordered chan<- *job) error {
	m := v.Manifest
	for i := start; i < len(m.Operations); i++ {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		op := &m.Operations[i]
		j := &job{idx: i, op: op, done: make(chan struct{})}
		if op.DataLength > 0 {
			var buf []byte
			select {
			case buf = <-pool:
			default:
			}
			if uint64(cap(buf)) < op.DataLength {
				buf = make([]byte, op.DataLength)
			}
			j.data = buf[:op.DataLength]
			if err := readFull(r, j.data, fmt.Sprintf("operation %d data", i)); err != nil {
				return err
			}
			if sha256.Sum256(j.data) != op.SHA256 {
				return fmt.Errorf("%w: operation %d", ErrDataHash, i)
			}
			j.read = int64(op.DataLength)
		}
		// ordered first: the completion stage must learn of the job before a worker ends it.
		select {
		case ordered <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case work <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n > 0 {
		return ErrTrailingData
	}
	if err != nil && err != io.EOF { // the end itself, not a reader's error wrapping it (see readFull)
		return &ReadError{What: "after the last operation", Err: err}
	}
	return nil
}

// checkTargetSize refuses a target whose size is not the partition's, before anything is
// written (see ApplyConfig.TargetSize), and sizes an empty image file.
func checkTargetSize(cfg ApplyConfig, partition uint64) error {
	size, grow, err := targetSize(cfg)
	if err != nil {
		return err
	}
	if grow && cfg.StartOp == 0 {
		if err := cfg.Target.(interface{ Truncate(int64) error }).Truncate(int64(partition)); err != nil {
			return &TargetError{Op: "sizing target", Err: err}
		}
		return nil
	}
	if uint64(size) != partition {
		return fmt.Errorf("%w: target %d bytes, partition %d bytes", ErrTargetSize, size, partition)
	}
	return nil
}

// targetSize returns the target's size and whether it is an empty regular file that can be
// grown.
func targetSize(cfg ApplyConfig) (size int64, grow bool, err error) {
	if cfg.TargetSize > 0 {
		return cfg.TargetSize, false, nil
	}
	switch t := cfg.Target.(type) {
	case interface{ Size() int64 }:
		return t.Size(), false, nil
	case interface{ Stat() (os.FileInfo, error) }:
		st, err := t.Stat()
		if err != nil {
			return 0, false, &TargetError{Op: "sizing target", Err: err}
		}
		if st.Mode().IsRegular() {
			_, canGrow := t.(interface{ Truncate(int64) error })
			return st.Size(), st.Size() == 0 && canGrow, nil
		}
		// A block device's length is where it ends (the offset is unused: writes are
		// positional).
		if sk, ok := t.(io.Seeker); ok {
			end, err := sk.Seek(0, io.SeekEnd)
			if err != nil {
				return 0, false, &TargetError{Op: "sizing target", Err: err}
			}
			return end, false, nil
		}
	}
	return 0, false, errors.New("payload: target size unknown (set ApplyConfig.TargetSize)")
}

// extentWriter maps a sequential byte stream onto an operation's destination extents. Its
// errors carry the package prefix and the operation's index.
type extentWriter struct {
	target io.WriterAt
	op     int // the operation's index, for errors
	ext    []Extent
	bs     uint64
	i      int    // current extent
	pos    uint64 // bytes written into the current extent
	total  uint64
}

func (w *extentWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.i >= len(w.ext) {
			return n, fmt.Errorf("%w: operation %d", errTooMuch, w.op)
		}
		e := w.ext[w.i]
		room := e.Count*w.bs - w.pos
		c := min(uint64(len(p)), room)
		if _, err := w.target.WriteAt(p[:c], int64(e.Start*w.bs+w.pos)); err != nil {
			return n, &TargetError{Op: fmt.Sprintf("writing operation %d", w.op), Err: err}
		}
		n += int(c)
		p = p[c:]
		w.pos += c
		w.total += c
		if w.pos == e.Count*w.bs {
			w.i++
			w.pos = 0
		}
	}
	return n, nil
}

// errTooMuch: an operation produced more bytes than its destination extents hold.
var errTooMuch = errors.New("payload: more output than the destination extents hold")

// process verifies (already done for data), decodes and writes one operation.
func (v *Verified) process(ctx context.Context, j *job, d *decoder2, buf []byte, cfg ApplyConfig) error {
	m := v.Manifest
	size := m.opBytes(j.op)
	w := &extentWriter{target: cfg.Target, op: j.idx, ext: j.op.Dst, bs: uint64(m.BlockSize)}
	// decoded copies a decompressor's output to the extents and checks its length.
	decoded := func(r io.Reader) error {
		if _, err := io.CopyBuffer(w, r, buf); err != nil {
			if errors.Is(err, errTooMuch) {
				return fmt.Errorf("%w: operation %d: more than %d bytes", ErrDecompress, j.idx, size)
			}
			var te *TargetError
			if errors.As(err, &te) {
				return err
			}
			return fmt.Errorf("%w: operation %d: %v", ErrDecompress, j.idx, err)
		}
		if w.total != size {
			return fmt.Errorf("%w: operation %d: %d bytes, want %d", ErrDecompress, j.idx, w.total, size)
		}
		return nil
	}
	switch j.op.Type {
	case Replace:
		if _, err := w.Write(j.data); err != nil {
			return err // names the operation already
		}
	case ReplaceXZ:
		if err := checkXZ(j.data, size); err != nil {
			return fmt.Errorf("operation %d: %w", j.idx, err)
		}
		if cfg.XZCommand != "" {
			return v.xzCommand(ctx, j, cfg.XZCommand, w, size, decoded)
		}
		// The worker's reader keeps its dictionary from chunk to chunk: memory stays at one
		// dictionary per worker, whatever the number of chunks.
		if err := d.xz.Reset(bytes.NewReader(j.data)); err != nil {
			return fmt.Errorf("%w: operation %d: %v", ErrDecompress, j.idx, err)
		}
		d.xz.Multistream(false)
		return decoded(io.LimitReader(d.xz, int64(size)+1))
	case ReplaceZstd:
		if err := d.zstd.Reset(bytes.NewReader(j.data)); err != nil {
			return fmt.Errorf("%w: operation %d: %v", ErrDecompress, j.idx, err)
		}
		return decoded(io.LimitReader(d.zstd, int64(size)+1))
	case Zero:
		for _, e := range j.op.Dst {
			off, n := e.Start*uint64(m.BlockSize), e.Count*uint64(m.BlockSize)
			for n > 0 {
				c := min(n, uint64(len(zeroBlock)))
				if _, err := cfg.Target.WriteAt(zeroBlock[:c], int64(off)); err != nil {
					return &TargetError{Op: fmt.Sprintf("writing operation %d", j.idx), Err: err}
				}
				off += c
				n -= c
			}
		}
	case SourceCopy, SourceZstd:
		if m.Source != nil {
			return v.fromSource(ctx, j, d, w, cfg, decoded)
		}
		// Format 1: two passes, hash the source extents, and only when they match copy
		// them. (Format 2 bounds an operation's source bytes, so it reads them once into
		// memory: every byte used is a byte hashed.)
		bs := uint64(m.BlockSize)
		pass := func(out io.Writer) error {
			for _, e := range j.op.Src {
				off, n := e.Start*bs, e.Count*bs
				if cfg.SourceSize > 0 && off+n > uint64(cfg.SourceSize) {
					return fmt.Errorf("%w: operation %d source %d+%d beyond %d bytes", ErrExtentOutside, j.idx, off, n, cfg.SourceSize)
				}
				for n > 0 {
					c := min(n, uint64(len(buf)))
					if _, err := cfg.Source.ReadAt(buf[:c], int64(off)); err != nil {
						return fmt.Errorf("payload: operation %d reading source: %w", j.idx, err)
					}
					if _, err := out.Write(buf[:c]); err != nil {
						return err // only the extent writer fails, and it names the operation
					}
					off += c
					n -= c
				}
			}
			return nil
		}
		h := sha256.New()
		if err := pass(h); err != nil {
			return err
		}
		if !bytes.Equal(h.Sum(nil), j.op.SHA256[:]) {
			return fmt.Errorf("%w: operation %d", ErrSourceHash, j.idx)
		}
		if err := pass(w); err != nil {
			return err
		}
	}
	return ctx.Err()
}

var zeroBlock = make([]byte, pieceSize) // read-only

// completeStage waits for operations in order and reports progress.
func (v *Verified) completeStage(ctx context.Context, ordered <-chan *job, tokens chan struct{}, hasher *prefixHasher, cfg ApplyConfig) error {
	m := v.Manifest
	var written, read int64
	for j := range ordered {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			return j.err
		}
		if hasher != nil {
			hasher.done(j.idx)
		}
		written += int64(m.opBytes(j.op))
		read += j.read
		<-tokens
		if cfg.Progress != nil {
			cfg.Progress(Progress{Op: j.idx, Ops: len(m.Operations), BytesWritten: written, BytesRead: read})
		}
	}
	return nil
}

// HashingSink is an io.WriterAt that hashes a partition as it is written, so a payload can
// be verified end to end without a partition. Writes may arrive out of order (parallel
// workers); a write ahead of the hashed prefix is copied and held until the gap before it
// is filled, up to MaxSinkPending bytes, beyond which WriteAt fails. The builder's payloads,
// whose operations are in partition order, need at most about one operation per worker.
type HashingSink struct {
	mu      sync.Mutex
	n       int64
	pending map[int64][]byte
	held    int64
	sha     interface {
		io.Writer
		Sum([]byte) []byte
	}
}

// MaxSinkPending bounds the out-of-order bytes a HashingSink holds.
const MaxSinkPending = 256 << 20

// NewHashingSink returns an empty sink.
func NewHashingSink() *HashingSink {
	return &HashingSink{sha: sha256.New(), pending: map[int64][]byte{}}
}

// WriteAt hashes p if it continues the hashed prefix, or holds a copy until it does.
func (s *HashingSink) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case off < s.n:
		return 0, fmt.Errorf("payload: hashing sink: offset %d rewritten (hashed up to %d)", off, s.n)
	case off > s.n:
		if _, dup := s.pending[off]; dup {
			return 0, fmt.Errorf("payload: hashing sink: offset %d written twice", off)
		}
		if s.held+int64(len(p)) > MaxSinkPending {
			return 0, fmt.Errorf("payload: hashing sink: more than %d bytes out of order", MaxSinkPending)
		}
		s.pending[off] = append([]byte(nil), p...)
		s.held += int64(len(p))
		return len(p), nil
	}
	s.sha.Write(p)
	s.n += int64(len(p))
	for {
		q, ok := s.pending[s.n]
		if !ok {
			break
		}
		delete(s.pending, s.n)
		s.held -= int64(len(q))
		s.sha.Write(q)
		s.n += int64(len(q))
	}
	return len(p), nil
}

// waiting is the number of out-of-order writes waiting for the gap before them.
func (s *HashingSink) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Sum returns the SHA-256 and length of the contiguous prefix written.
func (s *HashingSink) Sum() ([32]byte, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [32]byte
	s.sha.Sum(out[:0])
	return out, s.n
}

// decoder2 holds one worker's reusable decoders.
type decoder2 struct {
	zstd  *zstd.Decoder
	xz    *xz.Reader
	patch *zstd.Decoder // SOURCE_ZSTD, its dictionary set per operation
	src   []byte        // source bytes of the current delta operation, up to MaxSourceRead
}

type decoders struct{ d []*decoder2 }

func newDecoders(n int) (*decoders, error) {
	ds := &decoders{}
	for i := 0; i < n; i++ {
		z, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(MaxOperationSize),
			zstd.WithDecoderMaxMemory(MaxOperationSize),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			ds.close()
			return nil, fmt.Errorf("payload: zstd decoder: %w", err)
		}
		// A nil source makes an idle reader that Reset points at each chunk. checkXZ has
		// bounded the dictionary before a chunk reaches it; MaxXZDictSize is the backstop.
		x, err := xz.NewReader(nil, MaxXZDictSize)
		if err != nil {
			z.Close()
			ds.close()
			return nil, fmt.Errorf("payload: xz decoder: %w", err)
		}
		// The patch decoder's window covers its dictionary and its output; validation has
		// bounded both.
		p, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(maxPatchWindow),
			zstd.WithDecoderMaxMemory(maxPatchWindow),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			z.Close()
			ds.close()
			return nil, fmt.Errorf("payload: zstd decoder: %w", err)
		}
		ds.d = append(ds.d, &decoder2{zstd: z, xz: x, patch: p})
	}
	return ds, nil
}

func (ds *decoders) get(i int) *decoder2 { return ds.d[i] }

func (ds *decoders) close() {
	for _, d := range ds.d {
		d.zstd.Close()
		d.patch.Close()
	}
}

// xzCommand decodes a REPLACE_XZ chunk with xz-utils.
func (v *Verified) xzCommand(ctx context.Context, j *job, path string, w *extentWriter, size uint64, decoded func(io.Reader) error) error {
	cmd := exec.CommandContext(ctx, path, "--decompress", "--stdout", "--single-stream", "--threads=1",
		"--memlimit-decompress="+strconv.Itoa(MaxXZDictSize+(16<<20)))
	cmd.Stdin = bytes.NewReader(j.data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("payload: %s: %w", path, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("payload: %s: %w", path, err)
	}
	derr := decoded(io.LimitReader(out, int64(size)+1))
	if derr != nil {
		cmd.Process.Kill()
	}
	werr := cmd.Wait()
	if derr != nil {
		return derr
	}
	if werr != nil {
		return fmt.Errorf("%w: operation %d: %s: %v: %s", ErrDecompress, j.idx, path, werr, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// ErrUnknownXZDecoder is returned by XZDecoderCommand for a choice it does not know.
var ErrUnknownXZDecoder = errors.New("payload: unknown xz decoder (auto, go or xz-utils)")

// XZDecoderCommand turns a decoder choice into ApplyConfig.XZCommand: "go" is the
// in-process decoder (""), "xz-utils" the xz on PATH (an error when there is none), and
// "auto" the xz on PATH when there is one, else the in-process decoder.
func XZDecoderCommand(choice string) (string, error) {
	switch choice {
	case "go":
		return "", nil
	case "auto", "xz-utils":
		p, err := exec.LookPath("xz")
		if err != nil && choice == "xz-utils" {
			return "", fmt.Errorf("payload: xz decoder xz-utils: %w (apt-get install xz-utils)", err)
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownXZDecoder, choice)
}
