package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

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
	// Target receives the partition. If it is also an io.ReaderAt (an *os.File is) the
	// final hash is computed by re-reading it; a *HashingSink is hashed as written.
	Target io.WriterAt
	// TargetSize, when > 0, is the target's size; it must hold the partition.
	TargetSize int64
	// Source is the active partition, read by SOURCE_COPY operations.
	Source io.ReaderAt
	// SourceSize, when > 0, bounds SOURCE_COPY reads.
	SourceSize int64
	// Sync runs after the last write and before the final hash (e.g. (*os.File).Sync).
	Sync func() error
	// StartOp is the first operation to apply; the reader must be positioned at its data
	// (Verified.PayloadOffset(StartOp)).
	StartOp int
	// Workers is the number of decompression workers (0: GOMAXPROCS).
	Workers int
	// Progress, if set, is called in operation order after each operation is written.
	Progress func(Progress)
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
	data []byte // verified data (REPLACE*), nil otherwise
	out  []byte // bytes to write; nil for ZERO
	err  error
	read int64
	done chan struct{}
}

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
	if cfg.TargetSize > 0 && uint64(cfg.TargetSize) < m.PartitionSize {
		return fmt.Errorf("%w: %d bytes for %d", ErrTargetTooSmall, cfg.TargetSize, m.PartitionSize)
	}
	for i := cfg.StartOp; i < len(m.Operations); i++ {
		if m.Operations[i].Type == SourceCopy && cfg.Source == nil {
			return fmt.Errorf("%w (operation %d)", ErrNoSource, i)
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

	// Pipeline: the reader stage reads and hash-checks each operation's data in order and
	// queues it both for a worker and for the in-order writer; at most workers+1 jobs
	// exist at a time (the tokens), which bounds memory.
	tokens := make(chan struct{}, workers+1)
	work := make(chan *job, workers+1)
	ordered := make(chan *job, workers+1)
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(work)
		defer close(ordered)
		readErr = v.readStage(ctx, r, cfg.StartOp, tokens, work, ordered)
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := range work {
				if ctx.Err() == nil {
					j.err = v.process(ctx, j, dec.get(w), cfg)
				}
				close(j.done)
			}
		}(w)
	}
	werr := v.writeStage(ctx, ordered, tokens, cfg)
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
	if cfg.Sync != nil {
		if err := cfg.Sync(); err != nil {
			return fmt.Errorf("payload: syncing target: %w", err)
		}
	}
	return v.checkPartition(ctx, cfg.Target)
}

func (v *Verified) readStage(ctx context.Context, r io.Reader, start int, tokens chan struct{}, work, ordered chan<- *job) error {
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
			j.data = make([]byte, op.DataLength)
			if err := readFull(r, j.data, fmt.Sprintf("operation %d data", i)); err != nil {
				return err
			}
			if sha256.Sum256(j.data) != op.SHA256 {
				return fmt.Errorf("%w: operation %d", ErrDataHash, i)
			}
			j.read = int64(op.DataLength)
		}
		// ordered first: the writer must learn of the job before a worker can finish it.
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
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("payload: reading after the last operation: %w", err)
	}
	return nil
}

// process turns a job's verified input into the bytes to write.
func (v *Verified) process(ctx context.Context, j *job, d *decoder2, cfg ApplyConfig) error {
	m := v.Manifest
	size := m.opBytes(j.op)
	switch j.op.Type {
	case Replace:
		j.out = j.data
	case ReplaceXZ:
		if err := checkXZ(j.data, size); err != nil {
			return fmt.Errorf("operation %d: %w", j.idx, err)
		}
		out := make([]byte, size)
		zr, err := xz.ReaderConfig{SingleStream: true}.NewReader(bytes.NewReader(j.data))
		if err != nil {
			return fmt.Errorf("%w: operation %d: %v", ErrDecompress, j.idx, err)
		}
		if _, err := io.ReadFull(zr, out); err != nil {
			return fmt.Errorf("%w: operation %d: %v", ErrDecompress, j.idx, err)
		}
		var one [1]byte
		if n, err := zr.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: operation %d: more than %d bytes or bad stream end (%v)", ErrDecompress, j.idx, size, err)
		}
		j.out = out
	case ReplaceZstd:
		out, err := d.zstd.DecodeAll(j.data, make([]byte, 0, size))
		if err != nil {
			return fmt.Errorf("%w: operation %d: %v", ErrDecompress, j.idx, err)
		}
		if uint64(len(out)) != size {
			return fmt.Errorf("%w: operation %d: %d bytes, want %d", ErrDecompress, j.idx, len(out), size)
		}
		j.out = out
	case Zero:
	case SourceCopy:
		bs := uint64(m.BlockSize)
		out := make([]byte, 0, size)
		for _, e := range j.op.Src {
			off, n := e.Start*bs, e.Count*bs
			if cfg.SourceSize > 0 && off+n > uint64(cfg.SourceSize) {
				return fmt.Errorf("%w: operation %d source %d+%d beyond %d bytes", ErrExtentOutside, j.idx, off, n, cfg.SourceSize)
			}
			buf := out[len(out) : len(out)+int(n)]
			if _, err := cfg.Source.ReadAt(buf, int64(off)); err != nil {
				return fmt.Errorf("payload: operation %d reading source: %w", j.idx, err)
			}
			out = out[:len(out)+int(n)]
		}
		if sha256.Sum256(out) != j.op.SHA256 {
			return fmt.Errorf("%w: operation %d", ErrSourceHash, j.idx)
		}
		j.out = out
	}
	j.data = nil
	return ctx.Err()
}

