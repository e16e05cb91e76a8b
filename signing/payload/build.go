package payload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// BuildConfig describes a payload to build.
type BuildConfig struct {
	Version string
	Board   string
	// ChunkSize is the bytes per operation (default DefaultChunkSize; a multiple of the
	// block size, at most MaxOperationSize).
	ChunkSize int64
	// BlockSize defaults to DefaultBlockSize; the image size must be a multiple of it.
	BlockSize uint32
	// Compression is ReplaceXZ (the default), ReplaceZstd or Replace.
	Compression Type
	// XZCommand, when set, is the path of xz-utils' xz, used to compress REPLACE_XZ chunks
	// (xz -6 -T1): it compresses closer to one whole-image stream than the Go encoder. Empty
	// means github.com/ulikunitz/xz with an 8 MiB dictionary. Both make standard .xz streams
	// that the applier decodes the same way.
	XZCommand string
	// Source, when set, is the image the target will be updated from (SourceSize bytes,
	// version SourceVersion), and Build writes a delta payload (format 2; see the package
	// doc, "Delta payloads"): blocks found anywhere in the source become SOURCE_COPY, the
	// rest SOURCE_ZSTD patches against the source blocks most like them. ChunkSize,
	// Compression and XZCommand do not apply to a delta.
	Source        io.ReaderAt
	SourceSize    int64
	SourceVersion string
	// Workers compress in parallel (0: GOMAXPROCS).
	Workers int
	// TempDir holds the compressed data until the manifest is known ("" = os.TempDir()).
	TempDir string
	// Progress, if set, is called with image bytes done and total.
	Progress func(done, total int64)
}

type buildJob struct {
	idx  int
	off  int64
	raw  []byte
	op   Operation
	data []byte
	err  error
	done chan struct{}
}