var zeroBlock = make([]byte, 1<<20) // read-only

func (v *Verified) writeStage(ctx context.Context, ordered <-chan *job, tokens chan struct{}, cfg ApplyConfig) error {
	m := v.Manifest
	bs := int64(m.BlockSize)
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
		pos := 0
		for _, e := range j.op.Dst {
			off, n := int64(e.Start)*bs, int64(e.Count)*bs
			if j.op.Type == Zero {
				for n > 0 {
					c := min(n, int64(len(zeroBlock)))
					if _, err := cfg.Target.WriteAt(zeroBlock[:c], off); err != nil {
						return fmt.Errorf("payload: writing operation %d: %w", j.idx, err)
					}
					off += c
					n -= c
				}
				continue
			}
			if _, err := cfg.Target.WriteAt(j.out[pos:pos+int(n)], off); err != nil {
				return fmt.Errorf("payload: writing operation %d: %w", j.idx, err)
			}
			pos += int(n)
		}
		written += int64(m.opBytes(j.op))
		read += j.read
		j.out = nil
		<-tokens
		if cfg.Progress != nil {
			cfg.Progress(Progress{Op: j.idx, Ops: len(m.Operations), BytesWritten: written, BytesRead: read})
		}
	}
	return nil
}

// checkPartition hashes the result and compares it with the manifest.
func (v *Verified) checkPartition(ctx context.Context, target io.WriterAt) error {
	m := v.Manifest
	var got [32]byte
	switch t := target.(type) {
	case *HashingSink:
		s, n := t.Sum()
		if uint64(n) != m.PartitionSize {
			return fmt.Errorf("%w: %d bytes written sequentially, want %d", ErrPartitionHash, n, m.PartitionSize)
		}
		got = s
	case io.ReaderAt:
		h := sha256.New()
		buf := make([]byte, 1<<20)
		for off := uint64(0); off < m.PartitionSize; {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(uint64(len(buf)), m.PartitionSize-off)
			if _, err := t.ReadAt(buf[:n], int64(off)); err != nil {
				return fmt.Errorf("payload: re-reading target: %w", err)
			}
			h.Write(buf[:n])
			off += n
		}
		h.Sum(got[:0])
	default:
		return errors.New("payload: target can be neither re-read nor hashed")
	}
	if got != m.PartitionSHA256 {
		return fmt.Errorf("%w: got %x, manifest %x", ErrPartitionHash, got[:8], m.PartitionSHA256[:8])
	}
	return nil
}

// HashingSink is an io.WriterAt that hashes what is written to it in order (writes must be
// sequential). It lets a payload be verified end to end without a partition.
type HashingSink struct {
	mu  sync.Mutex
	n   int64
	sha interface {
		io.Writer
		Sum([]byte) []byte
	}
}

// NewHashingSink returns an empty sink.
func NewHashingSink() *HashingSink { return &HashingSink{sha: sha256.New()} }

// WriteAt hashes p, which must start where the previous write ended.
func (s *HashingSink) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off != s.n {
		return 0, fmt.Errorf("payload: hashing sink needs sequential writes (offset %d, have %d)", off, s.n)
	}
	s.sha.Write(p)
	s.n += int64(len(p))
	return len(p), nil
}

// Sum returns the SHA-256 and length of what was written.
func (s *HashingSink) Sum() ([32]byte, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [32]byte
	s.sha.Sum(out[:0])
	return out, s.n
}

// decoder2 holds one worker's reusable decoders.
type decoder2 struct {
	zstd *zstd.Decoder
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
		ds.d = append(ds.d, &decoder2{zstd: z})
	}
	return ds, nil
}

func (ds *decoders) get(i int) *decoder2 { return ds.d[i] }

func (ds *decoders) close() {
	for _, d := range ds.d {
		d.zstd.Close()
	}
}