// Build writes an unsigned payload for the image (size bytes) to out and returns its
// manifest. All-zero chunks become ZERO operations; compressed chunks that do not shrink
// are stored as REPLACE.
func Build(ctx context.Context, image io.ReaderAt, size int64, out io.Writer, cfg BuildConfig) (*Manifest, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.Compression == 0 {
		cfg.Compression = ReplaceXZ
	}
	bs := int64(cfg.BlockSize)
	switch {
	case cfg.Compression != ReplaceXZ && cfg.Compression != ReplaceZstd && cfg.Compression != Replace:
		return nil, fmt.Errorf("payload: compression %s is not a chunk encoding", cfg.Compression)
	case cfg.ChunkSize <= 0 || cfg.ChunkSize%bs != 0 || cfg.ChunkSize > MaxOperationSize:
		return nil, fmt.Errorf("payload: chunk size %d must be a positive multiple of %d up to %d", cfg.ChunkSize, bs, MaxOperationSize)
	case size <= 0 || size%bs != 0:
		return nil, fmt.Errorf("payload: image size %d is not a positive multiple of the block size %d", size, bs)
	case uint64(size) > MaxPartitionSize:
		return nil, fmt.Errorf("payload: image size %d exceeds %d", size, int64(MaxPartitionSize))
	case (size+cfg.ChunkSize-1)/cfg.ChunkSize > MaxOperations:
		return nil, fmt.Errorf("payload: %d-byte chunks make more than %d operations", cfg.ChunkSize, MaxOperations)
	}
	m := &Manifest{BlockSize: cfg.BlockSize, PartitionSize: uint64(size), Version: cfg.Version, Board: cfg.Board}
	if !validLabel(cfg.Version) || !validLabel(cfg.Board) {
		return nil, fmt.Errorf("payload: version %q and board %q must be 1..%d printable characters without spaces", cfg.Version, cfg.Board, MaxLabel)
	}
	if cfg.Source != nil {
		return buildDelta(ctx, image, size, out, cfg)
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	tmp, err := os.CreateTemp(cfg.TempDir, "payload-data-*")
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	enc, err := newEncoder(cfg)
	if err != nil {
		return nil, err
	}
	defer enc.close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := int((size + cfg.ChunkSize - 1) / cfg.ChunkSize)
	tokens := make(chan struct{}, workers+1)
	work := make(chan *buildJob, workers+1)
	ordered := make(chan *buildJob, workers+1)
	var readErr error
	go func() {
		defer close(work)
		defer close(ordered)
		for i := 0; i < n; i++ {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
			off := int64(i) * cfg.ChunkSize
			j := &buildJob{idx: i, off: off, raw: make([]byte, min(cfg.ChunkSize, size-off)), done: make(chan struct{})}
			if _, err := image.ReadAt(j.raw, off); err != nil {
				readErr = fmt.Errorf("payload: reading image at %d: %w", off, err)
				return
			}
			ordered <- j
			work <- j
		}
	}()
	for w := 0; w < workers; w++ {
		go func() {
			for j := range work {
				if ctx.Err() == nil {
					j.err = buildChunk(ctx, j, cfg, enc)
				}
				close(j.done)
			}
		}()
	}
	whole := sha256.New()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	var dataOff uint64
	var done int64
	var werr error
	for j := range ordered {
		<-j.done
		if werr == nil && j.err != nil {
			werr = j.err
		}
		if werr != nil {
			cancel()
			<-tokens
			continue
		}
		whole.Write(j.raw)
		j.op.DataOffset = dataOff
		j.op.DataLength = uint64(len(j.data))
		if _, err := bw.Write(j.data); err != nil {
			werr = fmt.Errorf("payload: writing temporary data: %w", err)
		}
		dataOff += uint64(len(j.data))
		m.Operations = append(m.Operations, j.op)
		done += int64(len(j.raw))
		j.raw, j.data = nil, nil
		<-tokens
		if cfg.Progress != nil {
			cfg.Progress(done, size)
		}
	}
	if werr != nil {
		return nil, werr
	}
	if readErr != nil {
		return nil, readErr
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("payload: writing temporary data: %w", err)
	}
	whole.Sum(m.PartitionSHA256[:0])
	mb, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	e := &Envelope{Header: Header{Version: m.FormatVersion()}, ManifestBytes: mb, Manifest: m}
	if err := e.WriteHead(out); err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if _, err := io.Copy(out, bufio.NewReaderSize(tmp, 1<<20)); err != nil {
		return nil, fmt.Errorf("payload: writing data: %w", err)
	}
	return m, nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func buildChunk(ctx context.Context, j *buildJob, cfg BuildConfig, enc *encoder) error {
	bs := int64(cfg.BlockSize)
	ext := []Extent{{Start: uint64(j.off / bs), Count: uint64(int64(len(j.raw)) / bs)}}
	j.op = Operation{Dst: ext}
	if allZero(j.raw) {
		j.op.Type = Zero
		return nil
	}
	var data []byte
	var err error
	switch cfg.Compression {
	case ReplaceXZ:
		data, err = enc.xz(ctx, j.raw)
	case ReplaceZstd:
		data = enc.zstd.EncodeAll(j.raw, nil)
	}
	if err != nil {
		return err
	}
	if cfg.Compression == Replace || len(data) >= len(j.raw) {
		j.op.Type = Replace
		data = j.raw
	} else {
		j.op.Type = cfg.Compression
	}
	j.data = data
	j.op.SHA256 = sha256.Sum256(data)
	return nil
}

type encoder struct {
	xzCommand string
	zstd      *zstd.Encoder
}

func newEncoder(cfg BuildConfig) (*encoder, error) {
	e := &encoder{xzCommand: cfg.XZCommand}
	if cfg.Compression == ReplaceZstd {
		w, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(windowFor(cfg.ChunkSize)))
		if err != nil {
			return nil, fmt.Errorf("payload: zstd encoder: %w", err)
		}
		e.zstd = w
	}
	return e, nil
}

// windowFor is the smallest zstd window (a power of two, at least 1 MiB) covering a chunk.
func windowFor(chunk int64) int {
	w := 1 << 20
	for int64(w) < chunk && w < MaxOperationSize {
		w <<= 1
	}
	return w
}

func (e *encoder) close() {
	if e.zstd != nil {
		e.zstd.Close()
	}
}

// xz compresses one chunk as a single .xz stream without an integrity check: the chunk's
// SHA-256 in the signed manifest is checked before decoding and the partition's SHA-256
// after, so a CRC-64 of the output would only cost the decoder time (about 3%).
func (e *encoder) xz(ctx context.Context, raw []byte) ([]byte, error) {
	var out bytes.Buffer
	if e.xzCommand != "" {
		cmd := exec.CommandContext(ctx, e.xzCommand, "-6", "-T1", "--format=xz", "--check=none", "--stdout", "--memlimit-compress="+strconv.Itoa(256<<20))
		cmd.Stdin = bytes.NewReader(raw)
		cmd.Stdout = &out
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("payload: %s: %w: %s", e.xzCommand, err, bytes.TrimSpace(stderr.Bytes()))
		}
		return out.Bytes(), nil
	}
	w, err := xz.WriterConfig{DictCap: int(min(int64(len(raw)), xzPresetDict)), CheckSum: xz.None}.NewWriter(&out)
	if err != nil {
		return nil, fmt.Errorf("payload: xz encoder: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return nil, fmt.Errorf("payload: xz: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("payload: xz: %w", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out.Bytes(), nil
}
